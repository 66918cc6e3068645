package web

import (
	"html"
	"regexp"
	"strings"

	"github.com/fhirsub/fhirsub/conformance/definitions"
)

// A transaction's fullUrls are named not only by references: FHIR's
// transaction rules (R4 http.html#trules) ask the server to replace them
// in "elements of type uri, url, oid, uuid, and <a href="" & <img src=""
// in the narrative" as well (an Attachment.url naming the Binary the same
// transaction creates is the common case). rewriteLinks does that part;
// Reference.reference is rewriteReferences' work.

// rewriteLinks replaces, in the resource v, each value of an element of a
// uri type (uri, url, canonical, oid, uuid) that is a key of links, and
// each href or src attribute of its narratives naming one, with the
// Type/id the key stands for. The element types come from the R4 type
// model; an element the model does not know is left alone, and so is a
// Bundle inside v (its links are its own, as forEachReference has it).
func rewriteLinks(v map[string]any, links map[string]string) {
	if len(links) == 0 {
		return
	}
	if typ, _ := v["resourceType"].(string); typ != "" && typ != "Bundle" {
		rewriteTyped(typ, v, links)
	}
}

// rewriteTyped walks the object m of FHIR type typ (a resource type, a
// data type or a backbone element's path).
func rewriteTyped(typ string, m map[string]any, links map[string]string) {
	for k, child := range m {
		if k == "resourceType" {
			continue
		}
		elem := "Element" // a primitive's id and extensions ("_system")
		if !strings.HasPrefix(k, "_") {
			if elem = definitions.TypeOfKey(typ, k); elem == "" {
				continue
			}
		}
		switch {
		case elem == "xhtml":
			if s, ok := child.(string); ok {
				m[k] = rewriteNarrativeLinks(s, links)
			}
		case definitions.IsSubtype(elem, "uri"):
			m[k] = replaceLinkValues(child, links)
		case definitions.IsPrimitive(elem):
		default:
			eachObject(child, func(o map[string]any) {
				if elem == "Resource" || definitions.IsResourceType(elem) {
					rewriteLinks(o, links)
					return
				}
				rewriteTyped(elem, o, links)
			})
		}
	}
}

// eachObject calls fn with v when it is an object, or with each object of
// v when it is an array.
func eachObject(v any, fn func(map[string]any)) {
	switch x := v.(type) {
	case map[string]any:
		fn(x)
	case []any:
		for _, item := range x {
			if o, ok := item.(map[string]any); ok {
				fn(o)
			}
		}
	}
}

// replaceLinkValues is v, a primitive's value or an array of them, with
// each string that is a key of links replaced by what it stands for.
func replaceLinkValues(v any, links map[string]string) any {
	switch x := v.(type) {
	case string:
		if to, ok := links[x]; ok {
			return to
		}
	case []any:
		for i, item := range x {
			if s, ok := item.(string); ok {
				if to, ok := links[s]; ok {
					x[i] = to
				}
			}
		}
	}
	return v
}

// linkAttribute is an href or src attribute of an XHTML start tag, with
// its value quoted either way XML allows.
var linkAttribute = regexp.MustCompile(`(\s(?:href|src)\s*=\s*)(?:"([^"]*)"|'([^']*)')`)

// rewriteNarrativeLinks is the narrative div with each href or src that
// names a key of links (after XML's character references are read)
// naming what that key stands for.
func rewriteNarrativeLinks(div string, links map[string]string) string {
	if !strings.Contains(div, "href") && !strings.Contains(div, "src") {
		return div
	}
	return linkAttribute.ReplaceAllStringFunc(div, func(attr string) string {
		sub := linkAttribute.FindStringSubmatch(attr)
		value := sub[2] + sub[3] // one of the two is empty
		to, ok := links[html.UnescapeString(value)]
		if !ok {
			return attr
		}
		return sub[1] + `"` + to + `"`
	})
}
