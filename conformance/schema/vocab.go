package schema

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/message"
)

// The generator adds these keywords to the HL7 schema:
//
//	"fhirResource": true       the value is a resource: validate it against
//	                           the schema of its own resourceType (replaces
//	                           the HL7 schema's 146-way oneOf);
//	"fhirRequired": [[a, _a]]  at least one name of each group must be
//	                           present (required primitives may be given as
//	                           _name only, and required choices as any type);
//	"fhirChoice": [[aX, aY]]   the names of a choice element: at most one of
//	                           each group (with its _name) may be present;
//	"fhirInteger": true        an integer written as FHIR writes one: digits
//	                           with an optional minus, no fraction or
//	                           exponent (JSON Schema's "integer" takes 1.0);
//	"fhirXhtml": true          a narrative that FHIR's rules allow (xhtml.go).
const vocabURL = "urn:fhirsub:fhir-vocabulary"

const vocabMetaSchema = `{
	"properties": {
		"fhirResource": {"type": "boolean"},
		"fhirRequired": {"type": "array", "items": {"type": "array", "items": {"type": "string"}}},
		"fhirChoice": {"type": "array", "items": {"type": "array", "items": {"type": "string"}}},
		"fhirInteger": {"type": "boolean"},
		"fhirXhtml": {"type": "boolean"}
	}
}`

func fhirVocabulary() (*jsonschema.Vocabulary, error) {
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(vocabMetaSchema))
	if err != nil {
		return nil, fmt.Errorf("decode vocabulary meta-schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(vocabURL, doc); err != nil {
		return nil, fmt.Errorf("add vocabulary meta-schema: %w", err)
	}
	meta, err := c.Compile(vocabURL)
	if err != nil {
		return nil, fmt.Errorf("compile vocabulary meta-schema: %w", err)
	}
	return &jsonschema.Vocabulary{URL: vocabURL, Schema: meta, Compile: compileKeywords}, nil
}

func compileKeywords(_ *jsonschema.CompilerContext, obj map[string]any) (jsonschema.SchemaExt, error) {
	if v, ok := obj["fhirResource"].(bool); ok && v {
		return resourceKeyword{}, nil
	}
	if v, ok := obj["fhirInteger"].(bool); ok && v {
		return integerKeyword{}, nil
	}
	if v, ok := obj["fhirXhtml"].(bool); ok && v {
		return xhtmlKeyword{}, nil
	}
	req, choices := nameGroups(obj["fhirRequired"]), nameGroups(obj["fhirChoice"])
	switch {
	case req == nil && choices == nil:
		return nil, nil
	case choices == nil:
		return requiredKeyword(req), nil
	}
	k := objectKeywords{required: req}
	for _, g := range choices {
		c := choiceGroup{names: g}
		for _, name := range g {
			c.extNames = append(c.extNames, "_"+name)
		}
		k.choices = append(k.choices, c)
	}
	return k, nil
}

// nameGroups reads a keyword's groups of property names (nil when absent).
func nameGroups(v any) [][]string {
	groups, _ := v.([]any)
	var out [][]string
	for _, g := range groups {
		names, _ := g.([]any)
		var group []string
		for _, n := range names {
			s, _ := n.(string)
			group = append(group, s)
		}
		out = append(out, group)
	}
	return out
}

// objectKeywords are the FHIR keywords of an object type with choices.
type objectKeywords struct {
	required requiredKeyword
	choices  []choiceGroup
}

// choiceGroup is the JSON names of one choice element, each also with the
// _name of a primitive's id and extensions.
type choiceGroup struct {
	names, extNames []string
}

// given reports whether obj has the group's i-th name, as a value or as
// its _name.
func (g choiceGroup) given(obj map[string]any, i int) bool {
	if _, ok := obj[g.names[i]]; ok {
		return true
	}
	_, ok := obj[g.extNames[i]]
	return ok
}

func (k objectKeywords) Validate(ctx *jsonschema.ValidatorContext, v any) {
	k.required.Validate(ctx, v)
	obj, ok := v.(map[string]any)
	if !ok {
		return
	}
	for _, g := range k.choices {
		n := 0
		for i := range g.names {
			if g.given(obj, i) {
				n++
			}
		}
		if n < 2 {
			continue
		}
		var present []string
		for i, name := range g.names {
			if g.given(obj, i) {
				present = append(present, name)
			}
		}
		ctx.AddError(&choiceKind{names: present})
	}
}

// resourceKeyword validates a nested resource.
type resourceKeyword struct{}

func (resourceKeyword) Validate(ctx *jsonschema.ValidatorContext, v any) {
	obj, ok := v.(map[string]any)
	if !ok {
		ctx.AddError(&fhirKind{keyword: "fhirResource", msg: fmt.Sprintf("expected a resource (an object), got %s", jsonType(v))})
		return
	}
	rt, err := resourceType(obj)
	if err != nil {
		ctx.AddError(&fhirKind{keyword: "fhirResource", msg: err.Error()})
		return
	}
	sch, err := compiled(rt)
	if err != nil {
		ctx.AddError(&fhirKind{keyword: "fhirResource", msg: err.Error()})
		return
	}
	if err := ctx.Validate(sch, v, nil); err != nil {
		ctx.AddErr(err)
	}
}

// integerKeyword checks the lexical form of an integer decoded as a
// json.Number (a float64 no longer has one; the "integer" type checks it).
type integerKeyword struct{}

func (integerKeyword) Validate(ctx *jsonschema.ValidatorContext, v any) {
	n, ok := v.(json.Number)
	if !ok || !strings.ContainsAny(string(n), ".eE") {
		return
	}
	ctx.AddError(&fhirKind{keyword: "fhirInteger",
		msg: string(n) + " is not an integer as FHIR writes one: digits only, without a fraction or an exponent"})
}

// requiredKeyword checks required primitives and choices.
type requiredKeyword [][]string

func (r requiredKeyword) Validate(ctx *jsonschema.ValidatorContext, v any) {
	obj, ok := v.(map[string]any)
	if !ok {
		return // the "type" keyword reports it
	}
groups:
	for _, g := range r {
		for _, name := range g {
			if _, ok := obj[name]; ok {
				continue groups
			}
		}
		ctx.AddError(&missingKind{names: g})
	}
}

// fhirKind is an error of one of the FHIR keywords with a ready message.
type fhirKind struct{ keyword, msg string }

func (k *fhirKind) KeywordPath() []string { return []string{k.keyword} }

func (k *fhirKind) LocalizedString(*message.Printer) string { return k.msg }

// choiceKind reports a choice element given under several types.
type choiceKind struct{ names []string }

func (*choiceKind) KeywordPath() []string { return []string{"fhirChoice"} }

func (k *choiceKind) LocalizedString(*message.Printer) string {
	if slices.Contains(k.names, "extension") {
		return ext1Both
	}
	return strings.Join(k.names, " and ") + " are given, but a choice element takes one type"
}

// The messages of ext-1, whose group is extension with value[x].
const (
	ext1Missing = "an extension needs nested extensions or a value (ext-1)"
	ext1Both    = "an extension has nested extensions or a value, not both (ext-1)"
)

// missingKind reports a required element that is absent.
type missingKind struct{ names []string }

func (*missingKind) KeywordPath() []string { return []string{"fhirRequired"} }

func (k *missingKind) LocalizedString(*message.Printer) string {
	return "required element is missing: " + strings.Join(k.elementNames(), " or ")
}

// elementNames returns the JSON names of the group without the _name
// variants of primitives.
func (k *missingKind) elementNames() []string {
	var out []string
	for _, n := range k.names {
		if !strings.HasPrefix(n, "_") {
			out = append(out, n)
		}
	}
	return out
}
