package fhirpath

import (
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

// referenceStub returns the stub resource {"resourceType": T, "id": id}
// for a literal reference to a known resource type.
func referenceStub(ref string) (map[string]any, bool) {
	typ, id, ok := referenceParts(ref)
	if !ok || !definitions.IsResourceType(typ) {
		return nil, false
	}
	return map[string]any{"resourceType": typ, "id": id}, true
}

// referenceParts finds the type and id at the end of a relative or
// absolute literal reference, before an optional /_history/version: the
// last segments are T/id or T/id/_history/v, T starts the reference or
// follows a '/', T is [A-Z][A-Za-z]+, and id and v are FHIR ids
// ([A-Za-z0-9\-.]{1,64}). It runs for every resolve() of every search
// parameter that names a target type, so it parses by hand.
func referenceParts(ref string) (typ, id string, ok bool) {
	rest := ref
	if i := strings.LastIndex(rest, "/_history/"); i >= 0 && isID(rest[i+len("/_history/"):]) {
		rest = rest[:i]
	}
	i := strings.LastIndexByte(rest, '/')
	if i < 0 || !isID(rest[i+1:]) {
		return "", "", false
	}
	id, rest = rest[i+1:], rest[:i]
	typ = rest[strings.LastIndexByte(rest, '/')+1:]
	if len(typ) < 2 || typ[0] < 'A' || typ[0] > 'Z' {
		return "", "", false
	}
	for j := 1; j < len(typ); j++ {
		if c := typ[j] | 0x20; c < 'a' || c > 'z' {
			return "", "", false
		}
	}
	return typ, id, true
}

// isID reports whether s is a FHIR id: 1 to 64 of [A-Za-z0-9\-.].
func isID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for j := 0; j < len(s); j++ {
		c := s[j]
		if !('a' <= c|0x20 && c|0x20 <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
