package search_test

import (
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/fhirsub/fhirsub/conformance/search"
)

func TestParseCriteriaValid(t *testing.T) {
	tests := []struct {
		name     string
		criteria string
		count    int
		offset   int
		sort     []search.SortKey
		params   []string
	}{
		{name: "type only", criteria: "Observation"},
		{name: "leading slash", criteria: "/Observation?status=final", params: []string{"status"}},
		{name: "token forms", criteria: "Observation?code=http://loinc.org|8867-4,|x,8480-6&category=http://terminology.hl7.org/CodeSystem/observation-category|",
			params: []string{"category", "code"}},
		{name: "AND repeats", criteria: "Observation?code=a&code=b", params: []string{"code"}},
		{name: "reference forms", criteria: "Observation?subject=Patient/1&performer=https://x.org/fhir/Practitioner/2&patient=3&subject:Patient=4",
			params: []string{"patient", "performer", "subject"}},
		{name: "date prefixes", criteria: "Observation?date=ge2024-01-01&date=lt2024-02&_lastUpdated=gt2024-01-01T10:00:00Z",
			params: []string{"_lastUpdated", "date"}},
		{name: "date with offset", criteria: "Observation?date=eq2024-01-01T10:00:00%2B01:00", params: []string{"date"}},
		{name: "all prefixes", criteria: "Observation?value-quantity=eq1,ne2,gt3,lt4,ge5,le6,sa7,eb8,ap9", params: []string{"value-quantity"}},
		{name: "quantity units", criteria: "Observation?value-quantity=5.4|http://unitsofmeasure.org|mg,gt1e2||mg", params: []string{"value-quantity"}},
		{name: "number", criteria: "RiskAssessment?probability=gt0.8", params: []string{"probability"}},
		{name: "string modifiers", criteria: "Patient?name=amé&family:exact=Dupont&given:contains=li", params: []string{"family", "given", "name"}},
		{name: "token modifiers", criteria: "Observation?code:not=a&code:text=blood&status:missing=false", params: []string{"code", "status"}},
		{name: "reference identifier", criteria: "Observation?subject:identifier=urn:oid:1|12345", params: []string{"subject"}},
		{name: "uri modifiers", criteria: "Observation?_profile:below=http://hl7.org/fhir&_source:above=http://a/b/c", params: []string{"_profile", "_source"}},
		{name: "common params", criteria: "Patient?_id=a,b&_tag=s|c&_security=N&_profile=http://p", params: []string{"_id", "_profile", "_security", "_tag"}},
		{name: "composite", criteria: "Observation?code-value-quantity=http://loinc.org|8480-6$gt100&component-code-value-quantity=8462-4$lt90|http://unitsofmeasure.org|mm[Hg]",
			params: []string{"code-value-quantity", "component-code-value-quantity"}},
		{name: "escaped comma", criteria: `Patient?name=a\,b`, params: []string{"name"}},
		{name: "paging and sort", criteria: "Observation?_count=10&_offset=20&_sort=-date,code,_lastUpdated&_format=json&_pretty=true",
			count: 10, offset: 20, sort: []search.SortKey{{Param: "date", Descending: true}, {Param: "code"}, {Param: "_lastUpdated"}}},
		{name: "count zero", criteria: "Observation?_count=0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, err := search.ParseCriteria(tc.criteria)
			if err != nil {
				t.Fatalf("ParseCriteria(%q): %v", tc.criteria, err)
			}
			if q.Count != tc.count || q.Offset != tc.offset {
				t.Errorf("count, offset = %d, %d; want %d, %d", q.Count, q.Offset, tc.count, tc.offset)
			}
			if !slices.Equal(q.Shape().Sort, tc.sort) {
				t.Errorf("sort = %v, want %v", q.Shape().Sort, tc.sort)
			}
			if got := q.Params(); !slices.Equal(got, tc.params) {
				t.Errorf("params = %v, want %v", got, tc.params)
			}
			// The canonical form parses to the same query.
			again, err := search.ParseCriteria(q.String())
			if err != nil {
				t.Fatalf("reparse %q: %v", q.String(), err)
			}
			if again.String() != q.String() {
				t.Errorf("String not stable: %q then %q", q.String(), again.String())
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name     string
		criteria string
		param    string
		message  string
	}{
		{name: "unknown param", criteria: "Observation?colour=red", param: "colour", message: "unknown search parameter"},
		{name: "param of another type", criteria: "Observation?birthdate=2000", param: "birthdate", message: "unknown"},
		{name: "chain on a token", criteria: "Observation?code.name=peter", param: "code.name", message: "only reference parameters chain"},
		{name: "chain to a non-target", criteria: "Observation?encounter:Patient.name=peter", param: "encounter:Patient.name", message: "not a target"},
		{name: "chain to an unknown parameter", criteria: "Observation?subject:Patient.colour=red", param: "subject:Patient.colour", message: "colour"},
		{name: "chain too deep", criteria: "Observation?subject:Patient.organization.partof.partof.name=x", param: "subject:Patient.organization.partof.partof.name", message: "limited"},
		{name: "chain fanning out", criteria: "Observation?focus.subject.name=x", param: "focus.subject.name", message: "name the type"},
		{name: "nested has", criteria: "Patient?_has:Observation:patient:_has:Provenance:target:agent=1", param: "_has:Observation:patient:_has:Provenance:target:agent", message: "nested"},
		{name: "has malformed", criteria: "Patient?_has:Observation:patient=1", param: "_has:Observation:patient", message: "_has:Type"},
		{name: "has not referring", criteria: "Patient?_has:Observation:encounter:code=1", param: "_has:Observation:encounter:code", message: "does not refer"},
		{name: "include star", criteria: "Observation?_include=*", param: "_include", message: "not supported"},
		{name: "include of another type", criteria: "Observation?_include=Encounter:subject", param: "_include", message: "iterate"},
		{name: "include of a token", criteria: "Observation?_include=Observation:code", param: "_include", message: "not a reference"},
		{name: "revinclude not referring", criteria: "Patient?_revinclude=Observation:encounter", param: "_revinclude", message: "does not refer"},
		{name: "elements bad name", criteria: "Patient?_elements=name.given", param: "_elements", message: "top-level"},
		{name: "summary unknown", criteria: "Patient?_summary=short", param: "_summary", message: "not supported"},
		{name: "total bad", criteria: "Patient?_total=lots", param: "_total", message: "accurate"},
		{name: "contained", criteria: "Patient?_contained=true", param: "_contained", message: "not supported"},
		{name: "text", criteria: "Patient?_text=diabetes", param: "_text", message: "not supported"},
		{name: "unknown modifier", criteria: "Patient?name:fuzzy=x", param: "name:fuzzy", message: "unknown modifier"},
		{name: "modifier not for type", criteria: "Patient?birthdate:exact=2000", param: "birthdate:exact", message: "not allowed"},
		{name: "contains on token", criteria: "Observation?code:contains=a", param: "code:contains", message: "not allowed"},
		{name: "token above", criteria: "Observation?code:below=http://snomed.info/sct|123", param: "code:below", message: "not supported"},
		{name: "token in", criteria: "Observation?code:in=http://vs", param: "code:in", message: "not supported"},
		{name: "reference type not a target", criteria: "Observation?encounter:Patient=1", param: "encounter:Patient", message: "not a target"},
		{name: "reference type mismatch", criteria: "Observation?subject:Patient=Group/1", param: "subject:Patient", message: "not a Patient reference"},
		{name: "bad prefix", criteria: "Observation?date=xx2024", param: "date", message: "unknown prefix"},
		{name: "bad date", criteria: "Observation?date=2024-13-01", param: "date", message: "not a FHIR date"},
		{name: "bad day", criteria: "Observation?date=2023-02-29", param: "date", message: "not a FHIR date"},
		{name: "bad number", criteria: "RiskAssessment?probability=gt1/2", param: "probability", message: "not a decimal"},
		{name: "bad quantity", criteria: "Observation?value-quantity=5|mg", param: "value-quantity", message: "a quantity is"},
		{name: "quantity not a number", criteria: "Observation?value-quantity=five", param: "value-quantity", message: "unknown prefix"},
		{name: "missing not boolean", criteria: "Observation?status:missing=maybe", param: "status:missing", message: "true or false"},
		{name: "empty value", criteria: "Observation?code=", param: "code", message: "empty value"},
		{name: "empty OR value", criteria: "Observation?code=a,,b", param: "code", message: "empty value"},
		{name: "empty token", criteria: "Observation?code=|", param: "code", message: "system or a code"},
		{name: "count negative", criteria: "Observation?_count=-1", param: "_count", message: "non-negative"},
		{name: "count text", criteria: "Observation?_count=ten", param: "_count", message: "non-negative"},
		{name: "count twice", criteria: "Observation?_count=1&_count=2", param: "_count", message: "more than once"},
		{name: "offset", criteria: "Observation?_offset=1.5", param: "_offset", message: "non-negative"},
		{name: "sort unknown", criteria: "Observation?_sort=colour", param: "_sort", message: "unknown"},
		{name: "sort composite", criteria: "Observation?_sort=code-value-quantity", param: "_sort", message: "cannot sort"},
		{name: "sort empty", criteria: "Observation?_sort=date,", param: "_sort", message: "empty"},
		{name: "special", criteria: "Location?near=42|-71|10|km", param: "near", message: "not supported"},
		{name: "composite arity", criteria: "Observation?code-value-quantity=8480-6", param: "code-value-quantity", message: "components"},
		{name: "bad escape", criteria: "Observation?code=%zz", param: "code", message: "malformed"},
		{name: "reference id syntax", criteria: "Observation?subject=a b", param: "subject", message: "not a resource id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, err := search.ParseCriteria(tc.criteria)
			if err == nil {
				t.Fatalf("ParseCriteria(%q) = %v, want an error", tc.criteria, q)
			}
			var se *search.Error
			if !errors.As(err, &se) {
				t.Fatalf("error %v is %T, want *search.Error", err, err)
			}
			if se.Param != tc.param {
				t.Errorf("Param = %q, want %q (%v)", se.Param, tc.param, err)
			}
			if !strings.Contains(err.Error(), tc.message) || !strings.Contains(err.Error(), tc.param) {
				t.Errorf("error %q should name %q and contain %q", err, tc.param, tc.message)
			}
		})
	}
}

func TestParseUnknownType(t *testing.T) {
	for _, typ := range []string{"Observations", "", "Resource", "DomainResource"} {
		if _, err := search.Parse(typ, url.Values{}); !errors.Is(err, search.ErrUnknownType) {
			t.Errorf("Parse(%q) error = %v, want ErrUnknownType", typ, err)
		}
	}
}

func TestParseIgnoresFormat(t *testing.T) {
	q, err := search.Parse("Patient", url.Values{"_format": {"json"}, "_pretty": {"true"}})
	if err != nil {
		t.Fatal(err)
	}
	if q.String() != "Patient" || len(q.Params()) != 0 {
		t.Errorf("query = %q, params %v; want no parameters", q, q.Params())
	}
}

// TestIncludesDeduplicatedAndCapped: a repeated _include is walked once (200
// copies made one search take seconds on a large page), and more than
// MaxIncludes distinct values are refused.
func TestIncludesDeduplicatedAndCapped(t *testing.T) {
	v := url.Values{"_include": slices.Repeat([]string{"Observation:subject"}, 200),
		"_include:iterate": {"Observation:subject", "Observation:has-member", "Observation:has-member"}}
	q, err := search.Parse("Observation", v)
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Shape().Includes) != 3 {
		t.Fatalf("%d includes, want 3 (subject, subject:iterate, has-member:iterate): %v", len(q.Shape().Includes), q.Shape().Includes)
	}
	var many []string
	for _, typ := range []string{"Observation", "Condition", "Encounter", "DiagnosticReport", "Procedure",
		"MedicationRequest", "AllergyIntolerance", "Immunization", "CarePlan", "Goal", "ServiceRequest",
		"DocumentReference", "Communication", "Appointment", "Claim", "Coverage", "Consent", "Device",
		"Flag", "List", "NutritionOrder", "RiskAssessment", "Specimen", "Media", "FamilyMemberHistory",
		"ClinicalImpression", "DetectedIssue", "EpisodeOfCare", "ImagingStudy", "MedicationStatement",
		"QuestionnaireResponse", "SupplyRequest", "VisionPrescription", "AdverseEvent"} {
		if _, err := search.Parse("Patient", url.Values{"_revinclude": {typ + ":patient"}}); err == nil {
			many = append(many, typ+":patient")
		}
	}
	if len(many) <= search.MaxIncludes/2 {
		t.Fatalf("only %d types with a patient parameter: %v", len(many), many)
	}
	_, err = search.Parse("Patient", url.Values{"_revinclude": many, "_revinclude:iterate": many})
	var se *search.Error
	if !errors.As(err, &se) || !strings.Contains(se.Message, "distinct") {
		t.Fatalf("%d distinct _revinclude values: %v, want the limit named", len(many), err)
	}
}

// TestErrorUnsupported: a parameter the server does not know or support
// (name, chain, modifier) is marked Unsupported, which Prefer:
// handling=lenient lets the REST layer ignore; a bad value of a known
// parameter is not.
func TestErrorUnsupported(t *testing.T) {
	for _, c := range []struct {
		typ, query  string
		unsupported bool
	}{
		{"Patient", "bogus=1", true},
		{"Patient", "name:sounds-like=x", true},
		{"Observation", "code:in=http://example.org/vs", true},
		{"Observation", "subject:Patient.bogus=x", true},
		{"Patient", "_has:Observation:subject:bogus=x", true},
		{"Patient", "_has:NotAType:subject:code=x", true},
		{"Patient", "_include:bogus=Patient:organization", true},
		{"Patient", "birthdate=2021-13", false},
		{"Patient", "_count=abc", false},
		{"Patient", "_sort=bogus", false},
		{"Patient", "identifier=a|b|c", false},
		{"Observation", "subject:Patient.birthdate=2021-13", false},
	} {
		vals, err := url.ParseQuery(c.query)
		if err != nil {
			t.Fatal(err)
		}
		_, err = search.Parse(c.typ, vals)
		var se *search.Error
		if !errors.As(err, &se) {
			t.Errorf("%s?%s: err = %v; want a search.Error", c.typ, c.query, err)
			continue
		}
		if se.Unsupported != c.unsupported {
			t.Errorf("%s?%s: %v: Unsupported = %v, want %v", c.typ, c.query, err, se.Unsupported, c.unsupported)
		}
	}
}
