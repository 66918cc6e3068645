package schema

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The narrative rules of FHIR R4 (narrative.html, Narrative.div's txt-1 and
// txt-2), checked on every xhtml value: one <div> in the XHTML namespace,
// well-formed XML with no entities but XML's own, only the basic formatting
// elements of HTML 4.0 (text, lists, tables, links, images), no active
// content (scripts, forms, frames, objects, event attributes, javascript:
// links), and some content.
const xhtmlNS = "http://www.w3.org/1999/xhtml"

// xhtmlElements are the elements a narrative may use: HTML 4.0 chapters
// 7-11 (without ins and del) and 12, images and the font style elements.
var xhtmlElements = setOf(
	"p", "br", "div", "h1", "h2", "h3", "h4", "h5", "h6", "a", "span", "b", "em", "i", "strong",
	"small", "big", "tt", "dfn", "q", "var", "abbr", "acronym", "cite", "blockquote", "hr",
	"address", "bdo", "kbd", "samp", "code", "sub", "sup", "ul", "ol", "li", "dl", "dt", "dd",
	"pre", "table", "caption", "colgroup", "col", "thead", "tbody", "tfoot", "tr", "th", "td",
	"img", "map", "area",
)

// xhtmlAttributes are the attributes any of them may carry, and
// xhtmlElementAttributes those of particular elements.
var (
	xhtmlAttributes        = setOf("title", "style", "class", "id", "lang", "dir", "accesskey", "tabindex")
	xhtmlElementAttributes = map[string]map[string]bool{
		"a":          setOf("href", "name", "rel", "rev", "shape", "coords", "hreflang", "charset", "type"),
		"img":        setOf("src", "alt", "longdesc", "height", "width", "usemap", "ismap", "border", "align"),
		"map":        setOf("name"),
		"area":       setOf("shape", "coords", "href", "nohref", "alt"),
		"table":      setOf("summary", "width", "border", "frame", "rules", "cellspacing", "cellpadding", "align"),
		"td":         setOf("abbr", "axis", "headers", "scope", "rowspan", "colspan", "align", "char", "charoff", "valign", "nowrap", "width", "height"),
		"th":         setOf("abbr", "axis", "headers", "scope", "rowspan", "colspan", "align", "char", "charoff", "valign", "nowrap", "width", "height"),
		"col":        setOf("span", "width", "align", "char", "charoff", "valign"),
		"colgroup":   setOf("span", "width", "align", "char", "charoff", "valign"),
		"thead":      setOf("align", "char", "charoff", "valign"),
		"tbody":      setOf("align", "char", "charoff", "valign"),
		"tfoot":      setOf("align", "char", "charoff", "valign"),
		"tr":         setOf("align", "char", "charoff", "valign"),
		"blockquote": setOf("cite"),
		"q":          setOf("cite"),
		"ol":         setOf("type", "start", "compact"),
		"ul":         setOf("type", "compact"),
		"li":         setOf("type", "value"),
		"p":          setOf("align"),
		"div":        setOf("align"),
		"hr":         setOf("align", "noshade", "size", "width"),
		"pre":        setOf("width"),
	}
	// xhtmlURLAttributes hold a link, which may not run a script.
	xhtmlURLAttributes = setOf("href", "src", "longdesc", "usemap", "cite")
)

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// checkXHTML returns why s is not a narrative FHIR allows, or "".
func checkXHTML(s string) string {
	d := xml.NewDecoder(strings.NewReader(s))
	d.Strict = true // and no Entity map: only XML's five entities and character references
	depth, content := 0, false
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "the narrative is not well-formed XHTML: " + strings.TrimPrefix(err.Error(), "XML syntax error on ")
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 && (t.Name.Local != "div" || t.Name.Space != xhtmlNS) {
				return `the narrative must be one <div xmlns="` + xhtmlNS + `"> element`
			}
			if why := checkElement(t); why != "" {
				return why
			}
			content = content || t.Name.Local == "img"
			depth++
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 {
				if strings.TrimSpace(string(t)) != "" {
					return "the narrative has text outside its <div>"
				}
				continue
			}
			content = content || strings.IndexFunc(string(t), func(r rune) bool { return !unicode.IsSpace(r) }) >= 0
		case xml.ProcInst:
			return "the narrative may not contain a processing instruction (<?" + t.Target + " …?>)"
		case xml.Directive:
			return "the narrative may not contain a declaration such as <!DOCTYPE>"
		}
		if depth == 0 && d.InputOffset() < int64(len(s)) {
			if _, isEnd := tok.(xml.EndElement); isEnd && strings.TrimSpace(s[d.InputOffset():]) != "" {
				return `the narrative must be one <div xmlns="` + xhtmlNS + `"> element, with nothing after it`
			}
		}
	}
	if !content {
		return "the narrative has no content (txt-2: some text or an image)"
	}
	return ""
}

// checkElement checks one element of a narrative and its attributes.
func checkElement(t xml.StartElement) string {
	name := t.Name.Local
	if t.Name.Space != xhtmlNS {
		return fmt.Sprintf("the narrative's element <%s> is not in the XHTML namespace", name)
	}
	if !xhtmlElements[name] {
		return fmt.Sprintf("the narrative may not contain <%s>: only basic HTML formatting, without active content (txt-1)", name)
	}
	for _, a := range t.Attr {
		an := a.Name.Local
		switch {
		case a.Name.Space == "xmlns" || (a.Name.Space == "" && an == "xmlns"):
			if a.Value != xhtmlNS {
				return fmt.Sprintf("the narrative may not declare the namespace %q", a.Value)
			}
			continue
		case a.Name.Space == "http://www.w3.org/XML/1998/namespace" && an == "lang":
			continue
		case a.Name.Space != "":
			return fmt.Sprintf("the narrative's <%s> may not carry the attribute %s:%s", name, a.Name.Space, an)
		case strings.HasPrefix(strings.ToLower(an), "on"):
			return fmt.Sprintf("the narrative's <%s> may not carry the event attribute %s (txt-1)", name, an)
		case !xhtmlAttributes[an] && !xhtmlElementAttributes[name][an]:
			return fmt.Sprintf("the narrative's <%s> may not carry the attribute %s (txt-1)", name, an)
		}
		if xhtmlURLAttributes[an] && scriptURL(a.Value) {
			return fmt.Sprintf("the narrative's <%s %s> may not run a script", name, an)
		}
		if an == "style" && activeStyle(a.Value) {
			return fmt.Sprintf("the narrative's <%s> has a style that loads or runs something (url(), expression())", name)
		}
	}
	return ""
}

// scriptURL reports whether a link runs a script when followed. Browsers
// ignore white space and control characters inside the scheme.
func scriptURL(v string) bool {
	scheme := strings.Map(func(r rune) rune {
		if r <= ' ' {
			return -1
		}
		return unicode.ToLower(r)
	}, v)
	for _, s := range []string{"javascript:", "vbscript:", "data:text/html"} {
		if strings.HasPrefix(scheme, s) {
			return true
		}
	}
	return false
}

// activeStyle reports whether a style attribute fetches a resource or
// evaluates script: narrative is self-contained.
func activeStyle(v string) bool {
	v = strings.ToLower(strings.ReplaceAll(v, " ", ""))
	return strings.Contains(v, "url(") || strings.Contains(v, "expression(") || strings.Contains(v, "@import")
}

// xhtmlKeyword checks an xhtml value against the narrative rules.
type xhtmlKeyword struct{}

func (xhtmlKeyword) Validate(ctx *jsonschema.ValidatorContext, v any) {
	s, ok := v.(string)
	if !ok {
		return // the "type" keyword reports it
	}
	if why := checkXHTML(s); why != "" {
		ctx.AddError(&fhirKind{keyword: "fhirXhtml", msg: why})
	}
}
