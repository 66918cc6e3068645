package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Settings of TestReceiverOutage, passed to the server as flags.
const (
	outageMaxFailures = 3
	outageRetryBase   = 50 * time.Millisecond
	outageRetryMax    = time.Second
)

// TestReceiverOutage takes a rest-hook receiver down twice — first it
// answers 500, then it refuses connections — while matching writes go on.
// Each time the subscription must back off (capped exponential delays),
// go to error with Subscription.error after --max-failures consecutive
// failures, and once the receiver is back return to active and deliver
// every event recorded meanwhile, numbered without gaps.
func TestReceiverOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("outage test skipped in -short mode")
	}
	began := time.Now()
	rcv := newHookReceiver(t)
	srv := startServerProc(t, "--max-failures", fmt.Sprint(outageMaxFailures),
		"--retry-base", outageRetryBase.String(), "--retry-max", outageRetryMax.String(), "--log-level", "error")

	patient := mustFHIR(t, http.StatusCreated, "POST", srv.base+"/Patient",
		map[string]any{"resourceType": "Patient", "name": []any{map[string]any{"family": "Outage"}}})["id"].(string)
	id := mustFHIR(t, http.StatusCreated, "POST", srv.base+"/Subscription",
		topicSubscription(rcv.URL(), criticalTopic, "id-only", "Observation?patient=Patient/"+patient))["id"].(string)
	waitStatus(t, srv.base, id, "active", 10*time.Second)

	// Problems are collected and reported after the figure line is
	// printed, so that a failing run still shows its figures.
	var problems []string
	problem := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	var written []string // Observation ids in write order
	write := func(n int) {
		t.Helper()
		for range n {
			obs := mustFHIR(t, http.StatusCreated, "POST", srv.base+"/Observation",
				criticalObservation(patient, loincPotassium, fmt.Sprintf("o%03d", len(written)+1)))
			written = append(written, obs["id"].(string))
		}
	}
	delivered := func(n int) bool {
		return rcv.waitUntil(15*time.Second, func() bool { return contiguous(rcv.snapshot(id).deliveries, n) })
	}

	write(3)
	if !delivered(3) {
		problem("before the outage: events %v, want 1..3", sortedKeys(rcv.snapshot(id).deliveries))
	}

	// Outage 1: the receiver answers 500.
	rcv.answer(http.StatusInternalServerError)
	outage1 := time.Now()
	write(4)
	errVersion, ok := statusWithin(t, srv.base, id, "error", 15*time.Second)
	if msg, _ := errVersion["error"].(string); !ok || !strings.Contains(msg, "500") {
		problem("outage 1: status %v, Subscription.error %q; want error naming the HTTP 500", errVersion["status"], msg)
	}
	write(3) // recorded while the subscription is in error
	time.Sleep(2500 * time.Millisecond)
	fails := rcv.snapshot(id).failures
	failuresBeforeError(t, fails, errVersion)
	checkBackoff(t, fails)
	checkStatusOperation(t, srv.base, id, "error", len(written))
	rcv.answer(http.StatusOK)
	recovery1 := time.Now()
	back, ok := statusWithin(t, srv.base, id, "active", 10*time.Second)
	if !ok || back["error"] != nil {
		problem("outage 1: status %v, Subscription.error %v after recovery; want active without error", back["status"], back["error"])
	}
	if !delivered(len(written)) {
		problem("after outage 1: events %v, want 1..%d", sortedKeys(rcv.snapshot(id).deliveries), len(written))
	}
	recovered1 := time.Since(recovery1)
	failed1 := len(fails)
	down1 := recovery1.Sub(outage1)

	// Outage 2: the receiver is gone (connection refused).
	rcv.down()
	outage2 := time.Now()
	write(4)
	errVersion, ok = statusWithin(t, srv.base, id, "error", 15*time.Second)
	if msg, _ := errVersion["error"].(string); !ok || msg == "" {
		problem("outage 2: status %v, Subscription.error %q; want error with a message", errVersion["status"], msg)
	}
	write(3)
	time.Sleep(1500 * time.Millisecond)
	checkStatusOperation(t, srv.base, id, "error", len(written))
	rcv.up()
	recovery2 := time.Now()
	back, ok = statusWithin(t, srv.base, id, "active", 10*time.Second)
	if !ok || back["error"] != nil {
		problem("outage 2: status %v, Subscription.error %v after recovery; want active without error", back["status"], back["error"])
	}
	if !delivered(len(written)) {
		problem("after outage 2: events %v, want 1..%d", sortedKeys(rcv.snapshot(id).deliveries), len(written))
	}
	recovered2 := time.Since(recovery2)
	down2 := recovery2.Sub(outage2)

	// Everything arrived once per number, pointing at the right writes, and
	// $events still serves all of it.
	time.Sleep(200 * time.Millisecond)
	got := rcv.snapshot(id)
	if !contiguous(got.deliveries, len(written)) {
		t.Errorf("events %v, want 1..%d", sortedKeys(got.deliveries), len(written))
	}
	duplicates, lost := 0, 0
	for i, obsID := range written {
		times := got.deliveries[i+1]
		if times == 0 {
			lost++
		}
		duplicates += max(times-1, 0)
		if !strings.HasSuffix(got.focus[i+1], "/Observation/"+obsID) {
			t.Errorf("event %d: focus %q, want Observation/%s", i+1, got.focus[i+1], obsID)
		}
	}
	checkEventsOperation(t, srv.base, crashSub{id: id, patient: patient, content: "id-only"}, written)
	if bad := rcv.malformed(); len(bad) > 0 {
		t.Errorf("%d malformed notifications, first: %s", len(bad), bad[0])
	}
	line := fmt.Sprintf("outage: events=%d, delivered=%d, duplicates=%d, lost=%d, failed attempts during 500s=%d"+
		" (error after %d, down %v, recovered in %v), refused outage down %v recovered in %v, total=%v",
		len(written), len(got.deliveries), duplicates, lost, failed1, outageMaxFailures,
		down1.Round(time.Millisecond), recovered1.Round(time.Millisecond),
		down2.Round(time.Millisecond), recovered2.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
	t.Log(line)
	reportFigure(line)
	for _, p := range problems {
		t.Error(p)
	}
}

// statusWithin polls Subscription/{id} until its status is want and
// returns that version and true, or the last version read and false after
// timeout.
func statusWithin(t *testing.T, base, id, want string, timeout time.Duration) (map[string]any, bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := mustFHIR(t, http.StatusOK, "GET", base+"/Subscription/"+id, nil)
		if s["status"] == want {
			return s, true
		}
		if time.Now().After(deadline) {
			return s, false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitStatus polls Subscription/{id} until its status is want and returns
// that version.
func waitStatus(t *testing.T, base, id, want string, timeout time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := mustFHIR(t, http.StatusOK, "GET", base+"/Subscription/"+id, nil)
		if s["status"] == want {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("Subscription/%s still %v after %v, want %s (error %v)", id, s["status"], timeout, want, s["error"])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// failuresBeforeError checks that the version with status error was
// written after exactly --max-failures failed attempts.
func failuresBeforeError(t *testing.T, fails []time.Time, errVersion map[string]any) {
	t.Helper()
	meta, _ := errVersion["meta"].(map[string]any)
	s, _ := meta["lastUpdated"].(string)
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Errorf("error version: meta.lastUpdated %q: %v", s, err)
		return
	}
	// lastUpdated is kept to the millisecond; the receiver's clock is the
	// same machine's.
	before := 0
	for _, f := range fails {
		if !f.Truncate(time.Millisecond).After(at) {
			before++
		}
	}
	if before != outageMaxFailures {
		t.Errorf("status error written after %d failed attempts, want %d (--max-failures)", before, outageMaxFailures)
	}
}

// checkBackoff checks the delays between failed attempts: after the k-th
// consecutive failure the next attempt waits at least half of
// min(base·2^(k-1), max) (the jitter's lower bound), and never much more
// than max.
func checkBackoff(t *testing.T, fails []time.Time) {
	t.Helper()
	if len(fails) < outageMaxFailures+2 {
		t.Errorf("only %d failed attempts during the outage, want at least %d", len(fails), outageMaxFailures+2)
		return
	}
	var gaps []string
	for k := 1; k < len(fails); k++ {
		gap := fails[k].Sub(fails[k-1])
		gaps = append(gaps, gap.Round(time.Millisecond).String())
		d := min(outageRetryBase<<(k-1), outageRetryMax)
		if k > 20 {
			d = outageRetryMax
		}
		if gap < d/2-5*time.Millisecond {
			t.Errorf("attempt %d came %v after attempt %d; the backoff allows no less than %v", k+1, gap, k, d/2)
		}
		if gap > outageRetryMax+time.Second {
			t.Errorf("attempt %d came %v after attempt %d; --retry-max is %v", k+1, gap, k, outageRetryMax)
		}
	}
	t.Logf("gaps between failed attempts: %s", strings.Join(gaps, " "))
}

// checkStatusOperation checks $status: the status and the event count.
func checkStatusOperation(t *testing.T, base, id, status string, events int) {
	t.Helper()
	b := mustFHIR(t, http.StatusOK, "GET", base+"/Subscription/"+id+"/$status", nil)
	var gotStatus, gotCount any
	for _, e := range asSlice(b["entry"]) {
		em, _ := e.(map[string]any)
		p, _ := em["resource"].(map[string]any)
		for _, pp := range asSlice(p["parameter"]) {
			pm, _ := pp.(map[string]any)
			switch pm["name"] {
			case "status":
				gotStatus = pm["valueCode"]
			case "events-since-subscription-start":
				gotCount = pm["valueString"]
			}
		}
	}
	if gotStatus != status || gotCount != fmt.Sprint(events) {
		t.Errorf("$status: status %v, events-since-subscription-start %v; want %s, %d", gotStatus, gotCount, status, events)
	}
}
