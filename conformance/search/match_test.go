package search_test

import (
	"slices"
	"testing"

	"github.com/fhirsub/fhirsub/conformance/search"
)

// matchCase is one query matched against one testdata resource.
type matchCase struct {
	name     string
	file     string
	criteria string
	want     bool
}

func TestMatch(t *testing.T) {
	for _, tc := range matchCases {
		t.Run(tc.name, func(t *testing.T) {
			res := mustLoad(t, tc.file)
			q, err := search.ParseCriteria(tc.criteria)
			if err != nil {
				t.Fatalf("parse %q: %v", tc.criteria, err)
			}
			got, err := q.Match(res)
			if err != nil {
				t.Fatalf("match: %v", err)
			}
			if got != tc.want {
				t.Errorf("%s on %s = %v, want %v", tc.criteria, tc.file, got, tc.want)
			}
		})
	}
}

var matchCases = []matchCase{
	// token
	{"token code any system", "observation-bp.json", "Observation?code=85354-9", true},
	{"token system|code", "observation-bp.json", "Observation?code=http://loinc.org|85354-9", true},
	{"token wrong system", "observation-bp.json", "Observation?code=http://snomed.info/sct|85354-9", false},
	{"token |code needs no system", "observation-bp.json", "Observation?code=|85354-9", false},
	{"token |code on a code", "observation-bp.json", "Observation?status=|final", true},
	{"token system|", "observation-glucose.json", "Observation?code=http://snomed.info/sct|", true},
	{"token system| absent", "observation-bp.json", "Observation?code=http://snomed.info/sct|", false},
	{"token OR", "observation-bp.json", "Observation?status=preliminary,final", true},
	{"token AND", "observation-glucose.json", "Observation?code=15074-8&code=33747003", true},
	{"token AND fails", "observation-glucose.json", "Observation?code=15074-8&code=8480-6", false},
	{"token code case sensitive", "observation-bp.json", "Observation?status=FINAL", false},
	{"token not", "observation-bp.json", "Observation?status:not=final", false},
	{"token not other", "observation-bp.json", "Observation?status:not=amended", true},
	{"token not absent element", "observation-smoking.json", "Observation?data-absent-reason:not=unknown", true},
	{"token text coding display", "observation-bp.json", "Observation?code:text=blood pressure", true},
	{"token text CodeableConcept.text", "observation-smoking.json", "Observation?value-concept:text=former", true},
	{"token text no", "observation-bp.json", "Observation?code:text=glucose", false},
	{"token identifier", "observation-glucose.json", "Observation?identifier=http://www.bmc.nl/zorgportal/identifiers/observations|6323", true},
	{"token identifier type text", "observation-bp.json", "Observation?identifier:text=monitor", true},
	{"token boolean", "patient.json", "Patient?active=true", true},
	{"token boolean false", "patient.json", "Patient?active=false", false},
	{"token contact point", "patient.json", "Patient?email=amelie.dupont@example.fr", true},
	{"token phone not email", "patient.json", "Patient?email=%2B33 1 23 45 67 89", false},
	{"token telecom system", "patient.json", "Patient?telecom=phone|%2B33 1 23 45 67 89", true},
	{"token Coding class", "encounter.json", "Encounter?class=http://terminology.hl7.org/CodeSystem/v3-ActCode|AMB", true},
	{"token gender", "patient.json", "Patient?gender=female", true},
	{"_id", "patient.json", "Patient?_id=pat-1", true},
	{"_id OR", "patient.json", "Patient?_id=x,pat-1", true},
	{"_id no", "patient.json", "Patient?_id=pat-2", false},
	{"_tag", "observation-bp.json", "Observation?_tag=http://example.org/tags|ward-7", true},
	{"_security", "observation-bp.json", "Observation?_security=N", true},
	{"escaped pipe in code", "observation-bp.json", `Observation?code=http://loinc.org\|85354-9`, false},
	// missing
	{"missing true", "observation-glucose.json", "Observation?value-concept:missing=true", true},
	{"missing false", "observation-glucose.json", "Observation?value-quantity:missing=false", true},
	{"missing false absent", "observation-smoking.json", "Observation?value-quantity:missing=false", false},
	{"missing true present", "observation-bp.json", "Observation?encounter:missing=true", false},
	// reference
	{"reference Type/id", "observation-bp.json", "Observation?subject=Patient/pat-1", true},
	{"reference id only", "observation-bp.json", "Observation?subject=pat-1", true},
	{"reference typed modifier", "observation-bp.json", "Observation?subject:Patient=pat-1", true},
	{"reference typed modifier other type", "observation-bp.json", "Observation?subject:Group=pat-1", false},
	{"reference patient param", "observation-bp.json", "Observation?patient=Patient/pat-1", true},
	{"reference absolute search value", "observation-bp.json", "Observation?subject=https://fhir.example.org/r4/Patient/pat-1", true},
	{"reference absolute in resource", "condition.json", "Condition?patient=Patient/pat-2", true},
	{"reference versioned in resource", "medicationrequest.json", "MedicationRequest?subject=Patient/pat-2", true},
	{"reference versioned search value", "observation-bp.json", "Observation?subject=Patient/pat-1/_history/9", true},
	{"reference absolute versioned performer", "observation-bp.json", "Observation?performer=Patient/pat-1", true},
	{"reference wrong id", "observation-bp.json", "Observation?subject=Patient/pat-10", false},
	{"reference urn", "observation-glucose.json", "Observation?specimen=urn:uuid:6b8f2e3a-1c1b-4c3e-9e0f-4a1f6f0d7e21", true},
	{"reference identifier modifier", "observation-bp.json", "Observation?subject:identifier=urn:oid:1|2", false},
	{"reference OR", "diagnosticreport.json", "DiagnosticReport?result=Observation/x,Observation/bp-1", true},
	// string
	{"string starts with", "patient.json", "Patient?family=dupont", true},
	{"string accents and case", "patient.json", "Patient?given=AMELIE", true},
	{"string accent in value", "patient.json", "Patient?family=dupont-lefe", true},
	{"string not starts with", "patient.json", "Patient?family=lefevre", false},
	{"string contains", "patient.json", "Patient?family:contains=lefevre", true},
	{"string exact", "patient.json", "Patient?family:exact=Dupont-Lefèvre", true},
	{"string exact case", "patient.json", "Patient?family:exact=dupont-lefèvre", false},
	{"string exact accent", "patient.json", "Patient?family:exact=Dupont-Lefevre", false},
	{"string name parts", "patient.json", "Patient?name=jose", true},
	{"string name text", "patient.json", "Patient?name=mimi", true},
	{"string name prefix", "patient.json", "Patient?name=mme", true},
	{"string address", "patient.json", "Patient?address=besancon", true},
	{"string address line", "patient.json", "Patient?address=12 rue de l'eglise", true},
	{"string address city", "patient.json", "Patient?address-city=Besan", true},
	{"string address-city not line", "patient.json", "Patient?address-city=12", false},
	{"string escaped comma", "patient.json", `Patient?name=mimi\,x`, false},
	// date
	{"date year contains day", "observation-bp.json", "Observation?date=2024", true},
	{"date month", "observation-bp.json", "Observation?date=2024-03", true},
	{"date day", "observation-bp.json", "Observation?date=2024-03-01", true},
	{"date other day", "observation-bp.json", "Observation?date=2024-03-02", false},
	{"date finer than value", "observation-bp.json", "Observation?date=2024-03-01T10:00:00Z", false},
	{"date ge", "observation-bp.json", "Observation?date=ge2024-01-01", true},
	{"date ge same day", "observation-bp.json", "Observation?date=ge2024-03-01", true},
	{"date gt same day", "observation-bp.json", "Observation?date=gt2024-03-01", false},
	{"date gt earlier", "observation-bp.json", "Observation?date=gt2024-02-29", true},
	{"date le", "observation-bp.json", "Observation?date=le2024-03-01", true},
	{"date lt", "observation-bp.json", "Observation?date=lt2024-03-01", false},
	{"date lt later", "observation-bp.json", "Observation?date=lt2024-03-02", true},
	{"date ne", "observation-bp.json", "Observation?date=ne2024-03-01", false},
	{"date ne other", "observation-bp.json", "Observation?date=ne2024-02", true},
	{"date sa", "observation-bp.json", "Observation?date=sa2024-02-29", true},
	{"date sa overlap", "observation-bp.json", "Observation?date=sa2024-03", false},
	{"date eb", "observation-bp.json", "Observation?date=eb2024-03-02", true},
	{"date eb no", "observation-bp.json", "Observation?date=eb2024-03-01", false},
	{"date ap", "observation-bp.json", "Observation?date=ap2024-03-02", true},
	{"date ap far", "observation-bp.json", "Observation?date=ap2010-01-01", false},
	{"date AND range", "observation-bp.json", "Observation?date=ge2024-02-01&date=lt2024-04-01", true},
	{"date AND range misses", "observation-bp.json", "Observation?date=ge2024-03-02&date=lt2024-04-01", false},
	{"dateTime with zone", "observation-smoking.json", "Observation?date=2022-07-14T13:00:00Z", true},
	{"dateTime zone shifts day", "observation-smoking.json", "Observation?date=ge2022-07-14T13:00:01Z", false},
	{"period eq needs containment", "observation-glucose.json", "Observation?date=2023-12-31", false},
	{"period eq contained", "observation-glucose.json", "Observation?date=2023-12", true},
	{"period overlaps gt", "observation-glucose.json", "Observation?date=gt2023-12-30T23:00:00Z", true},
	{"period overlaps lt", "observation-glucose.json", "Observation?date=lt2023-12-31T00:00:00Z", true},
	{"period ge year before", "observation-glucose.json", "Observation?date=ge2024-01-01", false},
	{"period sa", "observation-glucose.json", "Observation?date=sa2023-12-29", true},
	{"period sa overlap", "observation-glucose.json", "Observation?date=sa2023-12-30", false},
	{"open period gt", "diagnosticreport.json", "DiagnosticReport?date=gt2030-01-01", true},
	{"open period eq", "diagnosticreport.json", "DiagnosticReport?date=2024", false},
	{"open period lt", "diagnosticreport.json", "DiagnosticReport?date=lt2024-01-02T08:00:00Z", false},
	{"onset period month start", "condition.json", "Condition?onset-date=ge2019-05-31", true},
	{"onset period lt", "condition.json", "Condition?onset-date=lt2019-05-01", false},
	{"instant", "observation-glucose.json", "Observation?_lastUpdated=2023-12-31T23:59:59Z", true},
	{"instant le", "observation-glucose.json", "Observation?_lastUpdated=le2023-12-31", true},
	{"instant ge new year", "observation-glucose.json", "Observation?_lastUpdated=ge2024-01-01", false},
	{"instant millis", "observation-bp.json", "Observation?_lastUpdated=gt2024-03-01T10:15:30.122Z", true},
	{"instant millis eq", "observation-bp.json", "Observation?_lastUpdated=2024-03-01T10:15:30Z", true},
	{"birthdate", "patient.json", "Patient?birthdate=1974-12", true},
	{"dateTime with offset", "medicationrequest.json", "MedicationRequest?authoredon=2024-01-15", true},
	{"timing event", "medicationrequest.json", "MedicationRequest?date=2024-01-17", true},
	{"timing event no", "medicationrequest.json", "MedicationRequest?date=2024-01-18", false},
	{"period lt", "encounter.json", "Encounter?date=lt2024-03-01T09:00:00Z", false},
	{"period le at start", "encounter.json", "Encounter?date=le2024-03-01T09:00:00Z", false},
	{"period le after start", "encounter.json", "Encounter?date=le2024-03-01T09:00:01Z", true},
	// quantity
	{"quantity eq implicit precision", "observation-glucose.json", "Observation?value-quantity=6.3", true},
	{"quantity eq low precision", "observation-glucose.json", "Observation?value-quantity=6", true},
	{"quantity eq outside", "observation-glucose.json", "Observation?value-quantity=6.2", false},
	{"quantity gt", "observation-glucose.json", "Observation?value-quantity=gt6.2", true},
	{"quantity lt", "observation-glucose.json", "Observation?value-quantity=lt6.3", false},
	{"quantity le", "observation-glucose.json", "Observation?value-quantity=le6.30", true},
	{"quantity ne", "observation-glucose.json", "Observation?value-quantity=ne7", true},
	{"quantity ap", "observation-glucose.json", "Observation?value-quantity=ap6.8", true},
	{"quantity ap far", "observation-glucose.json", "Observation?value-quantity=ap8", false},
	{"quantity system code", "observation-glucose.json", "Observation?value-quantity=6.3|http://unitsofmeasure.org|mmol/L", true},
	{"quantity unit only", "observation-glucose.json", "Observation?value-quantity=6.3||mmol/l", true},
	{"quantity wrong unit", "observation-glucose.json", "Observation?value-quantity=6.3|http://unitsofmeasure.org|mg/dL", false},
	{"quantity exponent", "observation-glucose.json", "Observation?value-quantity=gt5e0", true},
	{"quantity on components", "observation-bp.json", "Observation?component-value-quantity=gt100", true},
	{"quantity duration", "encounter.json", "Encounter?length=90|http://unitsofmeasure.org|min", true},
	// composite
	{"composite code value", "observation-glucose.json", "Observation?code-value-quantity=http://loinc.org|15074-8$gt6", true},
	{"composite code value no", "observation-glucose.json", "Observation?code-value-quantity=http://loinc.org|15074-8$gt7", false},
	{"composite components", "observation-bp.json", "Observation?component-code-value-quantity=8480-6$gt100", true},
	{"composite components crossed", "observation-bp.json", "Observation?component-code-value-quantity=8462-4$gt100", false},
	{"composite combo", "observation-bp.json", "Observation?combo-code-value-quantity=8462-4$60.5|http://unitsofmeasure.org|mm[Hg]", true},
	{"composite concept", "observation-smoking.json", "Observation?code-value-concept=72166-2$http://snomed.info/sct|8517006", true},
	// uri
	{"uri profile", "observation-bp.json", "Observation?_profile=http://hl7.org/fhir/StructureDefinition/vitalsigns", true},
	{"uri profile versioned exact", "observation-bp.json", "Observation?_profile=http://hl7.org/fhir/us/core/StructureDefinition/us-core-blood-pressure|6.1.0", true},
	{"uri profile any version", "observation-bp.json", "Observation?_profile=http://hl7.org/fhir/us/core/StructureDefinition/us-core-blood-pressure", true},
	{"uri profile other version", "observation-bp.json", "Observation?_profile=http://hl7.org/fhir/us/core/StructureDefinition/us-core-blood-pressure|7.0.0", false},
	{"date plus decoded as space", "observation-smoking.json", "Observation?date=2022-07-14T08:00:00+05:00", false},
	{"date plus decoded as space matches", "observation-smoking.json", "Observation?date=2022-07-14T18:00:00+05:00", true},
	{"uri below", "observation-bp.json", "Observation?_profile:below=http://hl7.org/fhir/", true},
	{"uri above", "observation-bp.json", "Observation?_source:above=http://monitor.example.org/device/42/part/1", true},
	{"uri no", "observation-bp.json", "Observation?_source=http://monitor.example.org/device", false},
	// type and combinations
	{"other type never matches", "patient.json", "Observation?_id=pat-1", false},
	{"no clauses", "patient.json", "Patient", true},
	{"mixed AND", "observation-bp.json", "Observation?code=85354-9&subject=Patient/pat-1&date=ge2024&status=final,amended&_count=5&_sort=-date", true},
}

func TestLess(t *testing.T) {
	all := mustLoadAll(t)
	var obs []map[string]any
	for _, r := range all {
		if r["resourceType"] == "Observation" {
			obs = append(obs, r)
		}
	}
	tests := []struct {
		criteria string
		want     []string
	}{
		{"Observation?_sort=date", []string{"smoke-3", "glu-7", "bp-1"}},
		{"Observation?_sort=-date", []string{"bp-1", "glu-7", "smoke-3"}},
		{"Observation?_sort=value-quantity", []string{"glu-7", "bp-1", "smoke-3"}}, // missing last
		{"Observation?_sort=-value-quantity", []string{"glu-7", "bp-1", "smoke-3"}},
		{"Observation?_sort=status,-_id", []string{"smoke-3", "glu-7", "bp-1"}},
		{"Observation?_sort=-_lastUpdated", []string{"bp-1", "glu-7", "smoke-3"}},
	}
	for _, tc := range tests {
		t.Run(tc.criteria, func(t *testing.T) {
			q, err := search.ParseCriteria(tc.criteria)
			if err != nil {
				t.Fatal(err)
			}
			got := slices.Clone(obs)
			slices.SortStableFunc(got, func(a, b map[string]any) int {
				switch {
				case q.Less(a, b):
					return -1
				case q.Less(b, a):
					return 1
				}
				return 0
			})
			var ids []string
			for _, r := range got {
				ids = append(ids, r["id"].(string))
			}
			if !slices.Equal(ids, tc.want) {
				t.Errorf("order = %v, want %v", ids, tc.want)
			}
		})
	}
}
