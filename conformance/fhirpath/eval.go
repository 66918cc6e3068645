package fhirpath

import (
	"errors"
	"fmt"
	"strings"
)

// Env carries what an evaluation may read besides the resource.
type Env struct {
	// Vars are the %name variables: decoded JSON (a resource, any element,
	// an array), a system value, or nil for an empty collection. Topic
	// triggers pass %current and %previous here.
	Vars map[string]any
	// Resolve, when set, is used by resolve() to load the resource a
	// reference points to. When it is nil or does not find the resource,
	// resolve() of a "Type/id" or ".../Type/id" reference yields a stub
	// resource {"resourceType": Type, "id": id}, so that `resolve() is
	// Patient` works without loading anything.
	Resolve func(reference string) (map[string]any, bool)
}

// EvalError is a run-time error: a function applied to an input it cannot
// handle (several items where one is required, operands of incomparable
// types, an undefined variable...).
type EvalError struct {
	Src string
	Pos int
	Msg string
}

// Error implements error.
func (e *EvalError) Error() string {
	return fmt.Sprintf("fhirpath: evaluation error at column %d: %s (in %q)", e.Pos+1, e.Msg, truncate(e.Src, 120))
}

// maxItems bounds the size of any intermediate collection.
const maxItems = 1 << 20

// scope is the iteration context of a function argument: $this, $index
// and $total.
type scope struct {
	this     []Value
	index    int
	hasIndex bool
	total    []Value
}

// evalBudget bounds the work of one evaluation (items produced plus
// item comparisons), so that no expression runs for long.
const evalBudget = 20_000_000

type evalCtx struct {
	budget   int
	src      string
	env      *Env
	resource []Value // %resource, %context
	root     []Value // %rootResource
}

func (c *evalCtx) errorf(n *node, format string, args ...any) error {
	return &EvalError{Src: c.src, Pos: n.pos, Msg: fmt.Sprintf(format, args...)}
}

// Evaluate evaluates the expression on resource (its type is its
// resourceType) and returns the resulting collection. env may be nil.
// Evaluate never panics; run-time errors are returned as *EvalError.
func (e *Expression) Evaluate(resource map[string]any, env *Env) (result []Value, err error) {
	ev := &evaluation{}
	if env == nil {
		env = &ev.env
	}
	var input []Value
	if resource != nil {
		ev.input[0] = fromJSON(resource, "")
		input = ev.input[:]
	}
	ev.c = evalCtx{budget: evalBudget, src: e.src, env: env, resource: input, root: input}
	ev.this = scope{this: input}
	defer func() {
		if r := recover(); r != nil {
			result, err = nil, &EvalError{Src: e.src, Msg: fmt.Sprintf("internal error: %v", r)}
		}
	}()
	return ev.c.eval(e.root, &ev.this)
}

// evaluation holds what an Evaluate call needs for its whole run, so that
// the call allocates it in one piece: search.Keys evaluates a dozen
// expressions for every resource written, and four allocations a call
// were 13% of the server's allocations under fhirsub-load's create-open.
type evaluation struct {
	c     evalCtx
	this  scope
	env   Env      // when the caller gives none
	input [1]Value // the resource: capacity 1, so an append copies
}

// EvaluateBool evaluates the expression as a criterion: an empty result is
// false, a single boolean is its value, a single other item is true, and
// several items are an error.
func (e *Expression) EvaluateBool(resource map[string]any, env *Env) (bool, error) {
	res, err := e.Evaluate(resource, env)
	if err != nil {
		return false, err
	}
	switch len(res) {
	case 0:
		return false, nil
	case 1:
		if b, ok := res[0].Data.(bool); ok {
			return b, nil
		}
		return true, nil
	}
	return false, &EvalError{Src: e.src, Msg: fmt.Sprintf("expected a single boolean, got %d items", len(res))}
}

var errTooMany = errors.New("collection is too large")

// spend charges units of work to the evaluation budget.
func (c *evalCtx) spend(n *node, units int) error {
	c.budget -= units
	if c.budget < 0 {
		return c.errorf(n, "evaluation is too expensive (more than %d steps)", evalBudget)
	}
	return nil
}

func (c *evalCtx) eval(n *node, sc *scope) ([]Value, error) {
	out, err := c.evalNode(n, sc)
	if err == nil {
		err = c.spend(n, len(out)+1)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (c *evalCtx) evalNode(n *node, sc *scope) ([]Value, error) {
	switch n.kind {
	case nLiteral:
		return n.lit, nil
	case nParen:
		return c.eval(n.target, sc)
	case nThis:
		return sc.this, nil
	case nIndexVar:
		if !sc.hasIndex {
			return nil, nil
		}
		return []Value{{Data: int64(sc.index), Type: TypeInteger}}, nil
	case nTotal:
		return sc.total, nil
	case nVar:
		return c.variable(n)
	case nIdent:
		var out []Value
		for _, it := range sc.this {
			if isUpper(n.name) && typeMatches(it, "", n.name) {
				out = append(out, it)
				continue
			}
			out = children(out, it, n.name)
		}
		return out, nil
	case nMember:
		in, err := c.eval(n.target, sc)
		if err != nil {
			return nil, err
		}
		var out []Value
		for _, it := range in {
			out = children(out, it, n.name)
		}
		if len(out) > maxItems {
			return nil, c.errorf(n, "%v", errTooMany)
		}
		return out, nil
	case nFunc:
		in := sc.this
		if n.target != nil {
			var err error
			if in, err = c.eval(n.target, sc); err != nil {
				return nil, err
			}
		}
		out, err := n.fn.call(c, n, in, sc)
		if err == nil && len(out) > maxItems {
			err = c.errorf(n, "%v", errTooMany)
		}
		return out, err
	case nIndex:
		in, err := c.eval(n.target, sc)
		if err != nil {
			return nil, err
		}
		idx, err := c.singletonInt(n.args[0], sc)
		if err != nil || idx == nil {
			return nil, err
		}
		if *idx < 0 || *idx >= int64(len(in)) {
			return nil, nil
		}
		return in[*idx : *idx+1], nil
	case nUnary:
		in, err := c.eval(n.target, sc)
		if err != nil || len(in) == 0 {
			return nil, err
		}
		if len(in) > 1 {
			return nil, c.errorf(n, "unary minus needs a single number, got %d items", len(in))
		}
		if v, ok := negate(systemItem(in[0])); ok {
			return []Value{v}, nil
		}
		return nil, c.errorf(n, "unary minus needs a number or quantity")
	case nBinary:
		return c.binary(n, sc)
	case nTypeOp:
		in, err := c.eval(n.target, sc)
		if err != nil {
			return nil, err
		}
		return typeOperator(c, n, n.name, n.ns, n.args[0].name, in)
	}
	return nil, c.errorf(n, "unsupported expression")
}

// systemItem returns the item as a system value when it is a FHIR
// primitive (json.Number "5" of type integer becomes int64 5).
func systemItem(v Value) Value {
	t, x := systemValue(v)
	if t == "" {
		return v
	}
	return Value{Data: x, Type: t}
}

func isUpper(s string) bool { return s != "" && s[0] >= 'A' && s[0] <= 'Z' }

func (c *evalCtx) variable(n *node) ([]Value, error) {
	switch n.name {
	case "resource", "context":
		return c.resource, nil
	case "rootResource":
		return c.root, nil
	case "ucum":
		return []Value{{Data: "http://unitsofmeasure.org", Type: TypeString}}, nil
	case "sct":
		return []Value{{Data: "http://snomed.info/sct", Type: TypeString}}, nil
	case "loinc":
		return []Value{{Data: "http://loinc.org", Type: TypeString}}, nil
	}
	if v, ok := c.env.Vars[n.name]; ok {
		return varValues(v), nil
	}
	if strings.HasPrefix(n.name, "vs-") || strings.HasPrefix(n.name, "ext-") {
		return nil, c.errorf(n, "value set and extension constants (%%%s) are not supported", n.name)
	}
	return nil, c.errorf(n, "undefined variable %%%s", n.name)
}

// singletonInt evaluates an argument that must be one integer (nil when
// empty).
func (c *evalCtx) singletonInt(a *node, sc *scope) (*int64, error) {
	v, err := c.eval(a, sc)
	if err != nil || len(v) == 0 {
		return nil, err
	}
	if len(v) > 1 {
		return nil, c.errorf(a, "expected a single integer, got %d items", len(v))
	}
	if t, x := systemValue(v[0]); t == TypeInteger {
		i := x.(int64)
		return &i, nil
	}
	return nil, c.errorf(a, "expected an integer")
}

// singletonString evaluates an argument that must be one string.
func (c *evalCtx) singletonString(a *node, sc *scope) (string, bool, error) {
	v, err := c.eval(a, sc)
	if err != nil || len(v) == 0 {
		return "", false, err
	}
	if len(v) > 1 {
		return "", false, c.errorf(a, "expected a single string, got %d items", len(v))
	}
	if t, x := systemValue(v[0]); t == TypeString {
		return x.(string), true, nil
	}
	return "", false, c.errorf(a, "expected a string")
}

// children appends the child elements called name of it to out.
func children(out []Value, it Value, name string) []Value {
	m, ok := it.Data.(map[string]any)
	if !ok {
		return out
	}
	if it.Type != "" && !strings.HasPrefix(it.Type, "System.") {
		if info, ok := childInfo(it.Type, name); ok {
			if info.Choice {
				for i, t := range info.Types {
					if v, ok := m[info.Names[i]]; ok {
						out = appendJSON(out, v, t)
					}
				}
				return out
			}
			t := ""
			if len(info.Types) == 1 {
				t = info.Types[0]
			}
			if name == "id" && t == "string" {
				// Resource.id and Element.id are System.String in the R4
				// snapshot (as fhirpath.js reports them)
				t = TypeString
			}
			return appendJSON(out, m[name], t)
		}
	}
	return appendJSON(out, m[name], "")
}
