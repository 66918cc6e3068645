package definitions_test

import (
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/fhirsub/fhirsub/conformance/definitions"
)

func TestSearchParamCounts(t *testing.T) {
	all := definitions.AllSearchParams()
	if len(all) != 1378 {
		t.Fatalf("AllSearchParams: %d, want 1378", len(all))
	}
	withExpr := 0
	byType := map[string]int{}
	for _, p := range all {
		if p.Expression != "" {
			withExpr++
		}
		byType[p.Type]++
		if p.Code == "" || p.URL == "" || len(p.Base) == 0 {
			t.Errorf("%+v: code, url or base missing", p)
		}
		if got := definitions.SearchParamByURL(p.URL); got != p {
			t.Errorf("SearchParamByURL(%q) = %v", p.URL, got)
		}
	}
	if withExpr != 1375 {
		t.Errorf("params with expression: %d, want 1375", withExpr)
	}
	want := map[string]int{"token": 539, "reference": 472, "string": 133, "date": 109, "composite": 46,
		"uri": 45, "quantity": 27, "number": 6, "special": 1}
	for typ, n := range want {
		if byType[typ] != n {
			t.Errorf("%s params: %d, want %d", typ, byType[typ], n)
		}
	}
	if len(byType) != len(want) {
		t.Errorf("param types %v, want only %v", byType, want)
	}
}

func TestSearchParamsPerType(t *testing.T) {
	common := []string{"_id", "_lastUpdated", "_tag", "_profile", "_security", "_source"}
	for _, rt := range definitions.ResourceTypes() {
		ps := definitions.SearchParams(rt)
		for _, code := range common {
			if ps[code] == nil {
				t.Errorf("%s: no %s", rt, code)
			}
		}
		isDomain := definitions.IsSubtype(rt, "DomainResource")
		if (ps["_text"] != nil) != isDomain {
			t.Errorf("%s: _text present %v, domain resource %v", rt, ps["_text"] != nil, isDomain)
		}
		if len(ps) < len(common)+1 || len(ps) > 80 {
			t.Errorf("%s: %d params, outside the sane range", rt, len(ps))
		}
		for code, p := range ps {
			if p.Code != code {
				t.Errorf("%s: key %q holds param %q", rt, code, p.Code)
			}
		}
	}
	if definitions.SearchParams("NotAType") != nil || definitions.SearchParams("DomainResource") != nil {
		t.Error("SearchParams of an unknown or abstract type is not nil")
	}

	obs := definitions.SearchParams("Observation")
	for code, typ := range map[string]string{"code": "token", "subject": "reference", "patient": "reference",
		"date": "date", "value-quantity": "quantity", "component-code-value-quantity": "composite", "status": "token"} {
		if obs[code] == nil || obs[code].Type != typ {
			t.Errorf("Observation %s: %+v, want type %s", code, obs[code], typ)
		}
	}
	if got := obs["subject"].Target; !slices.Contains(got, "Patient") || !slices.Contains(got, "Group") {
		t.Errorf("Observation subject targets %v", got)
	}
	if got := obs["date"].Comparators; !slices.Contains(got, "ge") {
		t.Errorf("Observation date comparators %v", got)
	}
	if !strings.Contains(obs["code"].Expression, "Observation.code") {
		t.Errorf("Observation code expression %q", obs["code"].Expression)
	}
	if p := definitions.SearchParams("Bundle")["_text"]; p != nil {
		t.Errorf("Bundle has _text: %+v", p)
	}
}

func TestCompositeComponentsResolve(t *testing.T) {
	n := 0
	for _, p := range definitions.AllSearchParams() {
		if p.Type != "composite" {
			if len(p.Components) > 0 {
				t.Errorf("%s: components on a %s param", p.URL, p.Type)
			}
			continue
		}
		n++
		if len(p.Components) < 2 || p.MultipleOr {
			t.Errorf("%s: %d components, multipleOr %v", p.URL, len(p.Components), p.MultipleOr)
		}
		for _, c := range p.Components {
			if definitions.SearchParamByURL(c.Definition) == nil || c.Expression == "" {
				t.Errorf("%s: component %+v does not resolve", p.URL, c)
			}
		}
	}
	if n != 46 {
		t.Errorf("composites: %d", n)
	}
}

func TestSearchParamBasesAndTargets(t *testing.T) {
	for _, p := range definitions.AllSearchParams() {
		for _, b := range p.Base {
			if !definitions.IsResourceType(b) && b != "Resource" && b != "DomainResource" {
				t.Errorf("%s: base %q", p.URL, b)
			}
		}
		for _, tg := range p.Target {
			if !definitions.IsResourceType(tg) {
				t.Errorf("%s: target %q", p.URL, tg)
			}
		}
		if p.Version != "4.0.1" && p.URL != "http://hl7.org/fhir/SearchParameter/DeviceDefinition-classification" {
			t.Errorf("%s: version %q", p.URL, p.Version)
		}
	}
	p := definitions.SearchParamByURL("http://hl7.org/fhir/SearchParameter/DeviceDefinition-classification")
	if p == nil || p.Version != "5.0.0-snapshot1" || definitions.SearchParams("DeviceDefinition")["classification"] != p {
		t.Errorf("DeviceDefinition-classification: %+v", p)
	}
	if definitions.SearchParamByURL("http://example.org/nope") != nil {
		t.Error("SearchParamByURL of an unknown URL is not nil")
	}
}

func TestPatientCompartment(t *testing.T) {
	tests := []struct {
		typ  string
		want []string
	}{
		{"Observation", []string{"subject", "performer"}},
		{"Encounter", []string{"patient"}},
		{"Patient", []string{"link"}},
		{"Organization", nil},
		{"NotAType", nil},
	}
	for _, tc := range tests {
		got := definitions.PatientCompartment(tc.typ)
		if !slices.Equal(got, tc.want) {
			t.Errorf("PatientCompartment(%s) = %v, want %v", tc.typ, got, tc.want)
		}
		for _, code := range got {
			if definitions.SearchParams(tc.typ)[code] == nil {
				t.Errorf("%s: compartment param %q is not a search parameter", tc.typ, code)
			}
		}
	}
}

func TestCompartmentParamsExist(t *testing.T) {
	n := 0
	for _, rt := range definitions.ResourceTypes() {
		for _, code := range definitions.PatientCompartment(rt) {
			n++
			if definitions.SearchParams(rt)[code] == nil {
				t.Errorf("%s: compartment param %q is not a search parameter", rt, code)
			}
		}
	}
	if n < 100 {
		t.Errorf("only %d compartment links", n)
	}
}

func TestResourceTypes(t *testing.T) {
	rts := definitions.ResourceTypes()
	if len(rts) != 146 {
		t.Errorf("ResourceTypes: %d, want 146", len(rts))
	}
	if !slices.IsSorted(rts) {
		t.Error("ResourceTypes not sorted")
	}
	for _, name := range []string{"Observation", "Patient", "Subscription", "Bundle", "Parameters", "VisionPrescription"} {
		if !definitions.IsResourceType(name) || !slices.Contains(rts, name) {
			t.Errorf("%s is not a resource type", name)
		}
	}
	for _, name := range []string{"Resource", "DomainResource", "SubscriptionStatus", "SubscriptionTopic",
		"Quantity", "string", "Observation.component", "observation", "Project", ""} {
		if definitions.IsResourceType(name) {
			t.Errorf("%q is a resource type", name)
		}
	}
}

func TestChild(t *testing.T) {
	tests := []struct {
		typ, name string
		want      definitions.ChildInfo
		containsT string // when set, only check that Types contains it
	}{
		{"Observation", "value", definitions.ChildInfo{Choice: true}, "Quantity"},
		{"Observation", "effective", definitions.ChildInfo{Choice: true}, "Period"},
		{"Observation", "status", definitions.ChildInfo{Types: []string{"code"}}, ""},
		{"Observation", "component", definitions.ChildInfo{Types: []string{"Observation.component"}, Many: true}, ""},
		{"Observation.component", "value", definitions.ChildInfo{Choice: true}, "CodeableConcept"},
		{"Observation.component", "referenceRange", definitions.ChildInfo{Types: []string{"Observation.referenceRange"}, Many: true}, ""},
		{"Questionnaire.item", "item", definitions.ChildInfo{Types: []string{"Questionnaire.item"}, Many: true}, ""},
		{"Questionnaire.item.item", "linkId", definitions.ChildInfo{}, "-"},
		{"Patient", "name", definitions.ChildInfo{Types: []string{"HumanName"}, Many: true}, ""},
		{"Patient", "birthDate", definitions.ChildInfo{Types: []string{"date"}}, ""},
		{"Patient", "deceased", definitions.ChildInfo{Types: []string{"boolean", "dateTime"}, Choice: true,
			Names: []string{"deceasedBoolean", "deceasedDateTime"}}, ""},
		{"Patient", "link", definitions.ChildInfo{Types: []string{"Patient.link"}, Many: true}, ""},
		{"Observation", "id", definitions.ChildInfo{Types: []string{"string"}}, ""},
		{"Observation", "meta", definitions.ChildInfo{Types: []string{"Meta"}}, ""},
		{"Observation", "extension", definitions.ChildInfo{Types: []string{"Extension"}, Many: true}, ""},
		{"Observation", "contained", definitions.ChildInfo{Types: []string{"Resource"}, Many: true}, ""},
		{"Observation.component", "modifierExtension", definitions.ChildInfo{Types: []string{"Extension"}, Many: true}, ""},
		{"Observation.component", "id", definitions.ChildInfo{Types: []string{"string"}}, ""},
		{"Quantity", "extension", definitions.ChildInfo{Types: []string{"Extension"}, Many: true}, ""},
		{"Age", "value", definitions.ChildInfo{Types: []string{"decimal"}}, ""},
		{"SimpleQuantity", "unit", definitions.ChildInfo{Types: []string{"string"}}, ""},
		{"Timing.repeat", "bounds", definitions.ChildInfo{Types: []string{"Duration", "Range", "Period"}, Choice: true,
			Names: []string{"boundsDuration", "boundsRange", "boundsPeriod"}}, ""},
		{"Extension", "url", definitions.ChildInfo{Types: []string{"uri"}}, ""},
		{"Reference", "reference", definitions.ChildInfo{Types: []string{"string"}}, ""},
		{"Bundle.entry", "resource", definitions.ChildInfo{Types: []string{"Resource"}}, ""},
		{"Resource", "id", definitions.ChildInfo{Types: []string{"string"}}, ""},
		{"DomainResource", "text", definitions.ChildInfo{Types: []string{"Narrative"}}, ""},
		{"Element", "extension", definitions.ChildInfo{Types: []string{"Extension"}, Many: true}, ""},
		{"BackboneElement", "modifierExtension", definitions.ChildInfo{Types: []string{"Extension"}, Many: true}, ""},
		{"string", "value", definitions.ChildInfo{Types: []string{"System.String"}}, ""},
		{"Meta", "tag", definitions.ChildInfo{Types: []string{"Coding"}, Many: true}, ""},
		{"Subscription", "channel", definitions.ChildInfo{Types: []string{"Subscription.channel"}}, ""},
		{"Subscription.channel", "header", definitions.ChildInfo{Types: []string{"string"}, Many: true}, ""},
	}
	for _, tc := range tests {
		got, ok := definitions.Child(tc.typ, tc.name)
		if tc.containsT == "-" { // the type is a contentReference path, not a type
			if ok {
				t.Errorf("Child(%s, %s) resolved through a path that is not a type: %+v", tc.typ, tc.name, got)
			}
			continue
		}
		if !ok {
			t.Errorf("Child(%s, %s): not found", tc.typ, tc.name)
			continue
		}
		if tc.containsT != "" {
			if got.Choice != tc.want.Choice || got.Many != tc.want.Many || !slices.Contains(got.Types, tc.containsT) {
				t.Errorf("Child(%s, %s) = %+v, want choice %v many %v with %s", tc.typ, tc.name, got, tc.want.Choice, tc.want.Many, tc.containsT)
			}
			continue
		}
		if got.Choice != tc.want.Choice || got.Many != tc.want.Many || !slices.Equal(got.Types, tc.want.Types) ||
			!slices.Equal(got.Names, tc.want.Names) {
			t.Errorf("Child(%s, %s) = %+v, want %+v", tc.typ, tc.name, got, tc.want)
		}
	}
}

func TestChildMissing(t *testing.T) {
	for _, c := range [][2]string{
		{"Observation", "foo"}, {"Observation", "value[x]"}, {"Observation", "valueQuantity"},
		{"NotAType", "id"}, {"Meta", "project"}, {"Meta", "compartment"}, {"Reference", "resource"},
		{"Patient", "resourceType"}, {"", ""},
	} {
		if got, ok := definitions.Child(c[0], c[1]); ok {
			t.Errorf("Child(%s, %s) = %+v, want not found", c[0], c[1], got)
		}
	}
}

func TestIsSubtype(t *testing.T) {
	yes := [][2]string{
		{"Age", "Quantity"}, {"Age", "Element"}, {"Duration", "Quantity"}, {"SimpleQuantity", "Quantity"},
		{"Observation", "DomainResource"}, {"Observation", "Resource"}, {"DomainResource", "Resource"},
		{"Bundle", "Resource"}, {"code", "string"}, {"id", "string"}, {"markdown", "string"},
		{"positiveInt", "integer"}, {"Observation.component", "BackboneElement"},
		{"Observation.component", "Element"}, {"Timing.repeat", "Element"}, {"Quantity", "Quantity"},
		{"Patient", "Patient"}, {"HumanName", "Element"},
	}
	for _, c := range yes {
		if !definitions.IsSubtype(c[0], c[1]) {
			t.Errorf("IsSubtype(%s, %s) = false", c[0], c[1])
		}
	}
	no := [][2]string{
		{"Quantity", "Age"}, {"Bundle", "DomainResource"}, {"Binary", "DomainResource"},
		{"Patient", "Observation"}, {"string", "code"}, {"Observation", "Element"},
		{"Timing.repeat", "BackboneElement"}, {"NotAType", "Resource"},
	}
	for _, c := range no {
		if definitions.IsSubtype(c[0], c[1]) {
			t.Errorf("IsSubtype(%s, %s) = true", c[0], c[1])
		}
	}
}

func TestIsPrimitive(t *testing.T) {
	for _, p := range []string{"boolean", "string", "code", "date", "dateTime", "instant", "decimal",
		"integer", "positiveInt", "unsignedInt", "uri", "url", "canonical", "id", "oid", "uuid",
		"markdown", "base64Binary", "time", "xhtml"} {
		if !definitions.IsPrimitive(p) {
			t.Errorf("IsPrimitive(%s) = false", p)
		}
	}
	for _, p := range []string{"Quantity", "Observation", "Element", "System.String", "String", ""} {
		if definitions.IsPrimitive(p) {
			t.Errorf("IsPrimitive(%s) = true", p)
		}
	}
}

func TestConcurrentFirstUse(t *testing.T) {
	// The lazy loading must be race-free (run with -race); each package
	// test binary starts with nothing loaded, so this is a first use only
	// when run alone, but it is harmless otherwise.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			_ = definitions.SearchParams("Observation")
			_, _ = definitions.Child("Observation", "value")
			_ = definitions.PatientCompartment("Observation")
		})
	}
	wg.Wait()
}

func TestChildSummary(t *testing.T) {
	for _, tc := range []struct {
		typ, name string
		want      bool
	}{
		{"Patient", "name", true}, {"Patient", "contact", false}, {"Observation", "code", true},
		{"Observation", "note", false}, {"Observation", "value", true}, {"Patient", "id", true}, {"Patient", "text", false},
	} {
		info, ok := definitions.Child(tc.typ, tc.name)
		if !ok || info.Summary != tc.want {
			t.Errorf("Child(%s, %s) = %+v, %v; want Summary %v", tc.typ, tc.name, info, ok, tc.want)
		}
	}
}

// TestElementOfKey: a JSON property names its element, a choice property
// its choice element and the type it carries; a choice named without its
// type, and what the type does not have, have no type.
func TestElementOfKey(t *testing.T) {
	for _, c := range []struct {
		typ, key, name, typeOf string
		choice                 bool
	}{
		{"Observation", "status", "status", "code", false},
		{"Observation", "valueQuantity", "value", "Quantity", true},
		{"Observation", "effectiveDateTime", "effective", "dateTime", true},
		{"Patient", "multipleBirthBoolean", "multipleBirth", "boolean", true},
		{"Observation", "value", "value", "", true},
		{"Attachment", "url", "url", "url", false},
		{"Observation", "valueNonsense", "value", "", true},
		{"Observation", "colour", "", "", false},
	} {
		name, info, _ := definitions.ElementOfKey(c.typ, c.key)
		if name != c.name || info.Choice != c.choice || definitions.TypeOfKey(c.typ, c.key) != c.typeOf {
			t.Errorf("%s.%s: element %q (choice %v), type %q; want %q (%v), %q",
				c.typ, c.key, name, info.Choice, definitions.TypeOfKey(c.typ, c.key), c.name, c.choice, c.typeOf)
		}
	}
}
