package schema_test

import "testing"

// TestChoiceTakesOneType: a choice element (value[x], effective[x], …)
// given under two types is refused where it stands, also inside an
// extension or a backbone element; one type, with or without its _name,
// passes.
func TestChoiceTakesOneType(t *testing.T) {
	for _, c := range []struct {
		body, path, msg string // msg "" = valid
	}{
		{`{"resourceType":"Patient","extension":[{"url":"http://e","valueString":"v","valueInteger":1}]}`,
			"Patient.extension[0]", "valueInteger and valueString are given, but a choice element takes one type"},
		{`{"resourceType":"Patient","extension":[{"url":"http://e","valueString":"v","_valueBoolean":{"extension":[{"url":"http://f","valueCode":"x"}]}}]}`,
			"Patient.extension[0]", "valueBoolean and valueString are given"},
		{`{"resourceType":"Observation","status":"final","code":{"text":"x"},"effectiveDateTime":"2024-01-01","effectivePeriod":{"start":"2024-01-01"}}`,
			"Observation", "effectiveDateTime and effectivePeriod are given"},
		{`{"resourceType":"Observation","status":"final","code":{"text":"x"},"component":[{"code":{"text":"c"},"valueQuantity":{"value":1},"valueString":"s"}]}`,
			"Observation.component[0]", "valueQuantity and valueString are given"},
		{`{"resourceType":"Patient","deceasedBoolean":true,"deceasedDateTime":"2020-01-01"}`, "Patient", "deceasedBoolean and deceasedDateTime are given"},
		{`{"resourceType":"Patient","extension":[{"url":"http://e","valueString":"v","_valueString":{"id":"a"}}]}`, "", ""},
		{`{"resourceType":"Patient","extension":[{"url":"http://e","_valueString":{"extension":[{"url":"http://f","valueCode":"x"}]}}]}`, "", ""},
		{`{"resourceType":"Observation","status":"final","code":{"text":"x"},"effectivePeriod":{"start":"2024-01-01"},"valueString":"s"}`, "", ""},
	} {
		wantIssue(t, c.body, c.path, c.msg)
	}
}

// TestNoEmptyObjects: FHIR JSON has no empty objects (ele-1), neither
// an element nor a primitive's _name.
func TestNoEmptyObjects(t *testing.T) {
	for _, c := range []struct{ body, path string }{
		{`{"resourceType":"Patient","name":[{}]}`, "Patient.name[0]"},
		{`{"resourceType":"Patient","_active":{}}`, "Patient._active"},
		{`{"resourceType":"Observation","status":"final","code":{}}`, "Observation.code"},
		{`{"resourceType":"Patient","contact":[{"name":{"family":"x"},"period":{}}]}`, "Patient.contact[0].period"},
	} {
		wantIssue(t, c.body, c.path, "object must not be empty")
	}
	wantIssue(t, `{"resourceType":"Patient","name":[{"family":"x"}],"_active":{"id":"a"}}`, "", "")
}

// TestExtensionValueOrExtensions: ext-1, an extension has nested
// extensions or a value, one of the two.
func TestExtensionValueOrExtensions(t *testing.T) {
	for _, c := range []struct{ body, path, msg string }{
		{`{"resourceType":"Patient","extension":[{"url":"http://e"}]}`, "Patient.extension[0]", "an extension needs nested extensions or a value (ext-1)"},
		{`{"resourceType":"Patient","extension":[{"url":"http://e","valueString":"v","extension":[{"url":"a","valueCode":"c"}]}]}`,
			"Patient.extension[0]", "an extension has nested extensions or a value, not both (ext-1)"},
		{`{"resourceType":"Patient","_active":{"extension":[{"url":"http://e"}]}}`, "Patient._active.extension[0]", "(ext-1)"},
		{`{"resourceType":"Patient","modifierExtension":[{"url":"http://e"}]}`, "Patient.modifierExtension[0]", "(ext-1)"},
	} {
		wantIssue(t, c.body, c.path, c.msg)
	}
	for _, ok := range []string{
		`{"resourceType":"Patient","extension":[{"url":"http://e","valueString":"v"}]}`,
		`{"resourceType":"Patient","extension":[{"url":"http://e","extension":[{"url":"a","valueCode":"c"},{"url":"b","valueInteger":1}]}]}`,
		`{"resourceType":"Patient","extension":[{"url":"http://e","_valueString":{"extension":[{"url":"http://d","valueCode":"masked"}]}}]}`,
	} {
		wantIssue(t, ok, "", "")
	}
}

// TestIntegers: FHIR's integer, positiveInt and unsignedInt are 32-bit and
// written as digits (JSON Schema's "integer" alone takes 1.0, 1e2 and any
// size).
func TestIntegers(t *testing.T) {
	obs := func(member string) string {
		return `{"resourceType":"Observation","status":"final","code":{"text":"x"},` + member + `}`
	}
	sampled := func(dims string) string {
		return obs(`"valueSampledData":{"origin":{"value":1},"period":1,"dimensions":` + dims + `}`)
	}
	for _, c := range []struct{ body, path, msg string }{
		{obs(`"valueInteger":2147483648`), "Observation.valueInteger", "at most 2147483647"},
		{obs(`"valueInteger":-2147483649`), "Observation.valueInteger", "at least -2147483648"},
		{obs(`"valueInteger":1.0`), "Observation.valueInteger", "1.0 is not an integer as FHIR writes one"},
		{obs(`"valueInteger":1e2`), "Observation.valueInteger", "1e2 is not an integer as FHIR writes one"},
		{obs(`"valueInteger":1.5`), "Observation.valueInteger", "integer"},
		{sampled(`4294967296`), "Observation.valueSampledData.dimensions", "at most 2147483647"},
		{sampled(`2E0`), "Observation.valueSampledData.dimensions", "2E0 is not an integer"},
		{`{"resourceType":"ImagingStudy","status":"available","subject":{"reference":"Patient/1"},"numberOfSeries":3.0}`, "ImagingStudy.numberOfSeries", "3.0 is not an integer"},
		{`{"resourceType":"Patient","multipleBirthInteger":99999999999}`, "Patient.multipleBirthInteger", "at most 2147483647"},
	} {
		wantIssue(t, c.body, c.path, c.msg)
	}
	for _, ok := range []string{
		obs(`"valueInteger":2147483647`),
		obs(`"valueInteger":-2147483648`),
		obs(`"valueInteger":0`),
		obs(`"valueInteger":-0`),
		sampled(`2147483647`),
		`{"resourceType":"ImagingStudy","status":"available","subject":{"reference":"Patient/1"},"numberOfSeries":0}`,
		obs(`"valueQuantity":{"value":1e2}`), // a decimal may have an exponent
	} {
		wantIssue(t, ok, "", "")
	}
}

// TestBase64Binary: base64Binary is groups of four base64 characters,
// with white space between groups (R5's expression; R4's lacks '/').
func TestBase64Binary(t *testing.T) {
	binary := func(data string) string {
		return `{"resourceType":"Binary","contentType":"text/plain","data":"` + data + `"}`
	}
	for _, bad := range []string{"not base64!!", "aGVsbG", "aGVsbG8", "a-_=", "aGV sbG8="} {
		wantIssue(t, binary(bad), "Binary.data", "does not match the base64Binary pattern")
	}
	wantIssue(t, `{"resourceType":"Patient","photo":[{"data":"%%%%"}]}`, "Patient.photo[0].data", "base64Binary")
	for _, ok := range []string{"aGVsbG8=", "aGVs bG8=", "aGVs\\r\\nbG8=", "a+/=", "////"} {
		wantIssue(t, binary(ok), "", "")
	}
}
