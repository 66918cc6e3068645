package main

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestHandshakeRetried is Inferno's timing model: the receiver refuses
// every request (500) until 50 ms after the client has read the 201 of its
// POST /Subscription, so the handshake sent at once is refused. The
// handshake must be retried and kept within 2 s, the subscription must
// become active, the events recorded meanwhile must wait for the handshake,
// every handshake must say requested and every event notification active.
func TestHandshakeRetried(t *testing.T) {
	if testing.Short() {
		t.Skip("handshake test skipped in -short mode (starts the binary)")
	}
	const keptWithin = 2 * time.Second
	rcv := newHookReceiver(t)
	rcv.answer(http.StatusInternalServerError)
	srv := startServerProc(t, "--log-level", "error") // default --retry-base 1s, --max-failures 5

	patient := mustFHIR(t, http.StatusCreated, "POST", srv.base+"/Patient",
		map[string]any{"resourceType": "Patient", "name": []any{map[string]any{"family": "Handshake"}}})["id"].(string)
	id := mustFHIR(t, http.StatusCreated, "POST", srv.base+"/Subscription",
		topicSubscription(rcv.URL(), criticalTopic, "id-only", "Observation?patient=Patient/"+patient))["id"].(string)
	read201 := time.Now()
	open := time.AfterFunc(50*time.Millisecond, func() { rcv.answer(http.StatusOK) })
	defer open.Stop()

	// Events recorded while the handshake is pending wait for it.
	const early, late = 2, 2
	for i := range early {
		mustFHIR(t, http.StatusCreated, "POST", srv.base+"/Observation", criticalObservation(patient, loincPotassium, fmt.Sprintf("h%d", i)))
	}
	kept := rcv.waitUntil(keptWithin+10*time.Second, func() bool { return rcv.snapshot(id).handshakes > 0 })
	var keptAfter time.Duration
	if kept {
		for _, n := range rcv.snapshot(id).notes {
			if n.Type == "handshake" && n.OK {
				keptAfter = n.At.Sub(read201)
				break
			}
		}
	}
	status := ""
	if kept {
		status = waitStatus(t, srv.base, id, "active", 10*time.Second)["status"].(string)
	}
	for i := range late {
		mustFHIR(t, http.StatusCreated, "POST", srv.base+"/Observation", criticalObservation(patient, loincPotassium, fmt.Sprintf("h%d", early+i)))
	}
	delivered := rcv.waitUntil(15*time.Second, func() bool { return contiguous(rcv.snapshot(id).deliveries, early+late) })

	// A client that PUTs the subscription back to requested gets a new
	// handshake.
	cur := mustFHIR(t, http.StatusOK, "GET", srv.base+"/Subscription/"+id, nil)
	cur["status"] = "requested"
	mustFHIR(t, http.StatusOK, "PUT", srv.base+"/Subscription/"+id, cur)
	rehandshake := rcv.waitUntil(15*time.Second, func() bool { return rcv.snapshot(id).handshakes >= 2 })
	waitStatus(t, srv.base, id, "active", 10*time.Second)

	got := rcv.snapshot(id)
	refused, handshakes, handshakesRequested, events, eventsActive, eventsBeforeHandshake := 0, 0, 0, 0, 0, 0
	accepted := false
	for _, n := range got.notes {
		switch n.Type {
		case "handshake":
			handshakes++
			if n.Status == "requested" {
				handshakesRequested++
			}
			if !n.OK {
				refused++
			}
			accepted = accepted || n.OK
		case "event-notification":
			events++
			if n.Status == "active" {
				eventsActive++
			}
			if !accepted {
				eventsBeforeHandshake++
			}
		}
	}
	line := fmt.Sprintf("handshake retried: refused attempts=%d, kept %v after the client read its 201 (limit %v), status %s,"+
		" handshakes saying requested=%d/%d, event notifications=%d saying active=%d, sent before the handshake=%d, events delivered=%d/%d",
		refused, keptAfter.Round(time.Millisecond), keptWithin, status, handshakesRequested, handshakes,
		events, eventsActive, eventsBeforeHandshake, len(got.deliveries), early+late)
	t.Log(line)
	reportFigure(line)

	if !kept || keptAfter > keptWithin {
		t.Errorf("handshake kept after %v (kept=%v), want within %v", keptAfter, kept, keptWithin)
	}
	if handshakesRequested != handshakes {
		t.Errorf("%d of %d handshakes say status requested, want all", handshakesRequested, handshakes)
	}
	if eventsActive != events || eventsBeforeHandshake != 0 {
		t.Errorf("%d of %d event notifications say active, %d sent before the handshake was kept; want all active, none before",
			eventsActive, events, eventsBeforeHandshake)
	}
	if !delivered {
		t.Errorf("events delivered %v, want 1..%d", sortedKeys(got.deliveries), early+late)
	}
	if !rehandshake {
		t.Error("no new handshake after the client PUT the subscription back to requested")
	}
	if bad := rcv.malformed(); len(bad) > 0 {
		t.Errorf("%d malformed notifications, first: %s", len(bad), bad[0])
	}
}
