// Package fhirpatch applies a FHIRPath Patch (a Parameters resource whose
// "operation" parameters add, insert, delete, replace or move elements
// located by FHIRPath expressions) to a decoded resource, on the
// project's FHIRPath engine.
//
// An expression that selects objects (HumanName, a backbone element, the
// resource) locates them by identity in the resource. One that selects
// primitive values must end with an element name, optionally indexed
// ("Patient.birthDate", "Patient.name[0].given[1]"); the part before it
// selects the parent objects.
package fhirpatch

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/fhirsub/fhirsub/conformance/definitions"
	"github.com/fhirsub/fhirsub/conformance/fhirpath"
)

// Error is a patch that cannot be applied; the message names the operation.
type Error struct {
	Index   int // the operation's position among the parameters, from 0
	Message string
}

// Error implements error.
func (e *Error) Error() string {
	return fmt.Sprintf("FHIRPath Patch operation %d: %s", e.Index, e.Message)
}

// op is one decoded operation parameter.
type op struct {
	typ, path, name   string
	index, source     int
	destination       int
	hasIndex, hasSrc  bool
	hasDest, hasValue bool
	value             any
}

// Apply applies the patch (a decoded Parameters resource) to res in place.
// On error res may be partly changed: apply to a copy.
func Apply(res map[string]any, patch map[string]any) error {
	if patch["resourceType"] != "Parameters" {
		return &Error{Index: -1, Message: "a FHIRPath Patch is a Parameters resource"}
	}
	params, _ := patch["parameter"].([]any)
	if len(params) == 0 {
		return &Error{Index: -1, Message: "the Parameters resource has no operation"}
	}
	for i, p := range params {
		o, err := decodeOp(p)
		if err != nil {
			return &Error{Index: i, Message: err.Error()}
		}
		if err := o.apply(res); err != nil {
			return &Error{Index: i, Message: fmt.Sprintf("%s %q: %v", o.typ, o.path, err)}
		}
	}
	return nil
}

func decodeOp(p any) (*op, error) {
	m, _ := p.(map[string]any)
	if m == nil || m["name"] != "operation" {
		return nil, fmt.Errorf("every parameter must be named \"operation\"")
	}
	parts, _ := m["part"].([]any)
	o := &op{}
	for _, raw := range parts {
		pt, _ := raw.(map[string]any)
		name, _ := pt["name"].(string)
		switch name {
		case "type":
			o.typ, _ = pt["valueCode"].(string)
		case "path":
			o.path, _ = pt["valueString"].(string)
		case "name":
			o.name, _ = pt["valueString"].(string)
		case "index", "source", "destination":
			n, err := intOf(pt["valueInteger"])
			if err != nil {
				return nil, fmt.Errorf("%s: %v", name, err)
			}
			switch name {
			case "index":
				o.index, o.hasIndex = n, true
			case "source":
				o.source, o.hasSrc = n, true
			default:
				o.destination, o.hasDest = n, true
			}
		case "value":
			v, err := valueOf(pt)
			if err != nil {
				return nil, err
			}
			o.value, o.hasValue = v, true
		default:
			return nil, fmt.Errorf("unknown part %q", name)
		}
	}
	if o.path == "" {
		return nil, fmt.Errorf("path (valueString) is required")
	}
	need := map[string][]bool{ // name, value, index, source, destination
		"add":     {true, true, false, false, false},
		"insert":  {false, true, true, false, false},
		"delete":  {false, false, false, false, false},
		"replace": {false, true, false, false, false},
		"move":    {false, false, false, true, true},
	}[o.typ]
	if need == nil {
		return nil, fmt.Errorf("type %q is not add, insert, delete, replace or move", o.typ)
	}
	have := []bool{o.name != "", o.hasValue, o.hasIndex, o.hasSrc, o.hasDest}
	for k, label := range []string{"name", "value", "index", "source", "destination"} {
		if need[k] && !have[k] {
			return nil, fmt.Errorf("%s needs %s", o.typ, label)
		}
		if !need[k] && have[k] {
			return nil, fmt.Errorf("%s takes no %s", o.typ, label)
		}
	}
	return o, nil
}

func intOf(v any) (int, error) {
	switch n := v.(type) {
	case float64:
		if n == float64(int(n)) && n >= 0 {
			return int(n), nil
		}
	case interface{ String() string }: // json.Number
		if i, err := strconv.Atoi(n.String()); err == nil && i >= 0 {
			return i, nil
		}
	}
	return 0, fmt.Errorf("want a non-negative valueInteger, got %v", v)
}

// valueOf reads the value of a "value" part: its value[x], or nested parts
// that build an object (a backbone element).
func valueOf(pt map[string]any) (any, error) {
	for k, v := range pt {
		if strings.HasPrefix(k, "value") && len(k) > len("value") {
			return v, nil
		}
	}
	parts, _ := pt["part"].([]any)
	if len(parts) == 0 {
		return nil, fmt.Errorf("value needs a value[x] or parts")
	}
	obj := map[string]any{}
	for _, raw := range parts {
		sub, _ := raw.(map[string]any)
		name, _ := sub["name"].(string)
		if name == "" {
			return nil, fmt.Errorf("a part of value has no name")
		}
		v, err := valueOf(sub)
		if err != nil {
			return nil, err
		}
		if prev, ok := obj[name]; ok { // repeated part: a list
			list, isList := prev.([]any)
			if !isList {
				list = []any{prev}
			}
			obj[name] = append(list, v)
			continue
		}
		obj[name] = v
	}
	return obj, nil
}

// slot is where an element lives: parent[key], or parent[key][index]
// when index >= 0.
type slot struct {
	parent map[string]any
	key    string
	index  int
	typ    string // the parent's FHIR type, when known
}

func (o *op) apply(res map[string]any) error {
	switch o.typ {
	case "add":
		parents, err := objects(res, o.path)
		if err != nil {
			return err
		}
		if len(parents) != 1 {
			return fmt.Errorf("selects %d elements, want exactly 1", len(parents))
		}
		p := parents[0]
		m := p.Data.(map[string]any)
		info, known := definitions.Child(p.Type, o.name)
		switch cur, exists := m[o.name]; {
		case exists && isList(cur):
			m[o.name] = append(cur.([]any), o.value)
		case exists:
			return fmt.Errorf("%s already has %s: use replace", p.Type, o.name)
		case known && info.Many:
			m[o.name] = []any{o.value}
		default:
			m[o.name] = o.value
		}
		return nil
	case "insert", "move":
		s, err := listSlot(res, o.path)
		if err != nil {
			return err
		}
		list, _ := s.parent[s.key].([]any)
		if o.typ == "insert" {
			if o.index > len(list) {
				return fmt.Errorf("index %d is past the end of the list (%d items)", o.index, len(list))
			}
			s.parent[s.key] = slices.Insert(slices.Clone(list), o.index, o.value)
			return nil
		}
		if o.source >= len(list) || o.destination >= len(list) {
			return fmt.Errorf("source %d or destination %d is outside the list (%d items)", o.source, o.destination, len(list))
		}
		item := list[o.source]
		list = slices.Delete(slices.Clone(list), o.source, o.source+1)
		s.parent[s.key] = slices.Insert(list, o.destination, item)
		return nil
	}
	slots, err := locate(res, o.path)
	if err != nil {
		return err
	}
	if o.typ == "delete" {
		switch len(slots) {
		case 0:
			return nil
		case 1:
			remove(slots[0])
			return nil
		}
		return fmt.Errorf("selects %d elements, want at most 1", len(slots))
	}
	if len(slots) != 1 {
		return fmt.Errorf("selects %d elements, want exactly 1", len(slots))
	}
	s := slots[0]
	if s.index >= 0 {
		s.parent[s.key].([]any)[s.index] = o.value
	} else {
		s.parent[s.key] = o.value
	}
	return nil
}

func isList(v any) bool { _, ok := v.([]any); return ok }

func remove(s slot) {
	if s.index < 0 {
		delete(s.parent, s.key)
		return
	}
	list := slices.Delete(slices.Clone(s.parent[s.key].([]any)), s.index, s.index+1)
	if len(list) == 0 {
		delete(s.parent, s.key)
		return
	}
	s.parent[s.key] = list
}

// objects evaluates expr and requires every item to be an object.
func objects(res map[string]any, expr string) ([]fhirpath.Value, error) {
	vals, err := eval(res, expr)
	if err != nil {
		return nil, err
	}
	for _, v := range vals {
		if _, ok := v.Data.(map[string]any); !ok {
			return nil, fmt.Errorf("selects a primitive value where an element with children is needed")
		}
	}
	return vals, nil
}

func eval(res map[string]any, expr string) ([]fhirpath.Value, error) {
	e, err := fhirpath.Parse(expr)
	if err != nil {
		return nil, err
	}
	return e.Evaluate(res, nil)
}

// locate finds the slots of the elements expr selects.
func locate(res map[string]any, expr string) ([]slot, error) {
	vals, err := eval(res, expr)
	if err != nil {
		return nil, err
	}
	if len(vals) == 0 {
		return nil, nil
	}
	allObjects := true
	for _, v := range vals {
		if _, ok := v.Data.(map[string]any); !ok {
			allObjects = false
		}
	}
	if allObjects {
		where := index(res)
		out := make([]slot, 0, len(vals))
		for _, v := range vals {
			s, ok := where[reflect.ValueOf(v.Data).Pointer()]
			if !ok {
				return nil, fmt.Errorf("selects an element that is not part of the resource")
			}
			out = append(out, s)
		}
		return out, nil
	}
	// Primitives: "<parent>.name" or "<parent>.name[n]".
	parentExpr, name, idx, ok := splitLast(expr)
	if !ok {
		return nil, fmt.Errorf("a path to primitive values must end with an element name")
	}
	parents, err := objects(res, parentExpr)
	if err != nil {
		return nil, err
	}
	var out []slot
	for _, p := range parents {
		m := p.Data.(map[string]any)
		cur, exists := m[name]
		if !exists {
			continue
		}
		list, many := cur.([]any)
		switch {
		case !many:
			if idx <= 0 {
				out = append(out, slot{parent: m, key: name, index: -1, typ: p.Type})
			}
		case idx >= 0:
			if idx < len(list) {
				out = append(out, slot{parent: m, key: name, index: idx, typ: p.Type})
			}
		default:
			for i := range list {
				out = append(out, slot{parent: m, key: name, index: i, typ: p.Type})
			}
		}
	}
	if len(out) != len(vals) {
		return nil, fmt.Errorf("cannot locate the %d selected values in the resource", len(vals))
	}
	return out, nil
}

// listSlot finds the one list an insert or move works on: expr must end
// with an element name whose parent is exactly one object.
func listSlot(res map[string]any, expr string) (slot, error) {
	parentExpr, name, idx, ok := splitLast(expr)
	if !ok || idx >= 0 {
		return slot{}, fmt.Errorf("the path of a list must end with an element name")
	}
	parents, err := objects(res, parentExpr)
	if err != nil {
		return slot{}, err
	}
	if len(parents) != 1 {
		return slot{}, fmt.Errorf("the list's parent selects %d elements, want exactly 1", len(parents))
	}
	m := parents[0].Data.(map[string]any)
	if cur, ok := m[name]; ok && !isList(cur) {
		return slot{}, fmt.Errorf("%s is not a list", name)
	}
	return slot{parent: m, key: name, index: -1, typ: parents[0].Type}, nil
}

// splitLast splits "a.b.name" or "a.b.name[3]" into "a.b", "name", index
// (-1 without one).
func splitLast(expr string) (parent, name string, idx int, ok bool) {
	expr = strings.TrimSpace(expr)
	idx = -1
	if strings.HasSuffix(expr, "]") {
		open := strings.LastIndexByte(expr, '[')
		if open < 0 {
			return "", "", 0, false
		}
		n, err := strconv.Atoi(expr[open+1 : len(expr)-1])
		if err != nil || n < 0 {
			return "", "", 0, false
		}
		idx, expr = n, expr[:open]
	}
	dot := strings.LastIndexByte(expr, '.')
	if dot <= 0 {
		return "", "", 0, false
	}
	name = expr[dot+1:]
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return "", "", 0, false
		}
	}
	return expr[:dot], name, idx, name != ""
}

// index maps every object inside res (by map identity) to its slot.
func index(res map[string]any) map[uintptr]slot {
	out := map[uintptr]slot{}
	var walk func(m map[string]any)
	walk = func(m map[string]any) {
		for k, v := range m {
			switch x := v.(type) {
			case map[string]any:
				out[reflect.ValueOf(x).Pointer()] = slot{parent: m, key: k, index: -1}
				walk(x)
			case []any:
				for i, item := range x {
					if c, ok := item.(map[string]any); ok {
						out[reflect.ValueOf(c).Pointer()] = slot{parent: m, key: k, index: i}
						walk(c)
					}
				}
			}
		}
	}
	walk(res)
	return out
}
