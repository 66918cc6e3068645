package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/subscriptions"
)

type fixedLag subscriptions.Lag

func (l fixedLag) Lag() subscriptions.Lag { return subscriptions.Lag(l) }

func TestLagGate(t *testing.T) {
	for _, c := range []struct {
		name  string
		lag   subscriptions.Lag
		bound time.Duration
		over  bool
		after time.Duration
		says  string
	}{
		{"disabled", subscriptions.Lag{RestHook: time.Hour}, 0, false, 0, ""},
		{"under", subscriptions.Lag{Matcher: 9 * time.Second, RestHook: 10 * time.Second}, 10 * time.Second, false, 0, ""},
		{"rest-hook over", subscriptions.Lag{Matcher: time.Second, RestHook: 10200 * time.Millisecond}, 10 * time.Second, true, time.Second, "(rest-hook) is 10.2s"},
		{"matcher over", subscriptions.Lag{Matcher: 14 * time.Second}, 10 * time.Second, true, 4 * time.Second, "(matcher) is 14s"},
		{"far over", subscriptions.Lag{RestHook: 10 * time.Minute}, 10 * time.Second, true, maxRetryAfter, "over the bound of 10s"},
	} {
		after, reason, over := lagGate{lag: fixedLag(c.lag), bound: c.bound}.Overloaded()
		if over != c.over || after != c.after || !strings.Contains(reason, c.says) {
			t.Errorf("%s: Overloaded() = %v, %q, %v; want %v, %v, mentioning %q", c.name, after, reason, over, c.after, c.over, c.says)
		}
	}
}

// holdingReceiver answers handshakes and heartbeats at once and holds
// every event notification until release (or 20 s, under the server's
// 30 s time limit of an attempt, so that a held delivery never fails).
type holdingReceiver struct {
	srv     *httptest.Server
	held    chan struct{} // one send per event notification held
	release chan struct{}
	once    sync.Once
}

func newHoldingReceiver(t *testing.T) *holdingReceiver {
	r := &holdingReceiver{held: make(chan struct{}, 100), release: make(chan struct{})}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		raw, _ := io.ReadAll(req.Body)
		if strings.Contains(string(raw), `"event-notification"`) {
			select {
			case r.held <- struct{}{}:
			default:
			}
			select {
			case <-r.release:
			case <-time.After(20 * time.Second):
			case <-req.Context().Done():
			}
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(func() { r.open(); r.srv.Close() })
	return r
}

// open lets every held and later notification through.
func (r *holdingReceiver) open() { r.once.Do(func() { close(r.release) }) }

// postPatient POSTs a Patient and returns the status, Retry-After and the first
// issue code of an OperationOutcome.
func postPatient(t *testing.T, base, family string) (status int, retryAfter, code string) {
	t.Helper()
	body := fmt.Sprintf(`{"resourceType":"Patient","name":[{"family":%q}]}`, family)
	req, err := http.NewRequest(http.MethodPost, base+"/Patient", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/fhir+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /Patient: %v", err)
	}
	defer resp.Body.Close()
	var oo struct {
		ResourceType string                  `json:"resourceType"`
		Issue        []struct{ Code string } `json:"issue"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&oo)
	if oo.ResourceType == "OperationOutcome" && len(oo.Issue) > 0 {
		code = oo.Issue[0].Code
	}
	return resp.StatusCode, resp.Header.Get("Retry-After"), code
}

// restHookLag reads fhirsub_notification_lag_seconds{channel="rest-hook"}.
func restHookLag(t *testing.T, base string) time.Duration {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), `fhirsub_notification_lag_seconds{channel="rest-hook"} `); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("lag gauge %q: %v", v, err)
			}
			return time.Duration(f * float64(time.Second))
		}
	}
	t.Fatal("no fhirsub_notification_lag_seconds{channel=\"rest-hook\"} on /metrics")
	return 0
}

// TestBackpressureRefusesWrites runs the binary with a 300 ms bound on the
// notification lag. First a dead receiver (nothing listens): its
// subscription fails and its undelivered event, older than the bound, must
// not refuse anybody's writes. Then a receiver that accepts its
// subscription's handshake but holds the event notification: the
// undelivered event ages past the bound, writes get 503 with Retry-After
// while reads are served, and once the receiver answers writes are
// accepted again. (Held past 2 s, the receiver would count as slow and
// stop counting: the test releases it as soon as it has seen the 503.)
func TestBackpressureRefusesWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("backpressure test skipped in -short mode (starts the binary)")
	}
	const bound = 300 * time.Millisecond
	rcv := newHoldingReceiver(t)
	srv := startServerProc(t, "--log-level", "error", "--max-notification-lag", bound.String(), "--max-failures", "1")

	// A dead receiver: its subscription goes to error at the first failed
	// handshake, then gets an event that is never delivered.
	deadPatient := writeBesideMatcherLag(t, http.StatusCreated, "POST", srv.base+"/Patient",
		map[string]any{"resourceType": "Patient", "name": []any{map[string]any{"family": "Dead"}}})["id"].(string)
	dead := writeBesideMatcherLag(t, http.StatusCreated, "POST", srv.base+"/Subscription",
		topicSubscription("http://"+freeAddr(t)+"/hook", criticalTopic, "id-only", "Observation?patient=Patient/"+deadPatient))["id"].(string)
	waitStatus(t, srv.base, dead, "error", 15*time.Second)
	writeBesideMatcherLag(t, http.StatusCreated, "POST", srv.base+"/Observation", criticalObservation(deadPatient, loincPotassium, "dead-1"))
	deadRecorded := time.Now()
	deadline := time.Now().Add(15 * time.Second)
	for eventsSince(getRaw(t, srv.base+"/Subscription/"+dead+"/$status")) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the dead receiver's event was not recorded within 15s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// once its event is older than twice the bound, writes are accepted
	time.Sleep(time.Until(deadRecorded.Add(2 * bound)))
	deadAge := time.Since(deadRecorded)
	// (A refusal while the rest-hook lag is under the bound is the
	// matcher's lag on a loaded machine, not the dead receiver: retried.)
	deadWrite, _, _ := postPatient(t, srv.base, "BesideTheDead")
	deadLag := restHookLag(t, srv.base)
	for retry := time.Now().Add(15 * time.Second); deadWrite == http.StatusServiceUnavailable && deadLag <= bound && time.Now().Before(retry); {
		time.Sleep(50 * time.Millisecond)
		deadWrite, _, _ = postPatient(t, srv.base, "BesideTheDead")
		deadLag = restHookLag(t, srv.base)
	}

	patient := writeBesideMatcherLag(t, http.StatusCreated, "POST", srv.base+"/Patient",
		map[string]any{"resourceType": "Patient", "name": []any{map[string]any{"family": "Lagging"}}})["id"].(string)
	sub := writeBesideMatcherLag(t, http.StatusCreated, "POST", srv.base+"/Subscription",
		topicSubscription(rcv.srv.URL+"/hook", criticalTopic, "id-only", "Observation?patient=Patient/"+patient))["id"].(string)
	waitStatus(t, srv.base, sub, "active", 15*time.Second)
	writeBesideMatcherLag(t, http.StatusCreated, "POST", srv.base+"/Observation", criticalObservation(patient, loincPotassium, "lag-1"))
	select {
	case <-rcv.held:
	case <-time.After(15 * time.Second):
		t.Fatal("the event notification did not reach the receiver within 15s")
	}

	// Write until refused with the rest-hook lag over the bound: the event
	// in flight ages past it. (On a loaded machine the matcher's lag may
	// refuse a write first; the loop goes on until the rest-hook's does.)
	var status int
	var retryAfter, code, refusedFamily string
	var lag time.Duration
	accepted := 0
	deadline = time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		refusedFamily = fmt.Sprintf("Before%d", accepted)
		status, retryAfter, code = postPatient(t, srv.base, refusedFamily)
		if status != http.StatusCreated {
			if lag = restHookLag(t, srv.base); lag > bound {
				break
			}
			t.Logf("write refused with the rest-hook lag at %v (the matcher's lag?); going on", lag)
		} else {
			accepted++
		}
		time.Sleep(50 * time.Millisecond)
	}
	refusedStatus, refusedRetry, refusedCode := status, retryAfter, code
	// Reads are served while writes are refused (at once: the receiver
	// counts as slow once its attempt has run for 2 s).
	readStatus, _, _ := fhirDo(context.Background(), "GET", srv.base+"/Patient/"+patient, nil)
	metaStatus, _, _ := fhirDo(context.Background(), "GET", srv.base+"/metadata", nil)

	// The receiver answers: the backlog drains and writes are accepted.
	released := time.Now()
	rcv.open()
	var recovered time.Duration
	deadline = time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if s, _, _ := postPatient(t, srv.base, "After"); s == http.StatusCreated {
			recovered = time.Since(released)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	refusedStored := len(searchAll(t, srv.base+"/Patient?family:exact="+refusedFamily))
	lagAfter := restHookLag(t, srv.base)

	line := fmt.Sprintf("backpressure: lag=%v (bound %v), write status=%d, retry-after=%s, issue=%s, accepted before=%d,"+
		" read status=%d, metadata status=%d, recovered after=%v, lag after=%v, refused writes stored=%d;"+
		" dead receiver's event undelivered for %v: write status=%d, rest-hook lag=%v",
		lag.Round(time.Millisecond), bound, refusedStatus, refusedRetry, refusedCode, accepted,
		readStatus, metaStatus, recovered.Round(time.Millisecond), lagAfter.Round(time.Millisecond), refusedStored,
		deadAge.Round(time.Millisecond), deadWrite, deadLag.Round(time.Millisecond))
	t.Log(line)
	reportFigure(line)

	if deadWrite != http.StatusCreated || deadLag > bound {
		t.Errorf("beside a dead receiver's event %v old: write status %d, rest-hook lag %v; want 201 and the lag under %v",
			deadAge, deadWrite, deadLag, bound)
	}
	if refusedStatus != http.StatusServiceUnavailable || refusedCode != "transient" {
		t.Fatalf("write while the lag grows: status %d issue %q, want 503 transient", refusedStatus, refusedCode)
	}
	if n, err := strconv.Atoi(refusedRetry); err != nil || n < 1 {
		t.Errorf("Retry-After %q, want a number of seconds >= 1", refusedRetry)
	}
	if lag <= bound {
		t.Errorf("rest-hook lag gauge %v when refused, want over the bound %v", lag, bound)
	}
	if readStatus != http.StatusOK || metaStatus != http.StatusOK {
		t.Errorf("reads while writes are refused: read %d, metadata %d; want 200", readStatus, metaStatus)
	}
	if refusedStored != 0 {
		t.Errorf("the refused write (family %s) was stored %d time(s)", refusedFamily, refusedStored)
	}
	if recovered == 0 || recovered > 5*time.Second {
		t.Errorf("writes accepted again after %v of the receiver answering, want within 5s", recovered)
	}
	if lagAfter > bound {
		t.Errorf("rest-hook lag %v after recovery, want under %v", lagAfter, bound)
	}
}

// getRaw GETs url and returns the body (fails the test on a non-200).
func getRaw(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v: %s", url, resp.StatusCode, err, raw)
	}
	return raw
}

// writeBesideMatcherLag is mustFHIR for the set-up writes of the
// backpressure test: with a bound of a few hundred milliseconds, the
// matcher's own lag on a loaded machine (start-up, a burst of handshakes)
// may refuse a write for a moment; such a write is sent again, for up to
// 15 s. Any other answer is judged at once.
func writeBesideMatcherLag(t *testing.T, want int, method, url string, body any) map[string]any {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, out, err := fhirDo(context.Background(), method, url, body)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		if st == http.StatusServiceUnavailable && strings.Contains(fmt.Sprint(out), "(matcher)") && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if st != want {
			t.Fatalf("%s %s: status %d, want %d: %v", method, url, st, want, out)
		}
		return out
	}
}
