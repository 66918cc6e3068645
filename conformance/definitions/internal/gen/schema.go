package main

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// schema returns the trimmed R4 JSON schema written to
// conformance/schema/fhir.schema.json.gz:
//   - only the definitions reachable from the R4 resource types;
//   - properties restricted to the elements kept in the type model
//     (Medplum additions removed);
//   - "description" removed;
//   - ResourceList (a oneOf over every resource type) replaced by the custom
//     keyword {"fhirResource": true}: the validator checks a nested resource
//     against the schema of its own resourceType;
//   - "fhirRequired": groups of property names of which one must be present,
//     for required primitives (value or _value) and required choices;
//   - "fhirChoice": the property names of each choice element, of which at
//     most one may be present (with its _name for a primitive type); for
//     Extension, "extension" joins value[x]'s group, in fhirRequired too
//     (ext-1: nested extensions or a value, one of the two);
//   - integer, positiveInt and unsignedInt typed "integer" with their 32-bit
//     bounds and the keyword {"fhirInteger": true} (digits only: JSON
//     Schema's "integer" also takes 1.0 and 1e2);
//   - xhtml typed "string" with the keyword {"fhirXhtml": true} (the
//     narrative rules), base64Binary given its pattern;
//   - patterns on non-string types removed (the HL7 schema gives "number"
//     and "boolean" types patterns, which JSON Schema ignores and two of
//     which are malformed);
//   - "minItems": 1 on every array (FHIR JSON forbids empty arrays);
//   - "type": "object" on every definition with properties (the HL7 schema
//     lets an array or a string pass where a complex type belongs), with
//     "minProperties": 1 (FHIR JSON has no empty objects).
func (m *model) schema() (map[string]any, error) {
	for def, keep := range m.keep {
		if schemaOverStructure[def] {
			m.notes = append(m.notes, "schema "+def+": kept as in the R4 schema (the package's StructureDefinition differs)")
			continue
		}
		obj := m.defs[def].(map[string]any)
		props, _ := obj["properties"].(map[string]any)
		for p := range props {
			if p == "resourceType" || keep[strings.TrimPrefix(p, "_")] {
				continue
			}
			delete(props, p)
			m.notes = append(m.notes, fmt.Sprintf("schema %s: dropped property %s", def, p))
		}
		if groups := m.required[def]; len(groups) > 0 {
			obj["fhirRequired"] = groups
		}
		if groups := m.choices[def]; len(groups) > 0 {
			obj["fhirChoice"] = groups
		}
		if def == "Extension" {
			// ext-1: an extension has nested extensions or a value,
			// one of the two
			if len(m.choices[def]) != 1 {
				return nil, fmt.Errorf("schema Extension: want one choice (value[x]), got %d", len(m.choices[def]))
			}
			group := append([]string{"extension"}, m.choices[def][0]...)
			obj["fhirChoice"] = [][]string{group}
			need := slices.Clone(group) // a primitive value may be given as _name only
			for _, n := range group[1:] {
				need = append(need, "_"+n)
			}
			obj["fhirRequired"] = append(m.required[def], need)
		}
	}
	m.defs["ResourceList"] = map[string]any{"fhirResource": true}
	m.defs["xhtml"] = map[string]any{"type": "string", "fhirXhtml": true}
	// The package's schema gives base64Binary no pattern; R4's regular
	// expression omits '/', which R4B and R5 restore.
	m.defs["base64Binary"] = map[string]any{"type": "string", "pattern": base64Pattern}

	reached := map[string]any{}
	var visit func(name string) error
	visit = func(name string) error {
		if _, ok := reached[name]; ok {
			return nil
		}
		d, ok := m.defs[name]
		if !ok {
			return fmt.Errorf("schema: definition %q is referenced but missing", name)
		}
		reached[name] = d
		if _, mapped := m.keep[name]; !mapped && !m.primitives[name] {
			if _, ok := d.(map[string]any)["properties"]; ok {
				m.notes = append(m.notes, "schema definition "+name+" is not matched to a StructureDefinition path")
			}
		}
		var refs []string
		collectRefs(d, &refs)
		for _, r := range refs {
			if err := visit(r); err != nil {
				return err
			}
		}
		return nil
	}
	for _, r := range m.resources {
		if err := visit(r); err != nil {
			return nil, err
		}
	}
	for _, d := range reached {
		clean(d, false)
		if obj, ok := d.(map[string]any); ok {
			if _, ok := obj["properties"]; ok {
				// The HL7 schema gives complex types no "type", so that
				// an array or a string passes where an object belongs.
				obj["type"] = "object"
				// FHIR JSON has no empty objects (ele-1: an element
				// has a value or children).
				obj["minProperties"] = 1
			}
		}
	}
	inlinePrimitives(reached, m.primitives)
	if err := checkPatterns(reached); err != nil {
		return nil, err
	}
	m.notes = append(m.notes, fmt.Sprintf("schema keeps %d of %d definitions", len(reached), len(m.defs)))
	sort.Strings(m.notes)
	return map[string]any{
		"$schema":     "http://json-schema.org/draft-06/schema#",
		"definitions": reached,
	}, nil
}

// inlinePrimitives replaces each {"$ref": "#/definitions/<primitive>"} by
// a copy of the primitive's definition: every $ref costs the validator an
// allocation-heavy sub-validation, and primitives are most of the values.
func inlinePrimitives(defs map[string]any, primitives map[string]bool) {
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				obj, ok := c.(map[string]any)
				if ok && len(obj) == 1 {
					ref, _ := obj["$ref"].(string)
					name := strings.TrimPrefix(ref, "#/definitions/")
					if primitives[name] {
						x[k] = copyMap(defs[name].(map[string]any))
						continue
					}
				}
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	for name, d := range defs {
		if !primitives[name] {
			walk(d)
		}
	}
}

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// schemaOverStructure names the definitions whose StructureDefinition in the
// package is not R4 (EvidenceVariable.characteristic has the R5 shape) while
// the schema is: their schema properties are kept unfiltered.
var schemaOverStructure = map[string]bool{"EvidenceVariable_Characteristic": true}

func collectRefs(v any, out *[]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			if k == "$ref" {
				if s, ok := c.(string); ok {
					*out = append(*out, strings.TrimPrefix(s, "#/definitions/"))
				}
				continue
			}
			collectRefs(c, out)
		}
	case []any:
		for _, c := range x {
			collectRefs(c, out)
		}
	}
}

// base64Pattern is base64Binary's regular expression (R5's; R4's lacks '/').
const base64Pattern = `^(\s*([0-9a-zA-Z\+/=]){4}\s*)+$`

// integerPatterns are the HL7 schema's patterns of the integer types; a
// "number" schema carrying one of them (as $ref target or inlined in a
// property) is made an "integer" with the type's lower bound and the
// upper bound of all three (FHIR's integers are 32-bit signed).
var integerPatterns = map[string]any{
	"^-?([0]|([1-9][0-9]*))$": math.MinInt32, // integer
	"^[1-9][0-9]*$":           1,             // positiveInt
	"^[0]|([1-9][0-9]*)$":     0,             // unsignedInt (a malformed pattern)
}

// clean removes descriptions, adds minItems to arrays, types integers as
// integers and removes the patterns of non-string types (JSON Schema
// ignores them; two of them are malformed). inProps tells
// that v is a "properties" map, whose keys are element names.
func clean(v any, inProps bool) {
	switch x := v.(type) {
	case map[string]any:
		if !inProps {
			delete(x, "description")
			if x["type"] == "array" {
				x["minItems"] = 1
			}
			if p, ok := x["pattern"].(string); ok && x["type"] == "number" {
				if minimum, ok := integerPatterns[p]; ok {
					x["type"] = "integer"
					x["minimum"], x["maximum"] = minimum, math.MaxInt32
					x["fhirInteger"] = true
				}
			}
			if t, _ := x["type"].(string); t != "" && t != "string" {
				delete(x, "pattern")
			}
		}
		for k, c := range x {
			clean(c, !inProps && k == "properties")
		}
	case []any:
		for _, c := range x {
			clean(c, false)
		}
	}
}

// checkPatterns makes sure every pattern compiles with Go's RE2 engine,
// which the schema package uses.
func checkPatterns(defs map[string]any) error {
	var err error
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				if s, ok := c.(string); ok && k == "pattern" {
					if _, e := regexp.Compile(s); e != nil && err == nil {
						err = fmt.Errorf("schema pattern %q is not RE2: %w", s, e)
					}
				}
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(defs)
	return err
}
