package subscriptions_test

import (
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/subscriptions"
)

// TestStats runs a rest-hook and a websocket subscription on one topic
// through a real store and receiver, and checks what Stats reports: the
// changes processed, one event per matching subscription, the websocket
// event handed to its listener, the subscriptions by status and an
// empty queue once everything is delivered.
func TestStats(t *testing.T) {
	rcv := newReceiver(t)
	e := newEnv(t)
	e.mustDo(201, "PUT", "/SubscriptionTopic/encounter-start", encounterTopic())
	e.mustDo(201, "PUT", "/Patient/p1", map[string]any{"resourceType": "Patient", "id": "p1", "active": true})

	rest := e.mustDo(201, "POST", "/Subscription",
		topicSub(rcv.srv.URL+"/hook", encTopic, "id-only", "Encounter?patient=Patient/p1"))["id"].(string)
	ws := topicSub("", encTopic, "id-only", "Encounter?patient=Patient/p1")
	ws["channel"] = map[string]any{"type": "websocket", "payload": "application/fhir+json",
		"_payload": map[string]any{"extension": []any{map[string]any{
			"url": subscriptions.ExtPayloadContent, "valueCode": "id-only"}}}}
	wsID := e.mustDo(201, "POST", "/Subscription", ws)["id"].(string)
	e.waitStatus(rest, "active")
	e.waitStatus(wsID, "active")

	heard := make(chan subscriptions.Recorded, 8)
	cancel := e.m.Listen(wsID, func(r subscriptions.Recorded) { heard <- r })
	defer cancel()
	before := waitStats(t, e.m, "the activations to settle", func(s subscriptions.Stats) bool {
		return s.QueuePending == 0 && s.QueueBusy == 0
	})

	e.mustDo(201, "POST", "/Encounter", encounter("p2")) // no subscription matches
	e.mustDo(201, "POST", "/Encounter", encounter("p1")) // both match
	rcv.waitFor("the rest-hook event", forSub(t, rest, "event-notification"))
	select {
	case r := <-heard:
		if len(r.Events) != 1 || r.Subscription.ID != wsID {
			t.Fatalf("listener got %d events of %s, want 1 of %s", len(r.Events), r.Subscription.ID, wsID)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the websocket subscription's listener heard nothing")
	}

	after := waitStats(t, e.m, "the delivery to finish", func(s subscriptions.Stats) bool {
		return s.ChangesProcessed >= before.ChangesProcessed+2 && s.QueuePending == 0 && s.QueueBusy == 0
	})
	if d := after.EventsRecorded - before.EventsRecorded; d != 2 {
		t.Errorf("%d events recorded for the two encounters, want 2 (one per matching subscription)", d)
	}
	if d := after.EventsToListeners - before.EventsToListeners; d != 1 {
		t.Errorf("%d events handed to listeners, want 1", d)
	}
	if after.ChangesProcessed < 6 {
		t.Errorf("%d changes processed, want at least 6 (topic, patient, 2 subscriptions, 2 encounters)", after.ChangesProcessed)
	}

	want := map[subscriptions.Status]int{}
	for _, s := range subscriptions.Statuses() {
		want[s] = 0
	}
	for _, id := range []string{rest, wsID} {
		st := e.mustDo(200, "GET", "/Subscription/"+id, nil)["status"].(string)
		want[subscriptions.Status(st)]++
	}
	if len(after.Subscriptions) != 4 {
		t.Errorf("Stats.Subscriptions has %d statuses, want the 4 of R4: %v", len(after.Subscriptions), after.Subscriptions)
	}
	for s, n := range want {
		if after.Subscriptions[s] != n {
			t.Errorf("%d subscriptions %s, want %d (as the resources say)", after.Subscriptions[s], s, n)
		}
	}

	// a deleted subscription is no longer counted
	e.mustDo(200, "DELETE", "/Subscription/"+wsID, nil)
	waitStats(t, e.m, "the deleted subscription to be forgotten", func(s subscriptions.Stats) bool {
		return s.Subscriptions[subscriptions.StatusActive] == want[subscriptions.StatusActive]-1
	})
}

// waitStats polls m.Stats until cond holds and returns that snapshot.
func waitStats(t *testing.T, m *subscriptions.Manager, what string, cond func(subscriptions.Stats) bool) subscriptions.Stats {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := m.Stats()
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: stats %+v", what, s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
