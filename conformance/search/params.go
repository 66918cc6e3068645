package search

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/fhirsub/fhirsub/conformance/definitions"
	"github.com/fhirsub/fhirsub/conformance/fhirpath"
)

// param is a search parameter compiled for one resource type.
type param struct {
	code    string
	typ     string
	targets []string
	expr    *fhirpath.Expression
	// roots, when set, are the elements of the resource every branch of
	// expr starts from, which is then a plain path: without any of them
	// in the resource, expr selects nothing (see present).
	roots *rootSet
	comps []component
	// unsupported is why the parameter cannot be searched ("" when it can).
	unsupported string
}

// component is one part of a composite parameter, evaluated on each node
// the composite's own expression selects. Its expression is a union of
// element names, each optionally narrowed with ofType ("code",
// "value.ofType(Quantity) | value.ofType(Range)", "value"), which covers
// every R4 composite; it is evaluated directly on the JSON object because
// the node of a backbone element carries no type for FHIRPath.
type component struct {
	typ      string
	branches []compBranch
}

type compBranch struct {
	name   string // element name ("value")
	ofType string // capitalised type suffix ("Quantity"), "" for any
}

// typeParams holds the compiled parameters of one resource type.
type typeParams struct {
	// name is the resource type, a copy of its own: a Query's Type is
	// this one, not a piece of the caller's criteria string, which a
	// subscription would otherwise keep alive for its lifetime.
	name   string
	byCode map[string]*param
	list   []*param // sorted by code
}

type typeEntry struct {
	once sync.Once
	tp   *typeParams
}

var typeCache sync.Map // resource type → *typeEntry

// paramsOf returns the compiled parameters of a resource type, or nil if
// the name is not an R4 resource type.
func paramsOf(resourceType string) *typeParams {
	if e, ok := typeCache.Load(resourceType); ok {
		return e.(*typeEntry).get(resourceType)
	}
	if !definitions.IsResourceType(resourceType) && !definitions.IsExtraType(resourceType) {
		return nil
	}
	e, _ := typeCache.LoadOrStore(resourceType, &typeEntry{})
	return e.(*typeEntry).get(resourceType)
}

func (e *typeEntry) get(resourceType string) *typeParams {
	e.once.Do(func() { e.tp = compileType(resourceType) })
	return e.tp
}

func compileType(resourceType string) *typeParams {
	defs := definitions.SearchParams(resourceType)
	tp := &typeParams{name: strings.Clone(resourceType), byCode: make(map[string]*param, len(defs))}
	for code, d := range defs {
		p := compileParam(resourceType, code, d)
		tp.byCode[code] = p
		tp.list = append(tp.list, p)
	}
	slices.SortFunc(tp.list, func(a, b *param) int { return strings.Compare(a.code, b.code) })
	return tp
}

func compileParam(resourceType, code string, d *definitions.SearchParam) *param {
	p := &param{code: code, typ: d.Type, targets: d.Target}
	if d.Type == "special" {
		p.unsupported = "special parameters are not supported"
		return p
	}
	src := restrictExpression(d.Expression, resourceType)
	if src == "" {
		p.unsupported = "not supported (no FHIRPath expression)"
		return p
	}
	expr, err := fhirpath.Parse(src)
	if err != nil {
		p.unsupported = fmt.Sprintf("not supported (expression %q: %v)", src, err)
		return p
	}
	p.expr = expr
	p.roots = newRootSet(pathRoots(src, resourceType), resourceType)
	if d.Type != "composite" {
		return p
	}
	for _, c := range d.Components {
		cd := definitions.SearchParamByURL(c.Definition)
		if cd == nil {
			p.unsupported = fmt.Sprintf("not supported (unknown component %s)", c.Definition)
			return p
		}
		branches, ok := parseComponent(c.Expression)
		if !ok {
			p.unsupported = fmt.Sprintf("not supported (component expression %q)", c.Expression)
			return p
		}
		switch cd.Type {
		case "token", "string", "uri", "reference", "date", "number", "quantity":
		default:
			p.unsupported = fmt.Sprintf("not supported (%s component)", cd.Type)
			return p
		}
		p.comps = append(p.comps, component{typ: cd.Type, branches: branches})
	}
	if len(p.comps) == 0 {
		p.unsupported = "not supported (composite without components)"
	}
	return p
}

// eval returns the nodes the parameter selects in res.
func (p *param) eval(res map[string]any) ([]fhirpath.Value, error) {
	if p.expr == nil || p.roots != nil && !present(res, p.roots) {
		return nil, nil
	}
	nodes, err := p.expr.Evaluate(res, nil)
	if err != nil {
		return nil, fmt.Errorf("evaluate search parameter %q: %w", p.code, err)
	}
	return nodes, nil
}

// restrictExpression keeps the top-level union branches of a shared
// expression ("AllergyIntolerance.code | Condition.code | …") that apply
// to resourceType, and rewrites "Resource." and "DomainResource." roots to
// the type. It returns "" when no branch applies.
func restrictExpression(expr, resourceType string) string {
	var kept []string
	for _, branch := range splitUnion(expr) {
		b := strings.TrimSpace(branch)
		inner := strings.TrimLeft(b, "( ")
		root := inner
		if i := strings.IndexAny(inner, ".( )"); i >= 0 {
			root = inner[:i]
		}
		switch {
		case root == resourceType:
		case root == "Resource" || root == "DomainResource":
			lead := b[:len(b)-len(inner)]
			b = lead + resourceType + inner[len(root):]
		case root != "" && root[0] >= 'A' && root[0] <= 'Z' && definitions.IsResourceType(root):
			continue // a branch for another type
		}
		kept = append(kept, b)
	}
	return strings.Join(kept, " | ")
}

// splitUnion splits at the '|' operators outside parentheses and quotes.
func splitUnion(expr string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(expr); i++ {
		switch expr[i] {
		case '\'', '`':
			q := expr[i]
			for i++; i < len(expr) && expr[i] != q; i++ {
				if expr[i] == '\\' {
					i++
				}
			}
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			depth--
		case '|':
			if depth == 0 {
				out = append(out, expr[start:i])
				start = i + 1
			}
		}
	}
	return append(out, expr[start:])
}

// parseComponent reads a composite component expression: a union of
// `name` or `name.ofType(Type)`.
func parseComponent(expr string) ([]compBranch, bool) {
	var out []compBranch
	for _, b := range splitUnion(expr) {
		b = strings.TrimSpace(b)
		name, rest, _ := strings.Cut(b, ".")
		if !isName(name) {
			return nil, false
		}
		br := compBranch{name: name}
		if rest != "" {
			t, ok := strings.CutPrefix(rest, "ofType(")
			t, ok2 := strings.CutSuffix(t, ")")
			if !ok || !ok2 || !isName(t) {
				return nil, false
			}
			br.ofType = upperFirst(t)
		}
		out = append(out, br)
	}
	return out, len(out) > 0
}

func isName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isLetter(s[i]) && !(i > 0 && isDigit(s[i])) {
			return false
		}
	}
	return true
}

func upperFirst(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// eval returns the values of the component in the JSON object m. A
// choice element (valueQuantity) is found by its type suffix; the value
// keeps that type, lower-cased for primitives ("dateTime", "string").
func (c *component) eval(m map[string]any) []fhirpath.Value {
	var out []fhirpath.Value
	for _, b := range c.branches {
		if b.ofType == "" {
			if v, ok := m[b.name]; ok {
				out = appendValues(out, v, "")
				continue
			}
			for k, v := range m {
				if t, ok := strings.CutPrefix(k, b.name); ok && t != "" && t[0] >= 'A' && t[0] <= 'Z' {
					out = appendValues(out, v, fhirType(t))
				}
			}
			continue
		}
		if v, ok := m[b.name+b.ofType]; ok {
			out = appendValues(out, v, fhirType(b.ofType))
		}
	}
	return out
}

// fhirType turns a JSON choice suffix into a FHIR type code: complex types
// keep their capital, primitives start lower case.
func fhirType(suffix string) string {
	lower := strings.ToLower(suffix[:1]) + suffix[1:]
	if definitions.IsPrimitive(lower) {
		return lower
	}
	return suffix
}

func appendValues(out []fhirpath.Value, v any, typ string) []fhirpath.Value {
	if arr, ok := v.([]any); ok {
		for _, e := range arr {
			out = append(out, fhirpath.Value{Data: e, Type: typ})
		}
		return out
	}
	if v == nil {
		return out
	}
	return append(out, fhirpath.Value{Data: v, Type: typ})
}

// Supported reports whether the search parameter code of resourceType can
// be searched: it exists, has an expression this package evaluates, and is
// not one of the parameters fhirsub refuses. The CapabilityStatement
// advertises exactly these.
func Supported(resourceType, code string) bool {
	if notSupported[code] {
		return false
	}
	tp := paramsOf(resourceType)
	if tp == nil {
		return false
	}
	p := tp.byCode[code]
	return p != nil && p.unsupported == ""
}
