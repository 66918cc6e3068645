package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/channels"
	"github.com/fhirsub/fhirsub/fhirstore"
	"github.com/fhirsub/fhirsub/fhirstore/sqlite"
	"github.com/fhirsub/fhirsub/subscriptions"
)

// Series of the text exposition the tests read, as the registry prints
// them (labels sorted by name).
const (
	restHookOK     = `fhirsub_deliveries_total{channel="rest-hook",outcome="success"}`
	restHookFailed = `fhirsub_deliveries_total{channel="rest-hook",outcome="failure"}`
	websocketOK    = `fhirsub_deliveries_total{channel="websocket",outcome="success"}`
	latencyOK      = `fhirsub_resthook_delivery_duration_seconds_count{outcome="success"}`
	latencyFailed  = `fhirsub_resthook_delivery_duration_seconds_count{outcome="failure"}`
)

// TestMetricsThroughTheServer runs the server binary, makes one rest-hook
// subscription deliver one event to a real receiver, and reads GET
// /metrics: the writes, the matcher, the deliveries, their latency and the
// subscription statuses must all show it.
func TestMetricsThroughTheServer(t *testing.T) {
	rcv := newHookReceiver(t)
	srv := startServerProc(t, "--log-level", "error")

	patient := mustFHIR(t, http.StatusCreated, "POST", srv.base+"/Patient",
		map[string]any{"resourceType": "Patient", "name": []any{map[string]any{"family": "Metrics"}}})["id"].(string)
	id := mustFHIR(t, http.StatusCreated, "POST", srv.base+"/Subscription",
		topicSubscription(rcv.URL(), criticalTopic, "id-only", "Observation?patient=Patient/"+patient))["id"].(string)
	waitStatus(t, srv.base, id, "active", 10*time.Second)
	mustFHIR(t, http.StatusCreated, "POST", srv.base+"/Observation", criticalObservation(patient, loincPotassium, "m1"))
	if !rcv.waitUntil(15*time.Second, func() bool { return contiguous(rcv.snapshot(id).deliveries, 1) }) {
		t.Fatalf("events %v delivered, want 1", sortedKeys(rcv.snapshot(id).deliveries))
	}

	// The counter moves when the sender returns, a moment after the
	// receiver has seen the request.
	var got map[string]float64
	deadline := time.Now().Add(5 * time.Second)
	for {
		got = scrapeURL(t, srv.base+"/metrics")
		if got[restHookOK] >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}

	for series, want := range map[string]float64{
		`fhirsub_writes_total{interaction="create",type="Patient"}`:      1,
		`fhirsub_writes_total{interaction="create",type="Subscription"}`: 1,
		`fhirsub_writes_total{interaction="create",type="Observation"}`:  1,
		`fhirsub_events_recorded_total`:                                  1,
		`fhirsub_subscriptions{status="active"}`:                         1,
		`fhirsub_subscriptions{status="requested"}`:                      0,
		`fhirsub_subscriptions{status="error"}`:                          0,
		`fhirsub_subscriptions{status="off"}`:                            0,
		restHookFailed:                                                   0,
		websocketOK:                                                      0,
		`fhirsub_websocket_connections`:                                  0,
	} {
		if v, ok := got[series]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", series, v, ok, want)
		}
	}
	for _, ch := range []string{"matcher", "rest-hook", "websocket"} {
		if _, ok := got[`fhirsub_notification_lag_seconds{channel="`+ch+`"}`]; !ok {
			t.Errorf("no notification lag gauge for channel %s", ch)
		}
	}
	if w := sumOf(got, "fhirsub_writes_total{"); w < 3 {
		t.Errorf("writes total %v, want at least 3 (Patient, Subscription, Observation)", w)
	}
	// the built-in topics, the Patient, the Subscription (created and
	// activated) and the Observation are all changes of the feed
	if v := got["fhirsub_matcher_changes_total"]; v < 4 {
		t.Errorf("fhirsub_matcher_changes_total = %v, want at least 4", v)
	}
	// the handshake and the event notification
	if v := got[restHookOK]; v < 2 {
		t.Errorf("%s = %v, want at least 2 (handshake and event)", restHookOK, v)
	}
	if got[latencyOK] != got[restHookOK] || got[latencyOK] < 1 {
		t.Errorf("latency histogram counts %v successful requests, the counter %v", got[latencyOK], got[restHookOK])
	}
	inf := `fhirsub_resthook_delivery_duration_seconds_bucket{outcome="success",le="+Inf"}`
	if got[inf] != got[latencyOK] {
		t.Errorf("%s = %v, want the histogram count %v", inf, got[inf], got[latencyOK])
	}
	// the embedded store's writer: the writes above and the event, each
	// timed (a commit may carry several requests)
	for work, least := range map[string]float64{"commit-resources": 4, "commit-events": 1} {
		reqs := got[`fhirsub_store_writer_requests_total{work="`+work+`"}`]
		commits := got[`fhirsub_store_writer_seconds_count{work="`+work+`"}`]
		if reqs < least || commits < 1 || commits > reqs {
			t.Errorf("writer work %s: %v requests in %v commits, want at least %v requests", work, reqs, commits, least)
		}
	}
	for _, series := range []string{"fhirsub_delivery_queue_depth", "fhirsub_delivery_in_flight", "go_goroutines", "process_cpu_seconds_total"} {
		if _, ok := got[series]; !ok {
			t.Errorf("%s missing from /metrics", series)
		}
	}
}

// TestTimedSender checks that the decorator passes requests and answers
// through and counts and times each outcome.
func TestTimedSender(t *testing.T) {
	m := newMetrics(slog.New(slog.DiscardHandler))
	fail := errors.New("refused")
	next := senderFunc(func(_ context.Context, req channels.Request) (channels.Response, error) {
		if req.URL == "http://bad.example/" {
			return channels.Response{}, fail
		}
		time.Sleep(2 * time.Millisecond)
		return channels.Response{Status: 204}, nil
	})
	s := m.sender(next)
	for range 3 {
		if resp, err := s.Send(context.Background(), channels.Request{URL: "http://ok.example/"}); err != nil || resp.Status != 204 {
			t.Fatalf("Send = %v, %v; want the wrapped sender's 204", resp, err)
		}
	}
	if _, err := s.Send(context.Background(), channels.Request{URL: "http://bad.example/"}); !errors.Is(err, fail) {
		t.Fatalf("Send error %v, want the wrapped sender's", err)
	}
	got := scrape(t, m.handler())
	for series, want := range map[string]float64{restHookOK: 3, restHookFailed: 1, latencyOK: 3, latencyFailed: 1} {
		if got[series] != want {
			t.Errorf("%s = %v, want %v", series, got[series], want)
		}
	}
	// 2 ms each at least: none of the three successes is under 1 ms
	if b := got[`fhirsub_resthook_delivery_duration_seconds_bucket{outcome="success",le="0.001"}`]; b != 0 {
		t.Errorf("%v successful requests in the 1 ms bucket, want 0", b)
	}
	if s := got[`fhirsub_resthook_delivery_duration_seconds_sum{outcome="success"}`]; s < 0.006 {
		t.Errorf("latency sum %v s, want at least 0.006", s)
	}
}

// TestCountingStore writes through the decorator into a real SQLite store:
// each successful write counts once under its interaction and type (an
// update that creates counts as a create), a failed one not at all.
func TestCountingStore(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "fhir.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	m := newMetrics(slog.New(slog.DiscardHandler))
	st := m.store(db)

	p, err := st.Create(ctx, map[string]any{"resourceType": "Patient", "active": true})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Update(ctx, p.ID, map[string]any{"resourceType": "Patient", "id": p.ID, "active": false}, fhirstore.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, created, err := st.Update(ctx, "new", map[string]any{"resourceType": "Patient", "id": "new"}, fhirstore.WriteOptions{}); err != nil || !created {
		t.Fatalf("update-as-create: created %v, err %v", created, err)
	}
	if _, _, err := st.Update(ctx, p.ID, map[string]any{"resourceType": "Patient", "id": p.ID}, fhirstore.WriteOptions{IfMatch: "99"}); err == nil {
		t.Fatal("update with a stale If-Match succeeded")
	}
	if _, err := st.Delete(ctx, "Patient", "new", fhirstore.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Transaction(ctx, []fhirstore.Op{
		{Method: fhirstore.MethodCreate, Body: map[string]any{"resourceType": "Observation", "status": "final",
			"code": map[string]any{"text": "x"}}},
		{Method: fhirstore.MethodUpdate, ID: "t1", Body: map[string]any{"resourceType": "Encounter", "id": "t1", "status": "planned"}},
		{Method: fhirstore.MethodDelete, Type: "Patient", ID: p.ID},
	}); err != nil {
		t.Fatal(err)
	}

	got := scrape(t, m.handler())
	for series, want := range map[string]float64{
		`fhirsub_writes_total{interaction="create",type="Patient"}`:     2,
		`fhirsub_writes_total{interaction="update",type="Patient"}`:     1,
		`fhirsub_writes_total{interaction="delete",type="Patient"}`:     2,
		`fhirsub_writes_total{interaction="create",type="Observation"}`: 1,
		`fhirsub_writes_total{interaction="create",type="Encounter"}`:   1,
	} {
		if got[series] != want {
			t.Errorf("%s = %v, want %v", series, got[series], want)
		}
	}
	if w := sumOf(got, "fhirsub_writes_total{"); w != 7 {
		t.Errorf("writes total %v, want 7", w)
	}
}

// TestPipelineCollector reads fixed Stats through the registry: the
// websocket series joins the rest-hook ones under one metric name.
func TestPipelineCollector(t *testing.T) {
	m := newMetrics(slog.New(slog.DiscardHandler))
	m.observe(fixedStats{ChangesProcessed: 7, EventsRecorded: 5, EventsToListeners: 3, QueuePending: 2, QueueBusy: 1, DeliveryLanes: 8,
		Subscriptions: map[subscriptions.Status]int{subscriptions.StatusActive: 4, subscriptions.StatusError: 1},
		Lag:           subscriptions.Lag{Matcher: 250 * time.Millisecond, RestHook: 1500 * time.Millisecond}},
		fixedSockets{n: 6, lag: 750 * time.Millisecond})
	got := scrape(t, m.handler())
	for series, want := range map[string]float64{
		"fhirsub_matcher_changes_total":                         7,
		"fhirsub_events_recorded_total":                         5,
		websocketOK:                                             3,
		restHookOK:                                              0,
		"fhirsub_delivery_queue_depth":                          2,
		"fhirsub_delivery_in_flight":                            1,
		"fhirsub_delivery_lanes":                                8,
		"fhirsub_websocket_connections":                         6,
		`fhirsub_subscriptions{status="active"}`:                4,
		`fhirsub_subscriptions{status="error"}`:                 1,
		`fhirsub_subscriptions{status="requested"}`:             0,
		`fhirsub_subscriptions{status="off"}`:                   0,
		`fhirsub_notification_lag_seconds{channel="matcher"}`:   0.25,
		`fhirsub_notification_lag_seconds{channel="rest-hook"}`: 1.5,
		`fhirsub_notification_lag_seconds{channel="websocket"}`: 0.75,
	} {
		if v, ok := got[series]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", series, v, ok, want)
		}
	}
}

type senderFunc func(context.Context, channels.Request) (channels.Response, error)

func (f senderFunc) Send(ctx context.Context, r channels.Request) (channels.Response, error) {
	return f(ctx, r)
}

type fixedStats subscriptions.Stats

func (s fixedStats) Stats() subscriptions.Stats { return subscriptions.Stats(s) }

type fixedSockets struct {
	n   int
	lag time.Duration
}

func (s fixedSockets) Len() int                                { return s.n }
func (s fixedSockets) NotificationLag(time.Time) time.Duration { return s.lag }

// scrape GETs a metrics handler and parses its text exposition.
func scrape(t *testing.T, h http.Handler) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: status %d: %s", rec.Code, rec.Body)
	}
	return parseExposition(t, rec.Body)
}

// scrapeURL GETs url and parses its text exposition.
func scrapeURL(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET %s: status %d, Content-Type %q", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return parseExposition(t, resp.Body)
}

// parseExposition reads "series value" lines of the Prometheus text
// format (no timestamps: the registry writes none), comments skipped.
func parseExposition(t *testing.T, r io.Reader) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("exposition line %q has no value", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("exposition line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// sumOf adds the values of the series starting with prefix.
func sumOf(m map[string]float64, prefix string) float64 {
	var sum float64
	for k, v := range m {
		if strings.HasPrefix(k, prefix) {
			sum += v
		}
	}
	return sum
}
