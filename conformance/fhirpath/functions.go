package fhirpath

import (
	"fmt"

	"github.com/fhirsub/fhirsub/conformance/definitions"
)

// funcDef describes one FHIRPath function. call receives the input
// collection and the unevaluated arguments (n.args); functions evaluate
// their arguments themselves, once (against $this of the enclosing scope)
// or per item (criteria of where, select, all, exists...).
type funcDef struct {
	minArgs, maxArgs int
	typeArg          bool // the first argument is a type specifier
	call             func(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error)
}

func (f *funcDef) arity() string {
	switch {
	case f.minArgs == f.maxArgs && f.minArgs == 0:
		return "no arguments"
	case f.minArgs == f.maxArgs:
		return fmt.Sprintf("%d argument(s)", f.minArgs)
	}
	return fmt.Sprintf("%d to %d arguments", f.minArgs, f.maxArgs)
}

// functions is the function table, filled by init functions of the files
// that implement them.
var functions = map[string]*funcDef{}

func register(name string, minArgs, maxArgs int, call func(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error)) {
	functions[name] = &funcDef{minArgs: minArgs, maxArgs: maxArgs, call: call}
}

func boolResult(b bool) []Value { return []Value{{Data: b, Type: TypeBoolean}} }

func intResult(i int) []Value { return []Value{{Data: int64(i), Type: TypeInteger}} }

// each evaluates arg once per input item, with $this, $index and $total
// set, and calls f with the item and the result.
func (c *evalCtx) each(arg *node, in []Value, sc *scope, f func(i int, it Value, res []Value) (bool, error)) error {
	inner := &scope{hasIndex: true, total: sc.total}
	for i, it := range in {
		inner.this, inner.index = in[i:i+1], i
		res, err := c.eval(arg, inner)
		if err != nil {
			return err
		}
		more, err := f(i, it, res)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// criterion evaluates a boolean criterion result of one item.
func (c *evalCtx) criterion(arg *node, res []Value) (bool, error) {
	t, err := c.toTri(arg, res)
	return t == triTrue, err
}

func (c *evalCtx) singleton(n *node, in []Value) (Value, bool, error) {
	switch len(in) {
	case 0:
		return Value{}, false, nil
	case 1:
		return in[0], true, nil
	}
	return Value{}, false, c.errorf(n, "%s() needs a single item, got %d", n.name, len(in))
}

func init() {
	// existence
	register("empty", 0, 0, func(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error) {
		return boolResult(len(in) == 0), nil
	})
	register("exists", 0, 1, func(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error) {
		if len(n.args) == 0 {
			return boolResult(len(in) > 0), nil
		}
		found := false
		err := c.each(n.args[0], in, sc, func(_ int, _ Value, res []Value) (bool, error) {
			ok, err := c.criterion(n.args[0], res)
			found = found || ok
			return !found, err
		})
		return boolResult(found), err
	})
	register("all", 1, 1, func(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error) {
		all := true
		err := c.each(n.args[0], in, sc, func(_ int, _ Value, res []Value) (bool, error) {
			ok, err := c.criterion(n.args[0], res)
			all = all && ok
			return all, err
		})
		return boolResult(all), err
	})
	for _, name := range []string{"allTrue", "anyTrue", "allFalse", "anyFalse"} {
		want, any := name == "allTrue" || name == "anyTrue", name == "anyTrue" || name == "anyFalse"
		register(name, 0, 0, func(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error) {
			hit := false
			for _, it := range in {
				b, ok := it.Data.(bool)
				if !ok {
					return nil, c.errorf(n, "%s() needs booleans", n.name)
				}
				if any && b == want {
					hit = true
				}
				if !any && b != want {
					return boolResult(false), nil
				}
			}
			return boolResult(!any || hit), nil
		})
	}
	register("count", 0, 0, func(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error) {
		return intResult(len(in)), nil
	})
	register("distinct", 0, 0, func(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error) {
		if err := c.spend(n, len(in)*len(in)/2); err != nil {
			return nil, err
		}
		return distinct(in), nil
	})
	register("isDistinct", 0, 0, func(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error) {
		if err := c.spend(n, len(in)*len(in)/2); err != nil {
			return nil, err
		}
		return boolResult(len(distinct(in)) == len(in)), nil
	})
	register("subsetOf", 1, 1, func(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error) {
		other, err := c.eval(n.args[0], sc)
		if err == nil {
			err = c.spend(n, len(in)*len(other))
		}
		if err != nil {
			return nil, err
		}
		return boolResult(subset(in, other)), nil
	})
	register("supersetOf", 1, 1, func(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error) {
		other, err := c.eval(n.args[0], sc)
		if err == nil {
			err = c.spend(n, len(in)*len(other))
		}
		if err != nil {
			return nil, err
		}
		return boolResult(subset(other, in)), nil
	})
	register("hasValue", 0, 0, func(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error) {
		if len(in) != 1 {
			return boolResult(false), nil
		}
		t, _ := systemValue(in[0])
		return boolResult(t != "" && t != TypeQuantity), nil
	})

	// filtering and projection
	register("where", 1, 1, func(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error) {
		var out []Value
		err := c.each(n.args[0], in, sc, func(_ int, it Value, res []Value) (bool, error) {
			ok, err := c.criterion(n.args[0], res)
			if ok {
				out = append(out, it)
			}
			return true, err
		})
		return out, err
	})
	register("select", 1, 1, func(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error) {
		var out []Value
		err := c.each(n.args[0], in, sc, func(_ int, _ Value, res []Value) (bool, error) {
			out = append(out, res...)
			return len(out) <= maxItems, nil
		})
		return out, err
	})
	register("repeat", 1, 1, func(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error) {
		var out []Value
		queue := in
		for len(queue) > 0 && len(out) <= maxItems {
			var next []Value
			err := c.each(n.args[0], queue, sc, func(_ int, _ Value, res []Value) (bool, error) {
				if err := c.spend(n, len(res)*len(out)); err != nil {
					return false, err
				}
				for _, r := range res {
					if !containsItem(out, r) {
						out = append(out, r)
						next = append(next, r)
					}
				}
				return true, nil
			})
			if err != nil {
				return nil, err
			}
			queue = next
		}
		return out, nil
	})
	for _, name := range []string{"ofType", "as", "is"} {
		op := name
		if op == "ofType" {
			op = "as"
		}
		functions[name] = &funcDef{minArgs: 1, maxArgs: 1, typeArg: true,
			call: func(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error) {
				return typeOperator(c, n, op, n.ns, n.args[0].name, in)
			}}
	}

	// subsetting
	register("single", 0, 0, func(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error) {
		if len(in) > 1 {
			return nil, c.errorf(n, "single() got %d items", len(in))
		}
		return in, nil
	})
	register("first", 0, 0, func(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error) {
		if len(in) == 0 {
			return nil, nil
		}
		return in[:1], nil
	})
	register("last", 0, 0, func(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error) {
		if len(in) == 0 {
			return nil, nil
		}
		return in[len(in)-1:], nil
	})
	register("tail", 0, 0, func(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error) {
		if len(in) < 2 {
			return nil, nil
		}
		return in[1:], nil
	})
	register("skip", 1, 1, func(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error) {
		k, err := c.singletonInt(n.args[0], sc)
		if err != nil || k == nil {
			return nil, err
		}
		if *k <= 0 {
			return in, nil
		}
		if *k >= int64(len(in)) {
			return nil, nil
		}
		return in[*k:], nil
	})
	register("take", 1, 1, func(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error) {
		k, err := c.singletonInt(n.args[0], sc)
		if err != nil || k == nil || *k <= 0 {
			return nil, err
		}
		if *k >= int64(len(in)) {
			return in, nil
		}
		return in[:*k], nil
	})
	register("intersect", 1, 1, func(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error) {
		other, err := c.eval(n.args[0], sc)
		if err == nil {
			err = c.spend(n, len(in)*(len(in)+len(other)))
		}
		if err != nil {
			return nil, err
		}
		var out []Value
		for _, v := range distinct(in) {
			if containsItem(other, v) {
				out = append(out, v)
			}
		}
		return out, err
	})
	register("exclude", 1, 1, func(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error) {
		other, err := c.eval(n.args[0], sc)
		if err == nil {
			err = c.spend(n, len(in)*len(other))
		}
		if err != nil {
			return nil, err
		}
		var out []Value
		for _, v := range in {
			if !containsItem(other, v) {
				out = append(out, v)
			}
		}
		return out, err
	})
	register("union", 1, 1, func(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error) {
		other, err := c.eval(n.args[0], sc)
		if err == nil {
			err = c.spend(n, (len(in)+len(other))*(len(in)+len(other))/2)
		}
		if err != nil {
			return nil, err
		}
		return distinct(append(append([]Value{}, in...), other...)), nil
	})
	register("combine", 1, 1, func(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error) {
		other, err := c.eval(n.args[0], sc)
		if err != nil || len(in)+len(other) > maxItems {
			return nil, err
		}
		return append(append([]Value{}, in...), other...), nil
	})

	// logic and utility
	register("not", 0, 0, func(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error) {
		t, err := c.toTri(n, in)
		switch t {
		case triTrue:
			return boolResult(false), err
		case triFalse:
			return boolResult(true), err
		}
		return nil, err
	})
	register("iif", 2, 3, func(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error) {
		if n.target != nil && len(in) > 1 {
			return nil, c.errorf(n, "iif() needs at most one input item, got %d", len(in))
		}
		inner := sc
		if n.target != nil {
			inner = &scope{this: in, total: sc.total}
		}
		cond, err := c.eval(n.args[0], inner)
		if err != nil {
			return nil, err
		}
		ok, err := c.criterion(n.args[0], cond)
		if err != nil {
			return nil, err
		}
		switch {
		case ok:
			return c.eval(n.args[1], inner)
		case len(n.args) == 3:
			return c.eval(n.args[2], inner)
		}
		return nil, nil
	})
	register("trace", 1, 2, func(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error) {
		return in, nil
	})
	register("children", 0, 0, func(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error) {
		var out []Value
		for _, it := range in {
			out = allChildren(out, it)
		}
		return out, nil
	})
	register("descendants", 0, 0, func(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error) {
		var out []Value
		queue := in
		for depth := 0; len(queue) > 0; depth++ {
			if depth > 256 || len(out) > maxItems {
				return nil, c.errorf(n, "descendants() went too deep")
			}
			var next []Value
			for _, it := range queue {
				next = allChildren(next, it)
			}
			if err := c.spend(n, len(next)); err != nil {
				return nil, err
			}
			out = append(out, next...)
			queue = next
		}
		return out, nil
	})
	register("resolve", 0, 0, fnResolve)
	register("extension", 1, 1, func(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error) {
		url, ok, err := c.singletonString(n.args[0], sc)
		if err != nil || !ok {
			return nil, err
		}
		var out []Value
		for _, it := range in {
			for _, e := range children(nil, it, "extension") {
				if m, ok := e.Data.(map[string]any); ok && m["url"] == url {
					out = append(out, e)
				}
			}
		}
		return out, nil
	})
}

func subset(a, b []Value) bool {
	for _, v := range a {
		if !containsItem(b, v) {
			return false
		}
	}
	return true
}

// allChildren appends every child element of it, in JSON key order of the
// type model when known (sorted keys otherwise, for determinism).
func allChildren(out []Value, it Value) []Value {
	m, ok := it.Data.(map[string]any)
	if !ok {
		return out
	}
	for _, k := range sortedKeys(m) {
		if k == "resourceType" || (len(k) > 0 && k[0] == '_') {
			continue
		}
		out = appendJSON(out, m[k], childTypeOfKey(it.Type, k))
	}
	return out
}

// childTypeOfKey finds the type of JSON key k of a typeName element,
// including choice keys (valueQuantity → Quantity).
func childTypeOfKey(typeName, k string) string {
	if typeName == "" || len(typeName) > 7 && typeName[:7] == "System." {
		return ""
	}
	return definitions.TypeOfKey(typeName, k)
}

func fnResolve(c *evalCtx, n *node, in []Value, sc *scope) ([]Value, error) {
	var out []Value
	for _, it := range in {
		var ref string
		switch d := it.Data.(type) {
		case map[string]any:
			ref, _ = d["reference"].(string)
		case string:
			ref = d
		}
		if ref == "" {
			continue
		}
		if ref[0] == '#' {
			if res, ok := c.contained(ref[1:]); ok {
				out = append(out, fromJSON(res, ""))
			}
			continue
		}
		if c.env.Resolve != nil {
			if res, ok := c.env.Resolve(ref); ok && res != nil {
				out = append(out, fromJSON(res, ""))
				continue
			}
		}
		if stub, ok := referenceStub(ref); ok {
			out = append(out, fromJSON(stub, ""))
		}
	}
	return out, nil
}

// contained finds a contained resource of the root resource by id.
func (c *evalCtx) contained(id string) (map[string]any, bool) {
	if len(c.root) == 0 {
		return nil, false
	}
	m, _ := c.root[0].Data.(map[string]any)
	list, _ := m["contained"].([]any)
	for _, e := range list {
		if r, ok := e.(map[string]any); ok && r["id"] == id {
			return r, true
		}
	}
	return nil, false
}
