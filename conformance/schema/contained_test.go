package schema_test

import "testing"

// TestContainedAndLocalReferences: the invariants of contained resources
// (dom-2 to dom-5) and of local references (ref-1).
func TestContainedAndLocalReferences(t *testing.T) {
	obs := func(rest string) string {
		return `{"resourceType":"Observation","status":"final","code":{"text":"x"},` + rest + `}`
	}
	for _, c := range []struct{ body, path, msg string }{
		{obs(`"contained":[{"resourceType":"Patient","id":"p"}]`), "Observation.contained[0]", "must be referred to from the resource, or refer to it"},
		{obs(`"contained":[{"resourceType":"Patient"}],"subject":{"reference":"#"}`), "Observation.contained[0]", "(dom-3)"},
		{obs(`"contained":[{"resourceType":"Patient","id":"p","contained":[{"resourceType":"Patient","id":"q"}]}],"subject":{"reference":"#p"}`),
			"Observation.contained[0]", "may not contain resources (dom-2)"},
		{obs(`"contained":[{"resourceType":"Patient","id":"p","meta":{"versionId":"1"}}],"subject":{"reference":"#p"}`),
			"Observation.contained[0].meta.versionId", "(dom-4)"},
		{obs(`"contained":[{"resourceType":"Patient","id":"p","meta":{"lastUpdated":"2024-01-01T00:00:00Z"}}],"subject":{"reference":"#p"}`),
			"Observation.contained[0].meta.lastUpdated", "(dom-4)"},
		{obs(`"contained":[{"resourceType":"Patient","id":"p","meta":{"security":[{"code":"R"}]}}],"subject":{"reference":"#p"}`),
			"Observation.contained[0].meta.security", "(dom-5)"},
		{obs(`"subject":{"reference":"#p"}`), "Observation.subject.reference", "the local reference #p names no contained resource (ref-1)"},
		{obs(`"contained":[{"resourceType":"Patient","id":"p"}],"subject":{"reference":"#p"},"performer":[{"reference":"#q"}]`),
			"Observation.performer[0].reference", "#q names no contained resource"},
		// a Bundle's entries are resources of their own
		{`{"resourceType":"Bundle","type":"collection","entry":[{"resource":` + obs(`"subject":{"reference":"#p"}`) + `}]}`,
			"Bundle.entry[0].resource.subject.reference", "(ref-1)"},
	} {
		wantIssue(t, c.body, c.path, c.msg)
	}
	for _, ok := range []string{
		obs(`"contained":[{"resourceType":"Patient","id":"p"}],"subject":{"reference":"#p"}`),
		// referred to by a sibling that the resource refers to
		obs(`"contained":[{"resourceType":"Practitioner","id":"pr"},{"resourceType":"PractitionerRole","id":"role","practitioner":{"reference":"#pr"}}],` +
			`"performer":[{"reference":"#role"}]`),
		// referring to its container
		obs(`"contained":[{"resourceType":"Provenance","id":"pv","target":[{"reference":"#"}],"recorded":"2024-01-01T00:00:00Z","agent":[{"who":{"display":"x"}}]}]`),
		// referred to by a canonical
		`{"resourceType":"Questionnaire","status":"active","contained":[{"resourceType":"ValueSet","id":"vs","status":"active"}],` +
			`"item":[{"linkId":"1","type":"choice","answerValueSet":"#vs"}]}`,
		`{"resourceType":"Bundle","type":"collection","entry":[{"resource":` +
			obs(`"contained":[{"resourceType":"Patient","id":"p"}],"subject":{"reference":"#p"}`) + `}]}`,
		obs(`"note":[{"text":"#1 priority"}]`),
	} {
		wantIssue(t, ok, "", "")
	}
}
