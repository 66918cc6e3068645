package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// TestHungEndpoints is the noisy-neighbour case: 20 subscriptions
// (backport-timeout 120 s) to a receiver that accepts requests and never
// answers, then one subscription to a healthy receiver. The healthy one's
// handshake and events must arrive while the hung requests are still
// held, and the hung receiver must never hold more requests at once than
// half the delivery workers (16): the share one destination may take
// before it is found slow. The delivery latency with and without hung
// receivers is measured by BenchmarkHungEndpoints (subscriptions).
func TestHungEndpoints(t *testing.T) {
	if testing.Short() {
		t.Skip("hung endpoints test skipped in -short mode (starts the binary)")
	}
	const hungSubs, workers, events = 20, 16, 3
	var mu sync.Mutex
	open, peak, total := 0, 0, 0
	stop := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		open++
		total++
		peak = max(peak, open)
		mu.Unlock()
		select {
		case <-stop:
		case <-r.Context().Done():
		}
		mu.Lock()
		open--
		mu.Unlock()
	}))
	defer hung.Close()
	defer close(stop)
	counts := func() (int, int, int) {
		mu.Lock()
		defer mu.Unlock()
		return open, peak, total
	}

	rcv := newHookReceiver(t)
	srv := startServerProc(t, "--log-level", "error", "--delivery-workers", fmt.Sprint(workers))
	patient := mustFHIR(t, http.StatusCreated, "POST", srv.base+"/Patient",
		map[string]any{"resourceType": "Patient", "name": []any{map[string]any{"family": "Hung"}}})["id"].(string)
	for range hungSubs {
		sub := topicSubscription(hung.URL+"/hook", criticalTopic, "id-only", "Observation?patient=Patient/"+patient)
		sub["channel"].(map[string]any)["extension"] = []any{map[string]any{
			"url":              "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-timeout",
			"valueUnsignedInt": 120,
		}}
		mustFHIR(t, http.StatusCreated, "POST", srv.base+"/Subscription", sub)
	}
	began := time.Now()
	id := mustFHIR(t, http.StatusCreated, "POST", srv.base+"/Subscription",
		topicSubscription(rcv.URL(), criticalTopic, "id-only", "Observation?patient=Patient/"+patient))["id"].(string)
	kept := rcv.waitUntil(20*time.Second, func() bool { return rcv.snapshot(id).handshakes > 0 })
	handshakeAfter := time.Since(began)
	for i := range events {
		mustFHIR(t, http.StatusCreated, "POST", srv.base+"/Observation", criticalObservation(patient, loincPotassium, fmt.Sprintf("hung%d", i)))
	}
	delivered := rcv.waitUntil(20*time.Second, func() bool { return contiguous(rcv.snapshot(id).deliveries, events) })
	heldNow, heldPeak, reached := counts()

	line := fmt.Sprintf("hung endpoints: %d subscriptions to a receiver that never answers (backport-timeout 120s, server cap 30s),"+
		" requests held there now=%d peak=%d (workers %d, %d requests in all); healthy subscriber: handshake kept=%v after %v, events delivered=%d/%d",
		hungSubs, heldNow, heldPeak, workers, reached, kept, handshakeAfter.Round(time.Millisecond), len(rcv.snapshot(id).deliveries), events)
	t.Log(line)
	reportFigure(line)

	if !kept || !delivered {
		t.Errorf("healthy subscriber beside hung receivers: handshake kept=%v, events %v (want 1..%d)",
			kept, sortedKeys(rcv.snapshot(id).deliveries), events)
	}
	if heldPeak > workers/2 {
		t.Errorf("the hung receiver held %d requests at once, more than half the %d workers", heldPeak, workers)
	}
	if heldNow == 0 {
		t.Error("no request is held at the hung receiver: the test did not test hung requests")
	}
}
