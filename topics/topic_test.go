package topics_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/fhirsub/fhirsub/conformance/search"
	"github.com/fhirsub/fhirsub/topics"
)

// encounterComplete is the R5 shape of the IG's encounter-complete topic
// (without its "_in" filter, which is not an R4 search parameter).
const encounterComplete = `{
  "resourceType": "SubscriptionTopic",
  "url": "http://example.org/SubscriptionTopic/encounter-complete",
  "version": "1.2.0",
  "title": "Encounter complete",
  "status": "active",
  "resourceTrigger": [{
    "description": "An Encounter is finished",
    "resource": "http://hl7.org/fhir/StructureDefinition/Encounter",
    "supportedInteraction": ["create", "update"],
    "queryCriteria": {
      "previous": "status:not=finished",
      "resultForCreate": "test-passes",
      "current": "status=finished",
      "resultForDelete": "test-fails",
      "requireBoth": true
    },
    "fhirPathCriteria": "(%previous.id.empty() or (%previous.status != 'finished')) and (%current.status = 'finished')"
  }],
  "canFilterBy": [
    {"description": "subject", "resource": "Encounter", "filterParameter": "subject"},
    {"resource": "Encounter", "filterParameter": "patient"},
    {"resource": "Encounter", "filterParameter": "length", "comparator": ["gt", "lt", "ge", "le"], "modifier": ["missing"]}
  ],
  "notificationShape": [{
    "resource": "Encounter",
    "include": ["Encounter:patient&iterate=Patient.link", "Encounter:practitioner", "Encounter:location"],
    "revInclude": ["Encounter:subject"]
  }]
}`

// r4bTopic uses R4B's single modifier list, which mixes comparators in.
const r4bTopic = `{
  "resourceType": "SubscriptionTopic",
  "url": "http://example.org/SubscriptionTopic/r4b-encounter",
  "status": "draft",
  "resourceTrigger": [{"resource": "Encounter", "supportedInteraction": ["create"]}],
  "canFilterBy": [{"resource": "Encounter", "filterParameter": "length", "modifier": ["=", "gt", "le", "missing"]}]
}`

// basicTopic is encounter-complete as a Basic resource (Backport IG 1.2.0),
// mixing 5.0 and 4.3 cross-version URLs and artifact-* metadata as the IG's
// examples do.
const basicTopic = `{
  "resourceType": "Basic",
  "id": "r4-encounter-complete",
  "meta": {"profile": ["http://hl7.org/fhir/5.0/StructureDefinition/profile-SubscriptionTopic"]},
  "extension": [
    {"url": "http://hl7.org/fhir/StructureDefinition/artifact-url", "valueUri": "http://example.org/SubscriptionTopic/r4-encounter-complete"},
    {"url": "http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.version", "valueString": "2.0.0"},
    {"url": "http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.title", "valueString": "R4 Encounter Complete"},
    {"url": "http://example.org/some-other-extension", "valueString": "ignored"},
    {"url": "http://hl7.org/fhir/4.3/StructureDefinition/extension-SubscriptionTopic.resourceTrigger", "extension": [
      {"url": "description", "valueMarkdown": "Triggered when an encounter is completed."},
      {"url": "resource", "valueUri": "http://hl7.org/fhir/StructureDefinition/Encounter"},
      {"url": "supportedInteraction", "valueCode": "create"},
      {"url": "supportedInteraction", "valueCode": "update"},
      {"url": "queryCriteria", "extension": [
        {"url": "previous", "valueString": "status:not=finished"},
        {"url": "resultForCreate", "valueCode": "test-passes"},
        {"url": "current", "valueString": "status=finished"},
        {"url": "resultForDelete", "valueCode": "test-fails"},
        {"url": "requireBoth", "valueBoolean": true}
      ]},
      {"url": "fhirPathCriteria", "valueString": "(%previous.id.empty() or (%previous.status != 'finished')) and (%current.status = 'finished')"}
    ]},
    {"url": "http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.canFilterBy", "extension": [
      {"url": "description", "valueMarkdown": "Filter based on the subject of an encounter."},
      {"url": "resource", "valueUri": "Encounter"},
      {"url": "filterParameter", "valueString": "subject"}
    ]},
    {"url": "http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.canFilterBy", "extension": [
      {"url": "resource", "valueUri": "Encounter"},
      {"url": "filterParameter", "valueString": "length"},
      {"url": "modifier", "valueCode": "gt"},
      {"url": "modifier", "valueCode": "lt"}
    ]},
    {"url": "http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.notificationShape", "extension": [
      {"url": "resource", "valueUri": "Encounter"},
      {"url": "include", "valueString": "Encounter:patient&iterate=Patient.link"},
      {"url": "revInclude", "valueString": "Encounter:subject"},
      {"url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-related-query", "extension": [
        {"url": "query", "valueString": "http://example.org/fhir/Encounter/[id]/$prescribed-medications"}
      ]}
    ]}
  ],
  "modifierExtension": [
    {"url": "http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.status", "valueCode": "active"}
  ],
  "code": {"coding": [{"system": "http://hl7.org/fhir/fhir-types", "code": "SubscriptionTopic"}]}
}`

func TestParseR5(t *testing.T) {
	tp := mustParse(t, encounterComplete)
	if tp.URL != "http://example.org/SubscriptionTopic/encounter-complete" || tp.Version != "1.2.0" ||
		tp.Title != "Encounter complete" || tp.Status != "active" || tp.EventType != "" {
		t.Errorf("metadata: %+v", tp)
	}
	if tp.Canonical() != tp.URL+"|1.2.0" {
		t.Errorf("Canonical() = %q", tp.Canonical())
	}
	if len(tp.Triggers) != 1 {
		t.Fatalf("%d triggers", len(tp.Triggers))
	}
	tr := tp.Triggers[0]
	if tr.Resource != "Encounter" || !slices.Equal(tr.Interactions, []string{"create", "update"}) ||
		tr.Previous == nil || tr.Current == nil || tr.FHIRPath == nil || !tr.RequireBoth ||
		tr.ResultForCreate != "test-passes" || tr.ResultForDelete != "test-fails" {
		t.Errorf("trigger: %+v", tr)
	}
	if tr.Current.Type != "Encounter" {
		t.Errorf("current query type %q", tr.Current.Type)
	}
	if len(tp.CanFilterBy) != 3 || tp.CanFilterBy[2].Param != "length" ||
		!slices.Equal(tp.CanFilterBy[2].Comparators, []string{"gt", "lt", "ge", "le"}) ||
		!slices.Equal(tp.CanFilterBy[2].Modifiers, []string{"missing"}) {
		t.Errorf("canFilterBy: %+v", tp.CanFilterBy)
	}
	if len(tp.Shapes) != 1 || len(tp.Shapes[0].Include) != 3 || tp.Shapes[0].RevInclude[0] != "Encounter:subject" {
		t.Errorf("shapes: %+v", tp.Shapes)
	}
	if got := tp.ResourceTypes(); !slices.Equal(got, []string{"Encounter"}) {
		t.Errorf("ResourceTypes() = %v", got)
	}
	if tp.Resource["url"] != tp.URL {
		t.Errorf("Resource is not the resource given")
	}
}

func TestParseR4BModifiers(t *testing.T) {
	fd := mustParse(t, r4bTopic).CanFilterBy[0]
	if !slices.Equal(fd.Comparators, []string{"gt", "le"}) || !slices.Equal(fd.Modifiers, []string{"missing"}) {
		t.Errorf("R4B modifier list split into comparators %v, modifiers %v", fd.Comparators, fd.Modifiers)
	}
}

func TestParseBasic(t *testing.T) {
	tp := mustParse(t, basicTopic)
	if tp.URL != "http://example.org/SubscriptionTopic/r4-encounter-complete" || tp.Version != "2.0.0" ||
		tp.Title != "R4 Encounter Complete" || tp.Status != "active" {
		t.Errorf("metadata: url %q version %q title %q status %q", tp.URL, tp.Version, tp.Title, tp.Status)
	}
	if tp.Resource["resourceType"] != "Basic" {
		t.Errorf("Resource should be the Basic as given")
	}
	if len(tp.Triggers) != 1 {
		t.Fatalf("%d triggers", len(tp.Triggers))
	}
	tr := tp.Triggers[0]
	if tr.Resource != "Encounter" || !slices.Equal(tr.Interactions, []string{"create", "update"}) ||
		tr.Previous == nil || tr.Current == nil || tr.FHIRPath == nil || !tr.RequireBoth ||
		tr.ResultForCreate != "test-passes" || tr.ResultForDelete != "test-fails" {
		t.Errorf("trigger: %+v", tr)
	}
	if len(tp.CanFilterBy) != 2 || tp.CanFilterBy[0].Param != "subject" ||
		!slices.Equal(tp.CanFilterBy[1].Comparators, []string{"gt", "lt"}) {
		t.Errorf("canFilterBy: %+v", tp.CanFilterBy)
	}
	if len(tp.Shapes) != 1 || tp.Shapes[0].Include[0] != "Encounter:patient&iterate=Patient.link" {
		t.Errorf("shapes: %+v", tp.Shapes)
	}
	// The Basic form and the R5 form behave alike.
	r5 := mustParse(t, encounterComplete)
	enc := func(status string) map[string]any {
		return mustJSON(t, `{"resourceType":"Encounter","id":"e1","status":"`+status+`","class":{"code":"IMP"}}`)
	}
	for _, c := range []topics.Change{
		{Interaction: "create", Current: enc("finished")},
		{Interaction: "create", Current: enc("in-progress")},
		{Interaction: "update", Previous: enc("in-progress"), Current: enc("finished")},
		{Interaction: "update", Previous: enc("finished"), Current: enc("finished")},
		{Interaction: "delete", Previous: enc("finished")},
	} {
		a, errA := tp.Triggered(c)
		b, errB := r5.Triggered(c)
		if errA != nil || errB != nil || a != b {
			t.Errorf("%s %v: Basic %v (%v), R5 %v (%v)", c.Interaction, c.Current["status"], a, errA, b, errB)
		}
	}
}

func TestParseInvalid(t *testing.T) {
	valid := mustJSON(t, encounterComplete)
	tests := []struct {
		name    string
		edit    func(m map[string]any)
		element string
		msg     string
	}{
		{"no url", func(m map[string]any) { delete(m, "url") }, "SubscriptionTopic.url", "missing"},
		{"relative url", func(m map[string]any) { m["url"] = "topic/1" }, "SubscriptionTopic.url", "absolute"},
		{"no status", func(m map[string]any) { delete(m, "status") }, "SubscriptionTopic.status", "missing"},
		{"bad status", func(m map[string]any) { m["status"] = "live" }, "SubscriptionTopic.status", "live"},
		{"title not a string", func(m map[string]any) { m["title"] = true }, "SubscriptionTopic.title", "string"},
		{"no trigger", func(m map[string]any) { delete(m, "resourceTrigger") }, "SubscriptionTopic.resourceTrigger", "at least one"},
		{"event triggers only", func(m map[string]any) {
			delete(m, "resourceTrigger")
			m["eventTrigger"] = []any{map[string]any{"event": map[string]any{"text": "admit"}, "resource": "Encounter"}}
		}, "SubscriptionTopic.eventTrigger", "not supported"},
		{"unknown resource", func(m map[string]any) { trigger(m)["resource"] = "Encounterr" }, "SubscriptionTopic.resourceTrigger[0].resource", "unknown resource type"},
		{"profile as resource", func(m map[string]any) {
			trigger(m)["resource"] = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-encounter"
		}, "SubscriptionTopic.resourceTrigger[0].resource", "unknown resource type"},
		{"bad interaction", func(m map[string]any) { trigger(m)["supportedInteraction"] = []any{"create", "read"} },
			"SubscriptionTopic.resourceTrigger[0].supportedInteraction[1]", "read"},
		{"unknown query parameter", func(m map[string]any) { criteria(m)["current"] = "colour=red" },
			"SubscriptionTopic.resourceTrigger[0].queryCriteria.current", `"colour"`},
		{"bad modifier in previous", func(m map[string]any) { criteria(m)["previous"] = "status:sideways=x" },
			"SubscriptionTopic.resourceTrigger[0].queryCriteria.previous", "status:sideways"},
		{"query on another type", func(m map[string]any) { criteria(m)["current"] = "Observation?status=final" },
			"SubscriptionTopic.resourceTrigger[0].queryCriteria.current", "Observation"},
		{"bad resultForCreate", func(m map[string]any) { criteria(m)["resultForCreate"] = "maybe" },
			"SubscriptionTopic.resourceTrigger[0].queryCriteria.resultForCreate", "maybe"},
		{"requireBoth not boolean", func(m map[string]any) { criteria(m)["requireBoth"] = "yes" },
			"SubscriptionTopic.resourceTrigger[0].queryCriteria.requireBoth", "boolean"},
		{"bad FHIRPath", func(m map[string]any) { trigger(m)["fhirPathCriteria"] = "%current.status = = 'x'" },
			"SubscriptionTopic.resourceTrigger[0].fhirPathCriteria", ""},
		{"filter not a search parameter", func(m map[string]any) { filter(m, 0)["filterParameter"] = "_in" },
			"SubscriptionTopic.canFilterBy[0].filterParameter", `"_in" is not a search parameter of Encounter`},
		{"filter on a type without trigger", func(m map[string]any) { filter(m, 0)["resource"] = "Observation" },
			"SubscriptionTopic.canFilterBy[0].resource", "Observation"},
		{"no filter parameter", func(m map[string]any) { delete(filter(m, 1), "filterParameter") },
			"SubscriptionTopic.canFilterBy[1].filterParameter", "missing"},
		{"unknown comparator", func(m map[string]any) { filter(m, 2)["comparator"] = []any{"gt", "bigger"} },
			"SubscriptionTopic.canFilterBy[2].comparator[1]", "bigger"},
		{"unknown modifier", func(m map[string]any) { filter(m, 2)["modifier"] = []any{"fuzzy"} },
			"SubscriptionTopic.canFilterBy[2].modifier[0]", "fuzzy"},
		{"shape without resource", func(m map[string]any) { delete(shape(m), "resource") },
			"SubscriptionTopic.notificationShape[0].resource", "missing"},
		{"include of another type", func(m map[string]any) { shape(m)["include"] = []any{"Observation:patient"} },
			"SubscriptionTopic.notificationShape[0].include[0]", "must start with"},
		{"include of a non-reference", func(m map[string]any) { shape(m)["include"] = []any{"Encounter:status"} },
			"SubscriptionTopic.notificationShape[0].include[0]", "not a reference search parameter"},
		{"malformed revInclude", func(m map[string]any) { shape(m)["revInclude"] = []any{"subject"} },
			"SubscriptionTopic.notificationShape[0].revInclude[0]", "Type:parameter"},
		{"triggers not an array", func(m map[string]any) { m["resourceTrigger"] = map[string]any{} },
			"SubscriptionTopic.resourceTrigger", "array"},
		{"not a topic", func(m map[string]any) { m["resourceType"] = "Subscription" }, "resourceType", "Subscription"},
		{"event type not a code", func(m map[string]any) {
			m["extension"] = []any{map[string]any{"url": topics.EventTypeExtension, "valueCode": "a b"}}
		}, "SubscriptionTopic.extension[0]", "valueCode"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := deepCopy(valid).(map[string]any)
			tc.edit(m)
			_, err := topics.Parse(m)
			var ve *topics.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Parse error = %v, want a *ValidationError", err)
			}
			if ve.Element != tc.element || !strings.Contains(ve.Message, tc.msg) {
				t.Errorf("got %q, want element %q with message containing %q", err, tc.element, tc.msg)
			}
		})
	}
}

func TestParseInvalidSearchErrorUnwraps(t *testing.T) {
	m := mustJSON(t, encounterComplete)
	criteria(m)["current"] = "colour=red"
	_, err := topics.Parse(m)
	var se *search.Error
	if !errors.As(err, &se) || se.Param != "colour" {
		t.Errorf("error %v does not unwrap to the search error", err)
	}
	want := `SubscriptionTopic.resourceTrigger[0].queryCriteria.current: search parameter "colour"`
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q, want prefix %q", err, want)
	}
}

func TestParseBasicInvalid(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(m map[string]any)
		element string
	}{
		{"no code", func(m map[string]any) { delete(m, "code") }, "Basic.code"},
		{"other code", func(m map[string]any) {
			m["code"] = map[string]any{"coding": []any{map[string]any{"system": "http://example.org", "code": "SubscriptionTopic"}}}
		}, "Basic.code"},
		{"unknown modifier extension", func(m map[string]any) {
			m["modifierExtension"] = append(m["modifierExtension"].([]any), map[string]any{"url": "http://example.org/must-understand", "valueBoolean": true})
		}, "Basic.modifierExtension[1]"},
		{"no status", func(m map[string]any) { delete(m, "modifierExtension") }, "SubscriptionTopic.status"},
		{"extension with two values", func(m map[string]any) {
			ext := m["extension"].([]any)[1].(map[string]any)
			ext["valueCode"] = "x"
		}, "Basic.extension[1]"},
		{"title twice", func(m map[string]any) {
			m["extension"] = append(m["extension"].([]any), map[string]any{
				"url": "http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.title", "valueString": "again"})
		}, "Basic.extension[8]"},
		{"unknown query parameter", func(m map[string]any) {
			trig := m["extension"].([]any)[4].(map[string]any)
			qc := trig["extension"].([]any)[4].(map[string]any)
			qc["extension"].([]any)[2].(map[string]any)["valueString"] = "colour=red"
		}, "SubscriptionTopic.resourceTrigger[0].queryCriteria.current"},
		{"sub-extension without url", func(m map[string]any) {
			trig := m["extension"].([]any)[4].(map[string]any)
			delete(trig["extension"].([]any)[0].(map[string]any), "url")
		}, "Basic.extension[4].extension[0].url"},
	}
	valid := mustJSON(t, basicTopic)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := deepCopy(valid).(map[string]any)
			tc.edit(m)
			_, err := topics.Parse(m)
			var ve *topics.ValidationError
			if !errors.As(err, &ve) || ve.Element != tc.element {
				t.Errorf("Parse error = %v, want a *ValidationError on %s", err, tc.element)
			}
		})
	}
}

func trigger(m map[string]any) map[string]any {
	return m["resourceTrigger"].([]any)[0].(map[string]any)
}

func criteria(m map[string]any) map[string]any {
	return trigger(m)["queryCriteria"].(map[string]any)
}

func filter(m map[string]any, i int) map[string]any {
	return m["canFilterBy"].([]any)[i].(map[string]any)
}

func shape(m map[string]any) map[string]any {
	return m["notificationShape"].([]any)[0].(map[string]any)
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}
