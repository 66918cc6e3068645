package definitions

import (
	"slices"
	"sync"
)

// ChildInfo describes one element of a type.
type ChildInfo struct {
	// Types lists the FHIR type codes the element may have ("CodeableConcept",
	// "dateTime", "Reference", ...). A backbone element has its own path as
	// type ("Observation.component"), and an element defined by reference to
	// another (Questionnaire.item.item) the referenced path
	// ("Questionnaire.item"). The value of a primitive type has a FHIRPath
	// system type ("System.String").
	Types []string
	// Choice tells that the element is a choice (value[x]): its JSON name is
	// the element name followed by the capitalised type (valueQuantity).
	Choice bool
	// Names are the JSON names of a choice element, one for each of
	// Types in order ("valueQuantity", "valueString", ...); nil for any
	// other element.
	Names []string
	// Many tells that the element may repeat (a JSON array).
	Many bool
	// Summary tells that the element is part of the summary view
	// (isSummary: returned for _summary=true).
	Summary bool
}

type typeInfo struct {
	Kind     string             `json:"kind"`
	Base     string             `json:"base"`
	Abstract bool               `json:"abstract"`
	Elements map[string]element `json:"elements"`
}

type element struct {
	T []string `json:"t"`
	C bool     `json:"c"`
	M bool     `json:"m"`
	S bool     `json:"s"`
	N []string `json:"-"` // a choice's JSON names (ChildInfo.Names), made at load
}

// choiceNames fills in the JSON names of every choice element, so that
// reading one (FHIRPath's value, search parameters on value[x]) joins no
// strings.
func choiceNames(types map[string]*typeInfo) {
	for _, t := range types {
		for name, e := range t.Elements {
			if !e.C {
				continue
			}
			e.N = make([]string, len(e.T))
			for i, typ := range e.T {
				e.N[i] = name + upperFirst(typ)
			}
			t.Elements[name] = e
		}
	}
}

// upperFirst capitalises an ASCII type code: "string" → "String".
func upperFirst(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

var (
	typesOnce     sync.Once
	types         map[string]*typeInfo
	resourceTypes []string
)

func typeModel() map[string]*typeInfo {
	typesOnce.Do(func() {
		var f struct {
			Types struct {
				ResourceTypes []string             `json:"resourceTypes"`
				Types         map[string]*typeInfo `json:"types"`
			} `json:"types"`
		}
		mustLoad("types.json.gz", &f)
		types = f.Types.Types
		choiceNames(types)
		resourceTypes = f.Types.ResourceTypes
		slices.Sort(resourceTypes)
	})
	return types
}

// IsResourceType reports whether name is an R4 resource type (concrete:
// "Resource" and "DomainResource" are not).
func IsResourceType(name string) bool {
	t := typeModel()[name]
	return t != nil && t.Kind == "resource" && !t.Abstract
}

// ResourceTypes returns the 146 R4 resource types, sorted.
func ResourceTypes() []string {
	typeModel()
	return resourceTypes
}

// Child describes the element name of typeName. typeName is a resource
// type, a data type (complex or primitive) or the path of a backbone
// element ("Observation.component"); name is the element name, without
// [x] for a choice ("value"). Inherited elements (id, meta, extension,
// modifierExtension, ...) are found too. ok is false when there is no such
// element.
func Child(typeName, name string) (info ChildInfo, ok bool) {
	m := typeModel()
	for depth := 0; depth < 16; depth++ {
		t := m[typeName]
		if t == nil {
			return ChildInfo{}, false
		}
		if e, ok := t.Elements[name]; ok {
			return ChildInfo{Types: e.T, Choice: e.C, Many: e.M, Summary: e.S, Names: e.N}, true
		}
		// Constraint profiles (SimpleQuantity, MoneyQuantity) carry no
		// elements of their own.
		typeName = t.Base
	}
	return ChildInfo{}, false
}

// ElementOfKey describes the element that the JSON property key of an
// object of type typeName holds: the element named key, or for a choice
// (valueQuantity) the choice element (value). name is the element's name;
// ok is false when the type has no such element.
func ElementOfKey(typeName, key string) (name string, info ChildInfo, ok bool) {
	if info, ok := Child(typeName, key); ok {
		return key, info, true
	}
	for i := 1; i < len(key); i++ { // choice names are short: the first capital is usually the type's
		if key[i] >= 'A' && key[i] <= 'Z' {
			if info, ok := Child(typeName, key[:i]); ok && info.Choice {
				return key[:i], info, true
			}
		}
	}
	return "", ChildInfo{}, false
}

// TypeOfKey is the FHIR type of the JSON property key of an object of
// type typeName: its element's one type, or for a choice the type its
// name carries (valueQuantity → Quantity); "" when the type has no such
// element, or the element has several types (a choice named without its
// type).
func TypeOfKey(typeName, key string) string {
	_, info, ok := ElementOfKey(typeName, key)
	if !ok {
		return ""
	}
	if !info.Choice {
		if len(info.Types) == 1 {
			return info.Types[0]
		}
		return ""
	}
	for j, name := range info.Names {
		if name == key {
			return info.Types[j]
		}
	}
	return ""
}

// IsPrimitive reports whether typeName is a FHIR primitive type (boolean,
// string, code, dateTime, ...).
func IsPrimitive(typeName string) bool {
	t := typeModel()[typeName]
	return t != nil && t.Kind == "primitive"
}

// IsSubtype reports whether typeName is base or derives from it: Age from
// Quantity, code from string, Observation from DomainResource and Resource,
// a backbone element from BackboneElement and Element.
func IsSubtype(typeName, base string) bool {
	m := typeModel()
	for depth := 0; depth < 16; depth++ {
		if typeName == base {
			return true
		}
		t := m[typeName]
		if t == nil || t.Base == "" {
			return false
		}
		typeName = t.Base
	}
	return false
}
