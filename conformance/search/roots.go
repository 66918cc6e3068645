package search

import (
	"regexp"
	"strings"

	"github.com/fhirsub/fhirsub/conformance/definitions"
)

// Most search parameters of a type name elements that a given resource
// does not have (an Observation has none of component, specimen, device,
// focus, …), and evaluating their FHIRPath only to get nothing was most of
// the cost of Keys. A parameter whose every branch is a plain path from
// the resource, "Type.elem" followed by more element names, ofType(T) or
// where(resolve() is T), selects nothing when none of its root elements
// is present, so eval skips it after a few map lookups. Any other branch
// (exists(), as, extension(…), …) can give a value from nothing, and its
// parameter is always evaluated.

// plainTail is what may follow the root element of a plain path.
var plainTail = regexp.MustCompile(`^(\.[A-Za-z][A-Za-z0-9]*|\.ofType\([A-Za-z]+\)|\.where\(resolve\(\) is [A-Za-z]+\))*$`)

var elementName = regexp.MustCompile(`^[a-z][A-Za-z0-9]*`)

// pathRoots returns the root elements of src, an expression restricted to
// resourceType, or nil when a branch is not a plain path.
func pathRoots(src, resourceType string) []string {
	var roots []string
	for _, branch := range splitUnion(src) {
		b, ok := strings.CutPrefix(unwrap(strings.TrimSpace(branch)), resourceType+".")
		if !ok {
			return nil
		}
		name := elementName.FindString(b)
		if name == "" || !plainTail.MatchString(b[len(name):]) {
			return nil
		}
		roots = append(roots, name)
	}
	return roots
}

// unwrap removes parentheses around the whole of b: "(x.y)" gives "x.y",
// "(x).y" stays.
func unwrap(b string) string {
	for len(b) >= 2 && b[0] == '(' && b[len(b)-1] == ')' {
		depth := 0
		for i := 0; i < len(b)-1; i++ {
			switch b[i] {
			case '(':
				depth++
			case ')':
				depth--
			}
			if depth == 0 {
				return b // the first parenthesis closes before the end
			}
		}
		b = strings.TrimSpace(b[1 : len(b)-1])
	}
	return b
}

// rootSet is what present needs of a parameter's root elements, worked
// out once per parameter: looking for "_name" and for a choice element's
// typed names ("valueQuantity") on every change cost as much as the
// evaluations the roots spare.
type rootSet struct {
	names []string
	under []string // "_" + name: the extension of a primitive element
	// choice is set when a name is a choice element (value[x]) or is not
	// in the type's definitions: present then looks at every key of the
	// resource for one that starts with it.
	choice bool
}

// newRootSet returns the rootSet of names, elements of resourceType, or
// nil when names is nil (the parameter is not a plain path).
func newRootSet(names []string, resourceType string) *rootSet {
	if names == nil {
		return nil
	}
	rs := &rootSet{names: names, under: make([]string, len(names))}
	for i, name := range names {
		rs.under[i] = "_" + name
		if info, ok := definitions.Child(resourceType, name); !ok || info.Choice {
			rs.choice = true
		}
	}
	return rs
}

// present reports whether res has one of the root elements, as itself, as
// its primitive extension "_name" or, for a choice, as "nameType".
func present(res map[string]any, rs *rootSet) bool {
	for i, name := range rs.names {
		if _, ok := res[name]; ok {
			return true
		}
		if _, ok := res[rs.under[i]]; ok {
			return true
		}
	}
	if !rs.choice {
		return false
	}
	for k := range res {
		for _, name := range rs.names {
			if choiceOf(k, name) || len(k) > 1 && k[0] == '_' && choiceOf(k[1:], name) {
				return true
			}
		}
	}
	return false
}

// choiceOf reports whether key is the choice element name[x] of one type,
// such as valueQuantity for value.
func choiceOf(key, name string) bool {
	return len(key) > len(name) && strings.HasPrefix(key, name) && key[len(name)] >= 'A' && key[len(name)] <= 'Z'
}
