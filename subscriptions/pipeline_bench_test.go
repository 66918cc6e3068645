package subscriptions_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/subscriptions"
)

// hookCounter is a lean rest-hook receiver for benchmarks: it decodes only
// the status Parameters of each notification and keeps, per subscription,
// the highest event number received. A number beyond the next expected one
// is a gap (ordered delivery broken) and is counted as a violation; a
// number already seen is a re-delivery (allowed: at-least-once).
type hookCounter struct {
	srv *httptest.Server

	mu       sync.Mutex
	last     map[string]int64 // subscription id → highest event number seen
	events   int64            // distinct events received, all subscriptions
	requests int64            // event-notification requests
	dups     int64            // events received again
	gaps     []string         // ordering violations
	changed  *sync.Cond
}

// notice is the part of a notification Bundle hookCounter reads.
type notice struct {
	Entry []struct {
		Resource struct {
			Parameter []struct {
				Name           string `json:"name"`
				ValueCode      string `json:"valueCode"`
				ValueReference struct {
					Reference string `json:"reference"`
				} `json:"valueReference"`
				Part []struct {
					Name        string `json:"name"`
					ValueString string `json:"valueString"`
				} `json:"part"`
			} `json:"parameter"`
		} `json:"resource"`
	} `json:"entry"`
}

// read returns the subscription id, the notification type and the event
// numbers of the Bundle's status Parameters (the first entry).
func (n *notice) read() (sub, typ string, numbers []int64) {
	for _, p := range n.Entry[0].Resource.Parameter {
		switch p.Name {
		case "subscription":
			sub = p.ValueReference.Reference[strings.LastIndexByte(p.ValueReference.Reference, '/')+1:]
		case "type":
			typ = p.ValueCode
		case "notification-event":
			for _, part := range p.Part {
				if part.Name == "event-number" {
					k, _ := strconv.ParseInt(part.ValueString, 10, 64)
					numbers = append(numbers, k)
				}
			}
		}
	}
	return sub, typ, numbers
}

func newHookCounter(b *testing.B) *hookCounter {
	b.Helper()
	h := &hookCounter{last: map[string]int64{}}
	h.changed = sync.NewCond(&h.mu)
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n notice
		if err := json.NewDecoder(r.Body).Decode(&n); err != nil || len(n.Entry) == 0 {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		h.record(&n)
		w.WriteHeader(http.StatusOK)
	}))
	b.Cleanup(h.srv.Close)
	return h
}

func (h *hookCounter) record(n *notice) {
	sub, typ, numbers := n.read()
	h.mu.Lock()
	defer h.mu.Unlock()
	if typ == "handshake" {
		if _, ok := h.last[sub]; !ok {
			h.last[sub] = 0
		}
		h.changed.Broadcast()
		return
	}
	if typ != "event-notification" {
		return
	}
	h.requests++
	for _, k := range numbers {
		switch last := h.last[sub]; {
		case k <= last:
			h.dups++
		case k == last+1:
			h.last[sub] = k
			h.events++
		default:
			h.gaps = append(h.gaps, fmt.Sprintf("subscription %s: event %d after %d", sub, k, last))
			h.last[sub] = k
		}
	}
	h.changed.Broadcast()
}

// counts returns the distinct events and the requests received so far.
func (h *hookCounter) counts() (events, requests int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.events, h.requests
}

// waitUntil waits until cond (called with h.mu held) holds, failing after
// timeout or on an ordering violation.
func (h *hookCounter) waitUntil(b *testing.B, what string, timeout time.Duration, cond func() bool) {
	b.Helper()
	stop := time.AfterFunc(timeout, func() {
		h.mu.Lock()
		h.changed.Broadcast()
		h.mu.Unlock()
	})
	defer stop.Stop()
	deadline := time.Now().Add(timeout)
	h.mu.Lock()
	defer h.mu.Unlock()
	for !cond() {
		if len(h.gaps) > 0 {
			b.Fatalf("ordered delivery broken: %s", strings.Join(h.gaps, "; "))
		}
		if time.Now().After(deadline) {
			b.Fatalf("timed out after %v waiting for %s (events %d, requests %d)", timeout, what, h.events, h.requests)
		}
		h.changed.Wait()
	}
	if len(h.gaps) > 0 {
		b.Fatalf("ordered delivery broken: %s", strings.Join(h.gaps, "; "))
	}
}

// subscribe creates n id-only rest-hook subscriptions on the result topic
// for one patient, each with the given max-count (0: no extension), and
// waits for their handshakes.
func subscribe(b *testing.B, e *env, h *hookCounter, n int, patient string, maxCount int) {
	b.Helper()
	want := len(h.last) + n
	for range n {
		sub := topicSub(h.srv.URL, resultTopic, "id-only", "Observation?patient=Patient/"+patient)
		delete(sub, "end")
		if maxCount > 0 {
			channelExt(sub, subscriptions.ExtMaxCount, "valuePositiveInt", maxCount)
		}
		e.mustDo(201, "POST", "/Subscription", sub)
	}
	h.waitUntil(b, "handshakes", time.Minute, func() bool { return len(h.last) >= want })
}

// deliverWrites creates writes matching Observations for patient and waits
// until perWrite distinct events per write have arrived. It reports
// deliveries/s (events received per second, write to last arrival) and
// requests/s.
func deliverWrites(b *testing.B, e *env, h *hookCounter, patient string, writes, perWrite int) {
	b.Helper()
	ctx := context.Background()
	ev0, req0 := h.counts()
	want := ev0 + int64(writes*perWrite)
	start := time.Now()
	for range writes {
		if _, err := e.db.Create(ctx, observation(patient, "final")); err != nil {
			b.Fatal(err)
		}
	}
	h.waitUntil(b, fmt.Sprintf("%d events", want-ev0), 2*time.Minute, func() bool { return h.events >= want })
	secs := time.Since(start).Seconds()
	ev1, req1 := h.counts()
	b.ReportMetric(float64(ev1-ev0)/secs, "deliveries/s")
	b.ReportMetric(float64(req1-req0)/secs, "requests/s")
}

// BenchmarkRestHookPipeline measures the whole pipeline on the embedded
// store: a write committed, matched, recorded, built into an id-only
// notification and POSTed to a local receiver, for one subscription
// (ordered delivery, so one request at a time) with max-count 1. One op
// is one write delivered.
func BenchmarkRestHookPipeline(b *testing.B) {
	h := newHookCounter(b)
	e := newEnv(b)
	subscribe(b, e, h, 1, "p1", 1)
	b.ReportAllocs()
	b.ResetTimer()
	deliverWrites(b, e, h, "p1", b.N, 1)
}

// BenchmarkRestHookFanout is the shape of the performance budget (≥ 5,000
// rest-hook deliveries/s to a local receiver): 100 rest-hook
// subscriptions on one local receiver, all triggered by every write of a
// stream of matching writes. One op is one write delivered to all 100.
// "max-count=1" sends one event per notification; "max-count=20" (also
// the default, DefaultMaxCount) lets queued events share a Bundle.
func BenchmarkRestHookFanout(b *testing.B) {
	const subs = 100
	h := newHookCounter(b)
	e := newEnv(b)
	for _, bc := range []struct {
		name     string
		maxCount int
		patient  string
	}{
		{"max-count=1", 1, "fan1"},
		{"max-count=20", 20, "fan20"},
	} {
		// each case has its own subscriptions, on its own patient
		before := len(h.last)
		subscribe(b, e, h, subs, bc.patient, bc.maxCount)
		if got := len(h.last) - before; got != subs {
			b.Fatalf("%d handshakes, want %d", got, subs)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			deliverWrites(b, e, h, bc.patient, b.N, subs)
		})
	}
}
