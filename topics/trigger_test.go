package topics_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/fhirsub/fhirsub/topics"
)

// queryTopic builds an Encounter topic whose only trigger has the given
// queryCriteria (a JSON object body) and supported interactions.
func queryTopic(tb testing.TB, criteria string, interactions ...string) *topics.Topic {
	tb.Helper()
	inter, _ := json.Marshal(interactions)
	return mustParse(tb, `{"resourceType":"SubscriptionTopic","url":"http://example.org/t","status":"active",
		"resourceTrigger":[{"resource":"Encounter","supportedInteraction":`+string(inter)+`,
		"queryCriteria":{`+criteria+`}}]}`)
}

func encounter(tb testing.TB, status string) map[string]any {
	tb.Helper()
	return mustJSON(tb, `{"resourceType":"Encounter","id":"e1","status":"`+status+`","class":{"code":"IMP"},
		"subject":{"reference":"Patient/p1"}}`)
}

// step is one change in a truth table: "create F", "update IP F", "delete IP"
// with IP = in-progress, F = finished, P = planned.
type step struct {
	change string
	want   bool
}

func changeOf(tb testing.TB, s string) topics.Change {
	tb.Helper()
	status := map[string]string{"IP": "in-progress", "F": "finished", "P": "planned"}
	f := strings.Fields(s)
	c := topics.Change{Interaction: f[0], ResourceType: "Encounter"}
	switch f[0] {
	case "create":
		c.Current = encounter(tb, status[f[1]])
	case "update":
		c.Previous, c.Current = encounter(tb, status[f[1]]), encounter(tb, status[f[2]])
	case "delete":
		c.Previous = encounter(tb, status[f[1]])
	}
	return c
}

func TestTriggeredQueryCriteria(t *testing.T) {
	const both = `"previous":"status=in-progress","current":"status=finished"`
	tests := []struct {
		name     string
		criteria string
		steps    []step
	}{
		{"requireBoth, create passes, delete fails", both + `,"requireBoth":true,"resultForCreate":"test-passes","resultForDelete":"test-fails"`, []step{
			{"create F", true}, {"create P", false},
			{"update IP F", true}, {"update P F", false}, {"update IP IP", false}, {"update F F", false},
			{"delete IP", false}, {"delete F", false},
		}},
		{"requireBoth, create fails, delete passes", both + `,"requireBoth":true,"resultForCreate":"test-fails","resultForDelete":"test-passes"`, []step{
			{"create F", false}, {"create P", false},
			{"update IP F", true}, {"update P F", false},
			{"delete IP", true}, {"delete F", false},
		}},
		{"either, create fails, delete passes", both + `,"requireBoth":false,"resultForCreate":"test-fails","resultForDelete":"test-passes"`, []step{
			{"create F", true}, {"create P", false},
			{"update P F", true}, {"update IP P", true}, {"update P P", false}, {"update IP F", true},
			{"delete IP", true}, {"delete P", true},
		}},
		{"either, create passes, delete fails", both + `,"requireBoth":false,"resultForCreate":"test-passes","resultForDelete":"test-fails"`, []step{
			{"create F", true}, {"create P", true},
			{"update P P", false},
			{"delete IP", true}, {"delete P", false},
		}},
		{"either, no result codes", both, []step{
			{"create F", true}, {"create P", false},
			{"delete IP", true}, {"delete F", false},
		}},
		{"requireBoth, no result codes", both + `,"requireBoth":true`, []step{
			{"create F", false}, {"update IP F", true}, {"delete IP", false},
		}},
		{"current only, either", `"current":"status=finished"`, []step{
			{"create F", true}, {"create P", false}, {"update F F", true}, {"update F P", false}, {"delete F", false},
		}},
		{"current only, requireBoth", `"current":"status=finished","requireBoth":true`, []step{
			{"create F", true}, {"update P F", true}, {"update F P", false}, {"delete F", false},
		}},
		{"current only, delete passes", `"current":"status=finished","resultForDelete":"test-passes"`, []step{
			{"delete P", true},
		}},
		{"previous only, requireBoth", `"previous":"status=in-progress","requireBoth":true,"resultForCreate":"test-fails"`, []step{
			{"create F", false}, {"update IP F", true}, {"update P F", false}, {"delete IP", true}, {"delete P", false},
		}},
		{"encounter complete (IG)", `"previous":"status:not=finished","resultForCreate":"test-passes","current":"status=finished","resultForDelete":"test-fails","requireBoth":true`, []step{
			{"create F", true}, {"create IP", false}, {"update IP F", true}, {"update P F", true},
			{"update F F", false}, {"update F IP", false}, {"delete F", false}, {"delete IP", false},
		}},
	}
	for _, tc := range tests {
		tp := queryTopic(t, tc.criteria)
		for _, s := range tc.steps {
			t.Run(tc.name+"/"+s.change, func(t *testing.T) {
				got, err := tp.Triggered(changeOf(t, s.change))
				if err != nil {
					t.Fatalf("Triggered: %v", err)
				}
				if got != s.want {
					t.Errorf("Triggered = %v, want %v", got, s.want)
				}
			})
		}
	}
}

func TestTriggeredInteractions(t *testing.T) {
	tests := []struct {
		interactions []string
		create       bool
		update       bool
		delete       bool
	}{
		{nil, true, true, true},
		{[]string{"create"}, true, false, false},
		{[]string{"update", "delete"}, false, true, true},
	}
	for _, tc := range tests {
		inter, _ := json.Marshal(tc.interactions)
		if tc.interactions == nil {
			inter = []byte("[]")
		}
		tp := mustParse(t, `{"resourceType":"SubscriptionTopic","url":"http://example.org/t","status":"active",
			"resourceTrigger":[{"resource":"Encounter","supportedInteraction":`+string(inter)+`}]}`)
		for _, c := range []struct {
			change string
			want   bool
		}{{"create P", tc.create}, {"update P F", tc.update}, {"delete F", tc.delete}} {
			got, err := tp.Triggered(changeOf(t, c.change))
			if err != nil || got != c.want {
				t.Errorf("%v %s: Triggered = %v, %v; want %v", tc.interactions, c.change, got, err, c.want)
			}
		}
		// Another resource type never fires it.
		other := topics.Change{Interaction: "create", Current: mustJSON(t, `{"resourceType":"Observation","status":"final"}`)}
		if got, err := tp.Triggered(other); got || err != nil {
			t.Errorf("Observation change: %v, %v", got, err)
		}
	}
}

func TestTriggeredFHIRPath(t *testing.T) {
	fp := func(expr string, interactions string) *topics.Topic {
		return mustParse(t, fmt.Sprintf(`{"resourceType":"SubscriptionTopic","url":"http://example.org/t","status":"active",
			"resourceTrigger":[{"resource":"Encounter","supportedInteraction":%s,"fhirPathCriteria":%q}]}`, interactions, expr))
	}
	tests := []struct {
		name  string
		topic *topics.Topic
		steps []step
	}{
		{"IG encounter complete", fp("(%previous.id.empty() or (%previous.status != 'finished')) and (%current.status = 'finished')", `["create","update"]`), []step{
			{"create F", true}, {"create IP", false}, {"update IP F", true}, {"update F F", false}, {"update F P", false},
		}},
		{"status changed", fp("%previous.status != %current.status", `["update"]`), []step{
			{"update IP F", true}, {"update F F", false}, {"create F", false},
		}},
		{"evaluated on the previous version on delete", fp("status = 'in-progress' and %current.empty() and %previous.exists()", `["delete"]`), []step{
			{"delete IP", true}, {"delete F", false},
		}},
		{"evaluated on the current version", fp("status = 'finished' and %current.status = 'finished'", `[]`), []step{
			{"create F", true}, {"update F P", false}, {"update P F", true},
		}},
	}
	for _, tc := range tests {
		for _, s := range tc.steps {
			t.Run(tc.name+"/"+s.change, func(t *testing.T) {
				got, err := tc.topic.Triggered(changeOf(t, s.change))
				if err != nil {
					t.Fatalf("Triggered: %v", err)
				}
				if got != s.want {
					t.Errorf("Triggered = %v, want %v", got, s.want)
				}
			})
		}
	}
}

func TestTriggeredFHIRPathAndQuery(t *testing.T) {
	// Both criteria given: both must pass.
	tp := mustParse(t, `{"resourceType":"SubscriptionTopic","url":"http://example.org/t","status":"active",
		"resourceTrigger":[{"resource":"Encounter","queryCriteria":{"current":"status=finished"},
		"fhirPathCriteria":"%current.subject.reference = 'Patient/p1'"}]}`)
	other := encounter(t, "finished")
	other["subject"] = map[string]any{"reference": "Patient/p2"}
	for _, tc := range []struct {
		c    topics.Change
		want bool
	}{
		{topics.Change{Interaction: "create", Current: encounter(t, "finished")}, true},
		{topics.Change{Interaction: "create", Current: encounter(t, "planned")}, false},
		{topics.Change{Interaction: "create", Current: other}, false},
	} {
		if got, err := tp.Triggered(tc.c); err != nil || got != tc.want {
			t.Errorf("%v: Triggered = %v, %v; want %v", tc.c.Current, got, err, tc.want)
		}
	}
}

func TestTriggeredAnyTrigger(t *testing.T) {
	tp := mustParse(t, `{"resourceType":"SubscriptionTopic","url":"http://example.org/t","status":"active",
		"resourceTrigger":[
			{"resource":"Encounter","supportedInteraction":["create"],"queryCriteria":{"current":"status=finished"}},
			{"resource":"Encounter","supportedInteraction":["update"],"fhirPathCriteria":"%current.status = 'cancelled'"},
			{"resource":"Observation","supportedInteraction":["delete"]}]}`)
	for _, tc := range []struct {
		change string
		want   bool
	}{
		{"create F", true}, {"create P", false}, {"update F F", false}, {"delete F", false},
	} {
		if got, err := tp.Triggered(changeOf(t, tc.change)); err != nil || got != tc.want {
			t.Errorf("%s: Triggered = %v, %v; want %v", tc.change, got, err, tc.want)
		}
	}
	cancelled := topics.Change{Interaction: "update", Previous: encounter(t, "planned"), Current: encounter(t, "cancelled")}
	if got, _ := tp.Triggered(cancelled); !got {
		t.Error("the FHIRPath trigger did not fire")
	}
	obsDelete := topics.Change{Interaction: "delete", Previous: mustJSON(t, `{"resourceType":"Observation","id":"o"}`)}
	if got, _ := tp.Triggered(obsDelete); !got {
		t.Error("the Observation delete trigger did not fire (type read from Previous)")
	}
	if got := tp.ResourceTypes(); strings.Join(got, ",") != "Encounter,Observation" {
		t.Errorf("ResourceTypes() = %v", got)
	}
}

func TestTriggeredErrors(t *testing.T) {
	multi := mustParse(t, `{"resourceType":"SubscriptionTopic","url":"http://example.org/t","status":"active",
		"resourceTrigger":[{"resource":"Encounter","fhirPathCriteria":"%current.status | 'x'"}]}`)
	if _, err := multi.Triggered(changeOf(t, "create F")); err == nil {
		t.Error("a criterion giving two items should be an evaluation error")
	}
	if _, err := multi.Triggered(topics.Change{Interaction: "read", Current: encounter(t, "finished")}); err == nil {
		t.Error("unknown interaction should be an error")
	}
}

func TestTriggeredUnknownPrevious(t *testing.T) {
	// An update whose previous version is unknown is tested like a create.
	tp := queryTopic(t, `"previous":"status=in-progress","current":"status=finished","requireBoth":true,"resultForCreate":"test-passes"`)
	c := topics.Change{Interaction: "update", Current: encounter(t, "finished")}
	if got, err := tp.Triggered(c); !got || err != nil {
		t.Errorf("resultForCreate test-passes: Triggered = %v, %v", got, err)
	}
	tp = queryTopic(t, `"previous":"status=in-progress","current":"status=finished","requireBoth":true,"resultForCreate":"test-fails"`)
	if got, err := tp.Triggered(c); got || err != nil {
		t.Errorf("resultForCreate test-fails: Triggered = %v, %v", got, err)
	}
}
