package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// clinicTopic is the SubscriptionTopic TestTopicUpdateKeepsFilters
// creates and then updates.
const clinicTopic = "http://example.org/fhir/SubscriptionTopic/clinic-encounters"

// clinicTopicVersion is that topic with the given Encounter interactions
// and filter parameters.
func clinicTopicVersion(interactions []any, filterBy ...string) map[string]any {
	var can []any
	for _, p := range filterBy {
		can = append(can, map[string]any{"resource": "Encounter", "filterParameter": p})
	}
	return map[string]any{
		"resourceType": "SubscriptionTopic",
		"id":           "clinic-encounters",
		"url":          clinicTopic,
		"status":       "active",
		"resourceTrigger": []any{map[string]any{
			"resource":             "Encounter",
			"supportedInteraction": interactions,
		}},
		"canFilterBy": can,
	}
}

// encounter is an ambulatory Encounter of the patient in the status.
func encounter(patient, status string) map[string]any {
	return map[string]any{
		"resourceType": "Encounter",
		"status":       status,
		"class":        map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
		"subject":      map[string]any{"reference": "Patient/" + patient},
	}
}

// TestTopicUpdateKeepsFilters updates a SubscriptionTopic through the API
// while filtered subscriptions live on it, on the binary as it ships.
// A version that drops a filter parameter a subscription uses is refused
// with 409, and the topic stays as it was. A version that adds the update
// interaction takes over both subscriptions, with their filters parsed
// again for it: they are then notified of updates too, of their patient's
// Encounters or of those in their status only.
//
// Absence is read from the event numbers, not from waiting: each
// subscription numbers its events 1, 2, 3 in the order of the changes, so
// a write that wrongly matched would take the number of a later one, and
// the last write matches both subscriptions.
func TestTopicUpdateKeepsFilters(t *testing.T) {
	if testing.Short() {
		t.Skip("binary test skipped in -short mode")
	}
	rcv := newHookReceiver(t)
	srv := startServerProc(t, "--log-level", "error")
	base := srv.base
	topicURL := base + "/SubscriptionTopic/clinic-encounters"

	mustFHIR(t, http.StatusCreated, "PUT", topicURL, clinicTopicVersion([]any{"create"}, "patient", "status"))
	patient := func(family string) string {
		return mustFHIR(t, http.StatusCreated, "POST", base+"/Patient",
			map[string]any{"resourceType": "Patient", "name": []any{map[string]any{"family": family}}})["id"].(string)
	}
	pa, pb := patient("Alpha"), patient("Beta")
	byPatient := mustFHIR(t, http.StatusCreated, "POST", base+"/Subscription",
		topicSubscription(rcv.URL(), clinicTopic, "id-only", "Encounter?patient=Patient/"+pa))["id"].(string)
	byStatus := mustFHIR(t, http.StatusCreated, "POST", base+"/Subscription",
		topicSubscription(rcv.URL(), clinicTopic, "id-only", "Encounter?status=in-progress"))["id"].(string)
	waitStatus(t, base, byPatient, "active", 10*time.Second)
	waitStatus(t, base, byStatus, "active", 10*time.Second)

	create := func(patient, status string) string {
		return mustFHIR(t, http.StatusCreated, "POST", base+"/Encounter", encounter(patient, status))["id"].(string)
	}
	update := func(id, patient, status string) {
		body := encounter(patient, status)
		body["id"] = id
		mustFHIR(t, http.StatusOK, "PUT", base+"/Encounter/"+id, body)
	}

	// Version 1: creates only, filtered by patient or by status.
	a1 := create(pa, "in-progress") // both: byPatient 1, byStatus 1
	create(pb, "planned")           // neither

	// A version without the status parameter would strand byStatus.
	code, oo, err := fhirDo(context.Background(), "PUT", topicURL, clinicTopicVersion([]any{"create", "update"}, "patient"))
	if err != nil {
		t.Fatal(err)
	}
	if msg := fmt.Sprint(oo); code != http.StatusConflict || oo["resourceType"] != "OperationOutcome" || !strings.Contains(msg, byStatus) {
		t.Errorf("topic version refusing a live filter: status %d, %v; want 409 naming Subscription/%s", code, oo, byStatus)
	}
	update(a1, pa, "in-progress") // neither: version 1 still decides (creates only)

	// Version 2: creates and updates, filtered by patient or by status.
	mustFHIR(t, http.StatusOK, "PUT", topicURL, clinicTopicVersion([]any{"create", "update"}, "patient", "status"))
	b2 := create(pb, "planned")     // neither
	update(a1, pa, "in-progress")   // byPatient 2, byStatus 2: an update, new in version 2
	update(b2, pb, "in-progress")   // byStatus 3
	update(a1, pa, "finished")      // byPatient 3
	b3 := create(pb, "in-progress") // byStatus 4
	a2 := create(pa, "in-progress") // both: byPatient 4, byStatus 5; ends both lists

	e := func(id string) string { return "Encounter/" + id }
	want := map[string][]string{
		byPatient: {e(a1), e(a1), e(a1), e(a2)},
		byStatus:  {e(a1), e(a1), e(b2), e(b3), e(a2)},
	}
	name := map[string]string{byPatient: "filtered by patient", byStatus: "filtered by status"}
	for id, foci := range want {
		ok := rcv.waitUntil(15*time.Second, func() bool { return len(rcv.snapshot(id).deliveries) >= len(foci) })
		got := rcv.snapshot(id)
		var seen []string
		for _, n := range sortedKeys(got.deliveries) {
			f := got.focus[n] // absolute, under the server's base URL
			seen = append(seen, f[strings.LastIndex(f, "/Encounter/")+1:])
		}
		t.Logf("subscription %s: events %v, foci %v", name[id], sortedKeys(got.deliveries), seen)
		if !ok || !contiguous(got.deliveries, len(foci)) || !slices.Equal(seen, foci) {
			t.Errorf("subscription %s: foci %v, want %v", name[id], seen, foci)
		}
	}
	if bad := rcv.malformed(); len(bad) > 0 {
		t.Errorf("malformed notifications: %v", bad)
	}
}

// TestTopicResourcesSharingAURL: several SubscriptionTopic resources may
// say one canonical url (a new version posted as a new resource); deleting
// one of them, or moving it to another url, leaves the url to the others,
// and a url no resource says any more is unknown.
func TestTopicResourcesSharingAURL(t *testing.T) {
	if testing.Short() {
		t.Skip("binary test skipped in -short mode")
	}
	srv := startServerProc(t, "--log-level", "error")
	base := srv.base
	const shared, moved, movedTo = "http://example.org/fhir/SubscriptionTopic/shared", "http://example.org/fhir/SubscriptionTopic/moved", "http://example.org/fhir/SubscriptionTopic/moved-to"
	topic := func(url string, interactions ...any) map[string]any {
		return map[string]any{"resourceType": "SubscriptionTopic", "url": url, "status": "active",
			"resourceTrigger": []any{map[string]any{"resource": "Encounter", "supportedInteraction": interactions}},
			"canFilterBy":     []any{map[string]any{"resource": "Encounter", "filterParameter": "patient"}}}
	}
	older := mustFHIR(t, http.StatusCreated, "POST", base+"/SubscriptionTopic", topic(shared, "create"))["id"].(string)
	mustFHIR(t, http.StatusCreated, "POST", base+"/SubscriptionTopic", topic(shared, "create", "update"))
	mustFHIR(t, http.StatusOK, "DELETE", base+"/SubscriptionTopic/"+older, nil)
	// the url is still the newer resource's
	mustFHIR(t, http.StatusCreated, "POST", base+"/Subscription", wsTopicSubscription(shared, "id-only", "Encounter?patient=Patient/p1"))
	if raw := fmt.Sprint(mustFHIR(t, http.StatusOK, "GET", base+"/metadata", nil)); !strings.Contains(raw, shared) {
		t.Errorf("the CapabilityStatement no longer lists %s", shared)
	}

	// a topic moved to another url leaves its old one unknown
	id := mustFHIR(t, http.StatusCreated, "POST", base+"/SubscriptionTopic", topic(moved, "create"))["id"].(string)
	next := topic(movedTo, "create")
	next["id"] = id
	mustFHIR(t, http.StatusOK, "PUT", base+"/SubscriptionTopic/"+id, next)
	mustFHIR(t, http.StatusUnprocessableEntity, "POST", base+"/Subscription", wsTopicSubscription(moved, "id-only"))
	mustFHIR(t, http.StatusCreated, "POST", base+"/Subscription", wsTopicSubscription(movedTo, "id-only"))
}

// TestOnlyActiveTopicsTakeSubscriptions: the CapabilityStatement lists the
// active topics, and only those take new subscriptions; a subscription on
// a topic retired since it was made can still be switched off.
func TestOnlyActiveTopicsTakeSubscriptions(t *testing.T) {
	if testing.Short() {
		t.Skip("binary test skipped in -short mode")
	}
	srv := startServerProc(t, "--log-level", "error")
	base := srv.base
	topic := func(url, status string) map[string]any {
		return map[string]any{"resourceType": "SubscriptionTopic", "url": url, "status": status,
			"resourceTrigger": []any{map[string]any{"resource": "Encounter", "supportedInteraction": []any{"create"}}}}
	}
	for _, status := range []string{"draft", "retired", "unknown"} {
		url := "http://example.org/fhir/SubscriptionTopic/" + status
		mustFHIR(t, http.StatusCreated, "POST", base+"/SubscriptionTopic", topic(url, status))
		out := mustFHIR(t, http.StatusUnprocessableEntity, "POST", base+"/Subscription", wsTopicSubscription(url, "id-only"))
		if raw := fmt.Sprint(out); !strings.Contains(raw, "is "+status) {
			t.Errorf("a subscription on a %s topic: %s", status, raw)
		}
	}
	const url = "http://example.org/fhir/SubscriptionTopic/retiring"
	id := mustFHIR(t, http.StatusCreated, "POST", base+"/SubscriptionTopic", topic(url, "active"))["id"].(string)
	sub := mustFHIR(t, http.StatusCreated, "POST", base+"/Subscription", wsTopicSubscription(url, "id-only"))
	retired := topic(url, "retired")
	retired["id"] = id
	mustFHIR(t, http.StatusOK, "PUT", base+"/SubscriptionTopic/"+id, retired)
	if raw := fmt.Sprint(mustFHIR(t, http.StatusOK, "GET", base+"/metadata", nil)); strings.Contains(raw, url) {
		t.Errorf("the CapabilityStatement still lists the retired %s", url)
	}
	sub["status"] = "off"
	mustFHIR(t, http.StatusOK, "PUT", base+"/Subscription/"+sub["id"].(string), sub)
}
