package search

import (
	"encoding/json"
	"math/big"
	"strings"

	"github.com/fhirsub/fhirsub/conformance/definitions"
	"github.com/fhirsub/fhirsub/conformance/fhirpath"
)

// token is one extracted token value. text holds the display or text used
// by :text; a token with an empty code carries text only.
type token struct {
	system, code, text string
}

// refValue is one extracted or searched reference. key is "Type/id" when
// the reference names a resource, else the reference string; typ and id
// are set only in the first case.
type refValue struct {
	key, typ, id string
}

// quantity is one extracted quantity.
type quantity struct {
	v                  *big.Rat
	system, code, unit string
}

// kind returns the FHIR type of a node: the engine's type when known, else
// a guess from the shape of the JSON object.
func kind(n fhirpath.Value) string {
	if n.Type != "" {
		return n.Type
	}
	m, ok := n.Data.(map[string]any)
	if !ok {
		return ""
	}
	has := func(k string) bool { _, ok := m[k]; return ok }
	switch {
	case has("coding"):
		return "CodeableConcept"
	case has("reference") || has("identifier") && len(m) <= 3:
		return "Reference"
	case has("family") || has("given"):
		return "HumanName"
	case has("line") || has("city") || has("postalCode") || has("country"):
		return "Address"
	case has("start") || has("end"):
		return "Period"
	case has("event") || has("repeat"):
		return "Timing"
	case has("value") && (has("unit") || has("code") || has("comparator")):
		return "Quantity"
	case has("value") && has("currency"):
		return "Money"
	case has("value"):
		return "Identifier"
	case has("code") || has("system"):
		return "Coding"
	case has("text"):
		return "CodeableConcept"
	}
	return ""
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

// tokensOf extracts token values.
func tokensOf(nodes []fhirpath.Value, dst []token) []token {
	for _, n := range nodes {
		switch d := n.Data.(type) {
		case string:
			dst = append(dst, token{code: d})
		case bool:
			if d {
				dst = append(dst, token{code: "true"})
			} else {
				dst = append(dst, token{code: "false"})
			}
		case json.Number:
			dst = append(dst, token{code: string(d)})
		case map[string]any:
			dst = tokensOfMap(kind(n), d, dst)
		}
	}
	return dst
}

func tokensOfMap(k string, m map[string]any, dst []token) []token {
	switch k {
	case "CodeableConcept":
		codings, _ := m["coding"].([]any)
		for _, c := range codings {
			if cm, ok := c.(map[string]any); ok {
				dst = append(dst, token{system: str(cm, "system"), code: str(cm, "code"), text: str(cm, "display")})
			}
		}
		if t := str(m, "text"); t != "" {
			dst = append(dst, token{text: t})
		}
	case "Identifier":
		t := ""
		if typ, ok := m["type"].(map[string]any); ok {
			t = str(typ, "text")
		}
		dst = append(dst, token{system: str(m, "system"), code: str(m, "value"), text: t})
	case "ContactPoint":
		dst = append(dst, token{system: str(m, "system"), code: str(m, "value")})
	default: // Coding and look-alikes
		if _, ok := m["code"]; ok || m["system"] != nil {
			dst = append(dst, token{system: str(m, "system"), code: str(m, "code"), text: str(m, "display")})
		} else if v := str(m, "value"); v != "" {
			dst = append(dst, token{system: str(m, "system"), code: v})
		}
	}
	return dst
}

// refsOf extracts references (and, for :identifier, their identifiers).
func refsOf(nodes []fhirpath.Value, dst []refValue, idents *[]token) []refValue {
	for _, n := range nodes {
		switch d := n.Data.(type) {
		case string: // canonical or uri target
			if r := parseRef(d); r.key != "" {
				dst = append(dst, r)
			}
		case map[string]any:
			if r := parseRef(str(d, "reference")); r.key != "" {
				dst = append(dst, r)
			}
			if idents != nil {
				if id, ok := d["identifier"].(map[string]any); ok {
					*idents = tokensOfMap("Identifier", id, *idents)
				}
			}
		}
	}
	return dst
}

// parseRef normalises a reference: relative, versioned and absolute
// RESTful forms become "Type/id"; other strings are kept (a canonical
// loses its |version); local "#x" references give the zero value.
func parseRef(s string) refValue {
	if s == "" || s[0] == '#' {
		return refValue{}
	}
	if i := strings.IndexByte(s, '|'); i >= 0 {
		s = s[:i]
	}
	path := s
	if strings.HasPrefix(path, "urn:") {
		return refValue{key: s}
	}
	if i := strings.Index(path, "/_history/"); i >= 0 {
		path = path[:i]
	}
	path = strings.TrimSuffix(path, "/")
	i := strings.LastIndexByte(path, '/')
	if i <= 0 {
		return refValue{key: s}
	}
	id := path[i+1:]
	rest := path[:i]
	typ := rest[strings.LastIndexByte(rest, '/')+1:]
	if id == "" || !validID(id) || !definitions.IsResourceType(typ) {
		return refValue{key: s}
	}
	key := path[i-len(typ):]
	return refValue{key: key, typ: typ, id: id}
}

// validID reports whether s has the FHIR id syntax.
func validID(s string) bool {
	if len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isDigit(c) || isLetter(c) || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// stringsOf extracts the searchable strings; HumanName and Address expand
// to their parts.
func stringsOf(nodes []fhirpath.Value, dst []string) []string {
	for _, n := range nodes {
		switch d := n.Data.(type) {
		case string:
			dst = append(dst, d)
		case map[string]any:
			switch kind(n) {
			case "HumanName":
				dst = appendStrings(dst, d, "text", "family", "given", "prefix", "suffix")
			case "Address":
				dst = appendStrings(dst, d, "text", "line", "city", "district", "state", "postalCode", "country")
			default:
				dst = appendStrings(dst, d, "text", "display", "value")
			}
		}
	}
	return dst
}

func appendStrings(dst []string, m map[string]any, keys ...string) []string {
	for _, k := range keys {
		switch v := m[k].(type) {
		case string:
			dst = append(dst, v)
		case []any:
			for _, e := range v {
				if s, ok := e.(string); ok {
					dst = append(dst, s)
				}
			}
		}
	}
	return dst
}

// spansOf extracts date ranges from date, dateTime, instant, Period and
// Timing nodes; values that do not parse are skipped.
func spansOf(nodes []fhirpath.Value, dst []span) []span {
	for _, n := range nodes {
		switch d := n.Data.(type) {
		case string:
			if sp, err := parseSpan(d); err == nil {
				dst = append(dst, sp)
			}
		case map[string]any:
			switch kind(n) {
			case "Period":
				dst = appendPeriod(dst, d)
			case "Timing":
				events, _ := d["event"].([]any)
				for _, e := range events {
					if s, ok := e.(string); ok {
						if sp, err := parseSpan(s); err == nil {
							dst = append(dst, sp)
						}
					}
				}
				if r, ok := d["repeat"].(map[string]any); ok {
					if bp, ok := r["boundsPeriod"].(map[string]any); ok {
						dst = appendPeriod(dst, bp)
					}
				}
			}
		}
	}
	return dst
}

func appendPeriod(dst []span, m map[string]any) []span {
	out := span{lo: minTime, hi: maxTime}
	start, end := str(m, "start"), str(m, "end")
	if start == "" && end == "" {
		return dst
	}
	if start != "" {
		sp, err := parseSpan(start)
		if err != nil {
			return dst
		}
		out.lo = sp.lo
	}
	if end != "" {
		sp, err := parseSpan(end)
		if err != nil {
			return dst
		}
		out.hi = sp.hi
	}
	return append(dst, out)
}

// numbersOf extracts numbers (a Quantity-like node gives its value).
func numbersOf(nodes []fhirpath.Value, dst []*big.Rat) []*big.Rat {
	for _, n := range nodes {
		x := n.Data
		if m, ok := x.(map[string]any); ok {
			x = m["value"]
		}
		if r, ok := ratOf(x); ok {
			dst = append(dst, r)
		}
	}
	return dst
}

// quantitiesOf extracts Quantity, Age, Duration, Distance, Count and
// SimpleQuantity nodes, and Money (currency as code).
func quantitiesOf(nodes []fhirpath.Value, dst []quantity) []quantity {
	for _, n := range nodes {
		m, ok := n.Data.(map[string]any)
		if !ok {
			if r, ok := ratOf(n.Data); ok {
				dst = append(dst, quantity{v: r})
			}
			continue
		}
		r, ok := ratOf(m["value"])
		if !ok {
			continue
		}
		q := quantity{v: r, system: str(m, "system"), code: str(m, "code"), unit: str(m, "unit")}
		if c := str(m, "currency"); c != "" {
			q.system, q.code = "urn:iso:std:iso:4217", c
		}
		dst = append(dst, q)
	}
	return dst
}

// urisOf extracts uri, url and canonical values.
func urisOf(nodes []fhirpath.Value, dst []string) []string {
	for _, n := range nodes {
		if s, ok := n.Data.(string); ok {
			dst = append(dst, s)
		}
	}
	return dst
}
