package topics

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/fhirsub/fhirsub/conformance/definitions"
	"github.com/fhirsub/fhirsub/conformance/fhirpath"
	"github.com/fhirsub/fhirsub/conformance/search"
)

// coreTypePrefix is the StructureDefinition base of the core resource types.
const coreTypePrefix = "http://hl7.org/fhir/StructureDefinition/"

// resourceType reduces "Encounter" or
// "http://hl7.org/fhir/StructureDefinition/Encounter" to "Encounter" and
// checks it is an R4 resource type.
func resourceType(uri string) (string, error) {
	name := strings.TrimPrefix(uri, coreTypePrefix)
	if !definitions.IsResourceType(name) {
		return "", fmt.Errorf("unknown resource type %q", uri)
	}
	return name, nil
}

// comparatorCodes are the R5 SearchComparator codes; "=" is R4B's plain
// equality, kept out of the normalised lists.
var comparatorCodes = map[string]bool{
	"eq": true, "ne": true, "gt": true, "lt": true, "ge": true,
	"le": true, "sa": true, "eb": true, "ap": true,
}

// modifierCodes are the R5 SearchModifierCode codes.
var modifierCodes = map[string]bool{
	"missing": true, "exact": true, "contains": true, "not": true, "text": true,
	"in": true, "not-in": true, "below": true, "above": true, "type": true,
	"identifier": true, "of-type": true, "code-text": true, "text-advanced": true,
	"iterate": true,
}

func (p *reader) trigger(raw map[string]any, path string) (Trigger, bool) {
	var tr Trigger
	res := p.str(raw, "resource", path+".resource", true)
	if p.err != nil {
		return tr, false
	}
	rt, err := resourceType(res)
	if err != nil {
		p.fail(path+".resource", err.Error(), nil)
		return tr, false
	}
	tr.Resource = rt
	for i, code := range p.strs(raw, "supportedInteraction", path+".supportedInteraction") {
		switch code {
		case Create, Update, Delete:
			if !slices.Contains(tr.Interactions, code) {
				tr.Interactions = append(tr.Interactions, code)
			}
		default:
			p.fail(fmt.Sprintf("%s.supportedInteraction[%d]", path, i),
				fmt.Sprintf("%q is not create, update or delete", code), nil)
		}
	}
	if qc := p.object(raw, "queryCriteria", path+".queryCriteria"); qc != nil {
		p.queryCriteria(&tr, qc, path+".queryCriteria")
	}
	if src := p.str(raw, "fhirPathCriteria", path+".fhirPathCriteria", false); src != "" {
		expr, err := fhirpath.Parse(src)
		if err != nil {
			p.fail(path+".fhirPathCriteria", err.Error(), err)
		}
		tr.FHIRPath = expr
	}
	return tr, p.err == nil
}

func (p *reader) queryCriteria(tr *Trigger, qc map[string]any, path string) {
	tr.Previous = p.query(qc, "previous", path, tr.Resource)
	tr.Current = p.query(qc, "current", path, tr.Resource)
	for _, key := range []string{"resultForCreate", "resultForDelete"} {
		code := p.str(qc, key, path+"."+key, false)
		if code != "" && code != TestPasses && code != TestFails {
			p.fail(path+"."+key, fmt.Sprintf("%q is not test-passes or test-fails", code), nil)
		}
		if key == "resultForCreate" {
			tr.ResultForCreate = code
		} else {
			tr.ResultForDelete = code
		}
	}
	if v, ok := qc["requireBoth"]; ok && v != nil {
		b, ok := v.(bool)
		if !ok {
			p.fail(path+".requireBoth", fmt.Sprintf("must be a boolean, not %s", jsonKind(v)), nil)
		}
		tr.RequireBoth = b
	}
}

// query parses one queryCriteria test: "status=finished",
// "?status=finished" or "Encounter?status=finished".
func (p *reader) query(qc map[string]any, key, path, rt string) *search.Query {
	path += "." + key
	src := p.str(qc, key, path, false)
	if src == "" || p.err != nil {
		return nil
	}
	if typ, rest, ok := strings.Cut(src, "?"); ok {
		typ = strings.TrimPrefix(typ, "/")
		if typ != "" && typ != rt {
			p.fail(path, fmt.Sprintf("query is on %q but the trigger's resource is %q", typ, rt), nil)
			return nil
		}
		src = rest
	}
	values, err := url.ParseQuery(src)
	if err != nil {
		p.fail(path, fmt.Sprintf("malformed query %q: %v", src, err), err)
		return nil
	}
	if len(values) == 0 {
		p.fail(path, fmt.Sprintf("query %q has no parameters", src), nil)
		return nil
	}
	q, err := search.Parse(rt, values)
	if err != nil {
		p.fail(path, errorText(err), err)
		return nil
	}
	if q.HasLinks() || q.Shape().AltersResult() {
		p.fail(path, fmt.Sprintf("query %q: chained, _has and result parameters are not supported in a trigger's query", src), nil)
		return nil
	}
	return q
}

func (p *reader) filterDef(raw map[string]any, path string, types []string) (FilterDef, bool) {
	var fd FilterDef
	if res := p.str(raw, "resource", path+".resource", false); res != "" {
		rt, err := resourceType(res)
		if err != nil {
			p.fail(path+".resource", err.Error(), nil)
			return fd, false
		}
		if !slices.Contains(types, rt) {
			p.fail(path+".resource", fmt.Sprintf("%q is not a resource type of the topic's triggers %v", rt, types), nil)
			return fd, false
		}
		fd.Resource = rt
	}
	fd.Param = p.str(raw, "filterParameter", path+".filterParameter", true)
	fd.Definition = p.str(raw, "filterDefinition", path+".filterDefinition", false)
	if p.err != nil {
		return fd, false
	}
	scope := types
	if fd.Resource != "" {
		scope = []string{fd.Resource}
	}
	found := false
	for _, rt := range scope {
		if definitions.SearchParams(rt)[fd.Param] != nil {
			found = true
		}
	}
	if !found {
		p.fail(path+".filterParameter",
			fmt.Sprintf("%q is not a search parameter of %s", fd.Param, strings.Join(scope, " or ")), nil)
		return fd, false
	}
	for i, code := range p.strs(raw, "comparator", path+".comparator") {
		if !comparatorCodes[code] {
			p.fail(fmt.Sprintf("%s.comparator[%d]", path, i), fmt.Sprintf("unknown comparator %q", code), nil)
			return fd, false
		}
		fd.Comparators = appendNew(fd.Comparators, code)
	}
	for i, code := range p.strs(raw, "modifier", path+".modifier") {
		switch {
		case code == "=":
		case comparatorCodes[code]: // R4B mixes comparators into modifier
			fd.Comparators = appendNew(fd.Comparators, code)
		case modifierCodes[code]:
			fd.Modifiers = appendNew(fd.Modifiers, code)
		default:
			p.fail(fmt.Sprintf("%s.modifier[%d]", path, i), fmt.Sprintf("unknown modifier %q", code), nil)
			return fd, false
		}
	}
	return fd, p.err == nil
}

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

func (p *reader) shape(raw map[string]any, path string) (Shape, bool) {
	var sh Shape
	res := p.str(raw, "resource", path+".resource", true)
	if p.err != nil {
		return sh, false
	}
	rt, err := resourceType(res)
	if err != nil {
		p.fail(path+".resource", err.Error(), nil)
		return sh, false
	}
	sh.Resource = rt
	sh.Include = p.strs(raw, "include", path+".include")
	sh.RevInclude = p.strs(raw, "revInclude", path+".revInclude")
	for i, inc := range sh.Include {
		if err := checkInclude(inc, rt); err != nil {
			p.fail(fmt.Sprintf("%s.include[%d]", path, i), err.Error(), nil)
		}
	}
	for i, inc := range sh.RevInclude {
		if err := checkInclude(inc, ""); err != nil {
			p.fail(fmt.Sprintf("%s.revInclude[%d]", path, i), err.Error(), nil)
		}
	}
	return sh, p.err == nil
}

// checkInclude checks "Type:param[:Target]" optionally followed by
// "&iterate=..." parameters; for an include, Type must be the shape's
// resource (want).
func checkInclude(inc, want string) error {
	head, _, _ := strings.Cut(inc, "&")
	parts := strings.Split(head, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return fmt.Errorf("%q is not of the form Type:parameter[:targetType]", inc)
	}
	typ, code := parts[0], parts[1]
	if !definitions.IsResourceType(typ) {
		return fmt.Errorf("%q: unknown resource type %q", inc, typ)
	}
	if want != "" && typ != want {
		return fmt.Errorf("%q: an include of a %s shape must start with %q", inc, want, want+":")
	}
	sp := definitions.SearchParams(typ)[code]
	if sp == nil || sp.Type != "reference" {
		return fmt.Errorf("%q: %q is not a reference search parameter of %s", inc, code, typ)
	}
	if len(parts) == 3 && len(sp.Target) > 0 && !slices.Contains(sp.Target, parts[2]) {
		return fmt.Errorf("%q: %s.%s cannot point to %q", inc, typ, code, parts[2])
	}
	return nil
}
