package fhirpath

import (
	"regexp"
	"strings"

	"github.com/fhirsub/fhirsub/conformance/definitions"
)

// childInfo asks the R4 type model for the element name of typeName.
func childInfo(typeName, name string) (definitions.ChildInfo, bool) {
	info, ok := definitions.Child(typeName, name)
	if !ok || len(info.Types) == 0 {
		return info, false
	}
	return info, true
}

// typeMatches reports whether item is of the type ns.name or a subtype of
// it. ns is "FHIR", "System" or "" (FHIR types first, then System types).
func typeMatches(it Value, ns, name string) bool {
	t := it.Type
	if strings.HasPrefix(t, "System.") {
		return ns != "FHIR" && t == "System."+name
	}
	if t == "" {
		if m, ok := it.Data.(map[string]any); ok {
			t, _ = m["resourceType"].(string)
		}
		if t == "" {
			// an element of unknown type: judge by its JSON value
			st, _ := systemValue(it)
			return ns != "FHIR" && st != "" && st == "System."+name
		}
	}
	if ns == "System" {
		return false
	}
	return t == name || definitions.IsSubtype(t, name)
}

// referenceRE finds the type and id at the end of a relative or absolute
// literal reference, before an optional /_history/version.
var referenceRE = regexp.MustCompile(`(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?$`)

// referenceStub returns the stub resource {"resourceType": T, "id": id}
// for a literal reference to a known resource type.
func referenceStub(ref string) (map[string]any, bool) {
	m := referenceRE.FindStringSubmatch(ref)
	if m == nil || !definitions.IsResourceType(m[1]) {
		return nil, false
	}
	return map[string]any{"resourceType": m[1], "id": m[2]}, true
}
