package schema_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/fhirsub/fhirsub/conformance/definitions"
	"github.com/fhirsub/fhirsub/conformance/schema"
)

// decode decodes JSON the way fhirsub does (numbers as json.Number).
func decode(tb testing.TB, s string) map[string]any {
	tb.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		tb.Fatalf("decode test resource: %v\n%s", err, s)
	}
	return m
}

const observationBP = `{
  "resourceType": "Observation",
  "id": "bp-1",
  "meta": {"versionId": "1", "lastUpdated": "2024-05-01T10:00:00.000Z",
    "profile": ["http://hl7.org/fhir/StructureDefinition/vitalsigns"],
    "tag": [{"system": "http://example.org/tags", "code": "demo"}]},
  "status": "final",
  "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
    "code": "vital-signs", "display": "Vital Signs"}]}],
  "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9",
    "display": "Blood pressure panel with all children optional"}], "text": "Blood pressure"},
  "subject": {"reference": "Patient/example", "display": "Amy Shaw"},
  "encounter": {"reference": "Encounter/e1"},
  "effectiveDateTime": "2024-05-01T09:30:00+02:00",
  "issued": "2024-05-01T09:35:12.123Z",
  "performer": [{"reference": "Practitioner/p1"}],
  "interpretation": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    "code": "L", "display": "low"}]}],
  "bodySite": {"coding": [{"system": "http://snomed.info/sct", "code": "368209003", "display": "Right arm"}]},
  "component": [
    {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6", "display": "Systolic blood pressure"}]},
     "valueQuantity": {"value": 107, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"},
     "interpretation": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "N"}]}]},
    {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4", "display": "Diastolic blood pressure"}]},
     "valueQuantity": {"value": 60.5, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"},
     "interpretation": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "L"}]}]}
  ]
}`

func TestValidResources(t *testing.T) {
	tests := []struct{ name, json string }{
		{"observation blood pressure", observationBP},
		{"minimal observation", `{"resourceType":"Observation","status":"preliminary","code":{"text":"x"},"valueString":"ok"}`},
		{"observation primitive given as extension only", `{"resourceType":"Observation","_status":{"extension":[
			{"url":"http://hl7.org/fhir/StructureDefinition/data-absent-reason","valueCode":"unknown"}]},"code":{"text":"x"}}`},
		{"patient", `{"resourceType":"Patient","id":"example","active":true,
			"identifier":[{"use":"usual","system":"urn:oid:1.2.36.146.595.217.0.1","value":"12345"}],
			"name":[{"use":"official","family":"Chalmers","given":["Peter","James"]}],
			"telecom":[{"system":"phone","value":"(03) 5555 6473","use":"work","rank":1}],
			"gender":"male","birthDate":"1974-12-25","_birthDate":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/patient-birthTime","valueDateTime":"1974-12-25T14:35:45-05:00"}]},
			"deceasedBoolean":false,"multipleBirthInteger":2,
			"address":[{"use":"home","line":["534 Erewhon St"],"city":"PleasantVille","postalCode":"3999","period":{"start":"1974-12-25"}}],
			"contact":[{"relationship":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0131","code":"N"}]}],"name":{"family":"du Marché"}}],
			"link":[{"other":{"reference":"Patient/pat2"},"type":"seealso"}],
			"text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">Peter</div>"}}`},
		{"encounter", `{"resourceType":"Encounter","status":"in-progress","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"},
			"subject":{"reference":"Patient/example"},"period":{"start":"2024-01-01T10:00:00Z"},"length":{"value":90,"unit":"min"}}`},
		{"subscription with backport extensions", `{"resourceType":"Subscription","id":"sub1","meta":{"profile":["http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription"]},
			"status":"requested","reason":"test","end":"2030-01-01T00:00:00Z",
			"criteria":"http://example.org/topic/encounter-start",
			"_criteria":{"extension":[{"url":"http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-filter-criteria","valueString":"Encounter?patient=Patient/123"}]},
			"channel":{"extension":[{"url":"http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-heartbeat-period","valueUnsignedInt":60}],
			"type":"rest-hook","endpoint":"https://example.org/hook","payload":"application/fhir+json",
			"_payload":{"extension":[{"url":"http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content","valueCode":"id-only"}]},
			"header":["Authorization: Bearer x"]}}`},
		{"bundle with nested resources", `{"resourceType":"Bundle","type":"history","total":2,"timestamp":"2024-05-01T10:00:00Z",
			"entry":[{"fullUrl":"urn:uuid:2d0fa7b6-9b4e-4c24-8f1f-5ad1f1f6e5a1","resource":{"resourceType":"Parameters","parameter":[
				{"name":"subscription","valueReference":{"reference":"Subscription/sub1"}},
				{"name":"status","valueCode":"active"},{"name":"events-since-subscription-start","valueString":"1"},
				{"name":"notification-event","part":[{"name":"event-number","valueString":"1"},{"name":"focus","valueReference":{"reference":"Encounter/e1"}}]}]},
				"request":{"method":"GET","url":"Subscription/sub1/$status"},"response":{"status":"200"}},
			{"fullUrl":"http://example.org/fhir/Encounter/e1","resource":{"resourceType":"Encounter","id":"e1","status":"finished","class":{"code":"AMB"}},
				"request":{"method":"PUT","url":"Encounter/e1"},"response":{"status":"201"}}]}`},
		{"contained resource", `{"resourceType":"MedicationRequest","status":"active","intent":"order",
			"contained":[{"resourceType":"Medication","id":"med1","code":{"text":"aspirin"}}],
			"medicationReference":{"reference":"#med1"},"subject":{"reference":"Patient/example"},
			"dosageInstruction":[{"timing":{"repeat":{"frequency":1,"period":1,"periodUnit":"d"}},
			"doseAndRate":[{"doseQuantity":{"value":81,"unit":"mg"}}]}]}`},
		{"questionnaire with nested items", `{"resourceType":"Questionnaire","status":"active","item":[{"linkId":"1","type":"group",
			"item":[{"linkId":"1.1","type":"string","text":"Name?","maxLength":40},{"linkId":"1.2","type":"choice",
			"answerOption":[{"valueCoding":{"code":"y"}}],"item":[{"linkId":"1.2.1","type":"display"}]}]}]}`},
		{"operation outcome", `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid","diagnostics":"bad","expression":["Patient.name"]}]}`},
		{"binary", `{"resourceType":"Binary","contentType":"text/plain","data":"aGVsbG8="}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := schema.Validate(decode(t, tc.json)); err != nil {
				t.Errorf("valid resource rejected: %v", err)
			}
		})
	}
}

func TestInvalidResources(t *testing.T) {
	tests := []struct {
		name     string
		json     string
		path     string // Issue.Path of one reported issue
		contains string // its message contains this
	}{
		{"unknown element", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"foo":1}`,
			"Observation.foo", "unknown element"},
		{"choice with a type it does not allow", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueAddress":{"city":"x"}}`,
			"Observation.valueAddress", "unknown element"},
		{"wrong primitive type", `{"resourceType":"Patient","active":"yes"}`,
			"Patient.active", "expected a boolean, got a string"},
		{"decimal given as a string", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":"5.4"}}`,
			"Observation.valueQuantity.value", "expected a number, got a string"},
		{"bad enum code", `{"resourceType":"Observation","status":"bogus","code":{"text":"x"}}`,
			"Observation.status", `value "bogus" must be one of registered, preliminary, final`},
		{"bad date", `{"resourceType":"Patient","birthDate":"1990-13-45"}`,
			"Patient.birthDate", `"1990-13-45" does not match the date pattern`},
		{"bad dateTime", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"effectiveDateTime":"2024-02-10T25:00:00Z"}`,
			"Observation.effectiveDateTime", "does not match the dateTime pattern"},
		{"bad id", `{"resourceType":"Patient","id":"not an id!"}`,
			"Patient.id", "does not match the id pattern"},
		{"empty string", `{"resourceType":"Patient","name":[{"family":""}]}`,
			"Patient.name[0].family", "does not match the string pattern"},
		{"array where object expected", `{"resourceType":"Observation","status":"final","code":[{"text":"x"}]}`,
			"Observation.code", "expected an object, got an array"},
		{"object where array expected", `{"resourceType":"Patient","name":{"family":"x"}}`,
			"Patient.name", "expected an array, got an object"},
		{"wrong type deep in arrays", `{"resourceType":"Patient","name":[{"given":["a",7]}]}`,
			"Patient.name[0].given[1]", "expected a string, got a number"},
		{"empty array", `{"resourceType":"Patient","identifier":[]}`,
			"Patient.identifier", "array must not be empty"},
		{"missing required primitive", `{"resourceType":"Observation","code":{"text":"x"}}`,
			"Observation.status", "required element is missing"},
		{"missing required complex element", `{"resourceType":"Observation","status":"final"}`,
			"Observation.code", "required element is missing"},
		{"missing required choice", `{"resourceType":"MedicationRequest","status":"active","intent":"order","subject":{"reference":"Patient/1"}}`,
			"MedicationRequest", "one of medicationCodeableConcept, medicationReference"},
		{"extension without url", `{"resourceType":"Patient","extension":[{"valueString":"x"}]}`,
			"Patient.extension[0].url", "required element is missing"},
		{"negative unsignedInt", `{"resourceType":"Bundle","type":"searchset","total":-1}`,
			"Bundle.total", "must be at least 0"},
		{"integer with a fraction", `{"resourceType":"Patient","multipleBirthInteger":1.5}`,
			"Patient.multipleBirthInteger", "expected an integer"},
		{"nested resource of unknown type", `{"resourceType":"Patient","contained":[{"resourceType":"Foo","id":"x"}]}`,
			"Patient.contained[0]", `unknown resource type "Foo"`},
		{"nested resource without type", `{"resourceType":"Patient","contained":[{"id":"x"}]}`,
			"Patient.contained[0]", "no resourceType"},
		{"invalid resource in a bundle", `{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Observation","status":"done","code":{"text":"x"}}}]}`,
			"Bundle.entry[0].resource.status", "must be one of"},
		{"medplum element Meta.project", `{"resourceType":"Patient","meta":{"project":"p1"}}`,
			"Patient.meta.project", "unknown element"},
		{"medplum element Reference.resource", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"resource":{"resourceType":"Patient"}}}`,
			"Observation.subject.resource", "unknown element"},
		{"null value", `{"resourceType":"Patient","gender":null}`,
			"Patient.gender", "must be one of"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := schema.Validate(decode(t, tc.json))
			var se *schema.Error
			if !errors.As(err, &se) {
				t.Fatalf("Validate = %v, want *schema.Error", err)
			}
			for _, is := range se.Issues {
				if is.Path == tc.path && strings.Contains(is.Message, tc.contains) {
					if !strings.Contains(err.Error(), tc.path+": ") {
						t.Errorf("Error() %q does not name %s", err.Error(), tc.path)
					}
					return
				}
			}
			t.Errorf("no issue at %s containing %q; got %v", tc.path, tc.contains, se.Issues)
		})
	}
}

func TestResourceTypeErrors(t *testing.T) {
	tests := []struct {
		name string
		json string
		want error
	}{
		{"missing", `{"id":"x"}`, schema.ErrNoResourceType},
		{"unknown", `{"resourceType":"Foo"}`, schema.ErrUnknownResourceType},
		{"abstract", `{"resourceType":"DomainResource"}`, schema.ErrUnknownResourceType},
		{"not R4", `{"resourceType":"SubscriptionStatus"}`, schema.ErrUnknownResourceType},
		{"not a string", `{"resourceType":7}`, schema.ErrUnknownResourceType},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := schema.Validate(decode(t, tc.json))
			if !errors.Is(err, tc.want) {
				t.Errorf("Validate = %v, want %v", err, tc.want)
			}
			var se *schema.Error
			if errors.As(err, &se) {
				t.Errorf("got a schema.Error for a type problem: %v", se)
			}
		})
	}
	if err := schema.Validate(nil); !errors.Is(err, schema.ErrNoResourceType) {
		t.Errorf("Validate(nil) = %v", err)
	}
}

func TestErrorMessageListsIssues(t *testing.T) {
	err := schema.Validate(decode(t, `{"resourceType":"Observation","status":"x","code":{"text":"x"},"a":1,"b":2}`))
	msg := err.Error()
	for _, want := range []string{"Observation.a: unknown element", "Observation.b: unknown element", "Observation.status: value \"x\" must be one of"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Error() = %q, lacks %q", msg, want)
		}
	}
	var many strings.Builder
	many.WriteString(`{"resourceType":"Patient"`)
	for i := range 15 {
		many.WriteString(`,"x` + string(rune('a'+i)) + `":1`)
	}
	many.WriteString("}")
	err = schema.Validate(decode(t, many.String()))
	var se *schema.Error
	if !errors.As(err, &se) || len(se.Issues) != 15 || !strings.Contains(err.Error(), "and 5 more") {
		t.Errorf("15 unknown elements: %v", err)
	}
}

func TestEveryResourceTypeCompiles(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the schema of all 146 resource types")
	}
	for _, rt := range definitions.ResourceTypes() {
		err := schema.Validate(map[string]any{"resourceType": rt, "id": "x"})
		var se *schema.Error
		if err != nil && !errors.As(err, &se) {
			t.Errorf("%s: %v", rt, err)
		}
		for _, is := range issuesOf(err) {
			if !strings.Contains(is.Message, "required element is missing") {
				t.Errorf("%s: a bare resource reports %s: %s", rt, is.Path, is.Message)
			}
		}
	}
}

func issuesOf(err error) []schema.Issue {
	var se *schema.Error
	if errors.As(err, &se) {
		return se.Issues
	}
	return nil
}

func TestConcurrentValidate(t *testing.T) {
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			types := []string{"Observation", "Patient", "Encounter", "Condition"}
			res := map[string]any{"resourceType": types[i%len(types)], "bogus": true}
			var se *schema.Error
			if err := schema.Validate(res); !errors.As(err, &se) {
				t.Errorf("concurrent Validate = %v", err)
			}
		})
	}
	wg.Wait()
}

func BenchmarkValidateObservation(b *testing.B) {
	res := decode(b, observationBP)
	if err := schema.Validate(res); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := schema.Validate(res); err != nil {
			b.Fatal(err)
		}
	}
}

func TestMandatory(t *testing.T) {
	for rt, want := range map[string][]string{
		"Observation":  {"_status", "code", "resourceType", "status"},
		"Patient":      {"resourceType"},
		"Subscription": {"_criteria", "_reason", "_status", "channel", "criteria", "reason", "resourceType", "status"},
	} {
		got, err := schema.Mandatory(rt)
		if err != nil {
			t.Fatal(err)
		}
		names := make([]string, 0, len(got))
		for n := range got {
			names = append(names, n)
		}
		slices.Sort(names)
		if !slices.Equal(names, want) {
			t.Errorf("Mandatory(%s) = %v, want %v", rt, names, want)
		}
	}
	if _, err := schema.Mandatory("Spaceship"); !errors.Is(err, schema.ErrUnknownResourceType) {
		t.Errorf("Mandatory(Spaceship): %v", err)
	}
}
