package subscriptions_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/channels"
	"github.com/fhirsub/fhirsub/fhirstore"
	"github.com/fhirsub/fhirsub/fhirstore/sqlite"
	"github.com/fhirsub/fhirsub/subscriptions"
	"github.com/fhirsub/fhirsub/web"
)

const (
	resultTopic = "https://fhirsub.org/SubscriptionTopic/result-available"
	encTopic    = "http://example.org/topics/encounter-start"
)

// received is one request the test receiver got.
type received struct {
	Method, Path string
	Header       http.Header
	Body         []byte
	JSON         map[string]any
}

// receiver is a real HTTP server standing in for a rest-hook endpoint. It
// keeps every successfully answered request.
type receiver struct {
	t      testing.TB
	srv    *httptest.Server
	status atomic.Int32
	mu     sync.Mutex
	all    []received
	failed int
	notify chan struct{}
}

func newReceiver(t testing.TB) *receiver {
	t.Helper()
	r := &receiver{t: t, notify: make(chan struct{}, 1)}
	r.status.Store(200)
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		rec := received{Method: req.Method, Path: req.URL.Path, Header: req.Header.Clone(), Body: body}
		if len(body) > 0 {
			_ = json.Unmarshal(body, &rec.JSON)
		}
		st := int(r.status.Load())
		r.mu.Lock()
		if st/100 == 2 {
			r.all = append(r.all, rec)
		} else {
			r.failed++
		}
		r.mu.Unlock()
		select {
		case r.notify <- struct{}{}:
		default:
		}
		w.WriteHeader(st)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// matching returns the requests pred accepts, in arrival order.
func (r *receiver) matching(pred func(received) bool) []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []received
	for _, rec := range r.all {
		if pred(rec) {
			out = append(out, rec)
		}
	}
	return out
}

func (r *receiver) failures() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

// waitN waits until n requests that pred accepts have arrived.
func (r *receiver) waitN(what string, n int, pred func(received) bool) []received {
	r.t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		if got := r.matching(pred); len(got) >= n {
			return got
		}
		select {
		case <-r.notify:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			r.t.Fatalf("timed out waiting for %d× %s (have %d)", n, what, len(r.matching(pred)))
		}
	}
}

// waitEvents waits until the event notifications of subscription id
// carry n events in all (several may share a notification) and returns
// those notifications.
func (r *receiver) waitEvents(id string, n int) []received {
	r.t.Helper()
	pred := forSub(r.t, id, "event-notification")
	deadline := time.After(15 * time.Second)
	count := func() ([]received, int) {
		got := r.matching(pred)
		events := 0
		for _, g := range got {
			events += len(eventNumbers(r.t, g.JSON))
		}
		return got, events
	}
	for {
		got, events := count()
		if events >= n {
			return got
		}
		select {
		case <-r.notify:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			r.t.Fatalf("timed out waiting for %d events of Subscription/%s (have %d)", n, id, events)
		}
	}
}

// waitFor waits for the first request pred accepts.
func (r *receiver) waitFor(what string, pred func(received) bool) received {
	r.t.Helper()
	return r.waitN(what, 1, pred)[0]
}

// env is a running fhirsub: SQLite file, Manager, web server.
type env struct {
	t    testing.TB
	path string
	db   *sqlite.DB
	m    *subscriptions.Manager
	url  string
	hs   *httptest.Server
	cfg  subscriptions.Config
	// wrap, if set, stands between the Manager and the store's event
	// log (a test that counts reads, say)
	wrap func(*sqlite.DB) fhirstore.EventStore
}

func newEnv(t testing.TB, mutate ...func(*subscriptions.Config)) *env {
	t.Helper()
	return newEnvWrapped(t, nil, mutate...)
}

// newEnvWrapped is newEnv with the Manager's event log wrapped.
func newEnvWrapped(t testing.TB, wrap func(*sqlite.DB) fhirstore.EventStore, mutate ...func(*subscriptions.Config)) *env {
	t.Helper()
	e := &env{t: t, path: filepath.Join(t.TempDir(), "fhir.db"), wrap: wrap}
	e.hs = httptest.NewUnstartedServer(nil)
	e.url = "http://" + e.hs.Listener.Addr().String()
	rh, err := channels.NewRestHook(channels.RestHookConfig{Allow: []string{"127.0.0.1", "::1"}})
	if err != nil {
		t.Fatal(err)
	}
	e.cfg = subscriptions.Config{
		Sender:           hookSender{rh},
		ValidateEndpoint: channels.ValidateEndpoint,
		BaseURL:          e.url,
		RetryBase:        20 * time.Millisecond,
		RetryMax:         100 * time.Millisecond,
		HeartbeatTick:    20 * time.Millisecond,
		PollInterval:     50 * time.Millisecond,
		Timeout:          2 * time.Second,
		MaxFailures:      3,
	}
	for _, m := range mutate {
		m(&e.cfg)
	}
	e.start()
	e.hs.Start()
	t.Cleanup(func() {
		e.hs.Close()
		e.stop()
	})
	return e
}

// handler dispatches to the current web server, so that a restart can
// swap it behind the same URL.
type handler struct {
	mu sync.RWMutex
	h  http.Handler
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.RLock()
	cur := h.h
	h.mu.RUnlock()
	cur.ServeHTTP(w, r)
}

func (e *env) start() {
	e.t.Helper()
	db, err := sqlite.Open(context.Background(), sqlite.Config{Path: e.path, PollInterval: 20 * time.Millisecond})
	if err != nil {
		e.t.Fatalf("open sqlite: %v", err)
	}
	e.db = db
	cfg := e.cfg
	cfg.Store, cfg.Events = db, db
	if e.wrap != nil {
		cfg.Events = e.wrap(db)
	}
	m, err := subscriptions.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		e.t.Fatalf("run: %v", err)
	}
	e.m = m
	srv, err := web.New(web.Config{
		Store:   db,
		BaseURL: e.url,
		Interceptors: map[string]web.Interceptor{
			"Subscription":      m.SubscriptionInterceptor(),
			"SubscriptionTopic": m.TopicInterceptor(),
		},
		ExtraTypes:    []string{"SubscriptionTopic"},
		Subscriptions: m,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	if h, ok := e.hs.Config.Handler.(*handler); ok {
		h.mu.Lock()
		h.h = srv
		h.mu.Unlock()
	} else {
		e.hs.Config.Handler = &handler{h: srv}
	}
}

func (e *env) stop() {
	if e.m == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.m.Shutdown(ctx); err != nil {
		e.t.Errorf("shutdown: %v", err)
	}
	_ = e.db.Close()
	e.m = nil
}

// restart stops the Manager and the store and starts new ones on the same
// file, behind the same URL.
func (e *env) restart() {
	e.stop()
	e.start()
}

type resp struct {
	Status int
	Body   []byte
	JSON   map[string]any
}

func (e *env) do(method, path string, body any) resp {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	out := resp{Status: res.StatusCode, Body: b}
	_ = json.Unmarshal(b, &out.JSON)
	return out
}

func (e *env) mustDo(want int, method, path string, body any) map[string]any {
	e.t.Helper()
	r := e.do(method, path, body)
	if r.Status != want {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, want, r.Body)
	}
	return r.JSON
}

// encounterTopic is a topic created through the API in the tests.
func encounterTopic() map[string]any {
	return map[string]any{
		"resourceType": "SubscriptionTopic",
		"id":           "encounter-start",
		"url":          encTopic,
		"status":       "active",
		"resourceTrigger": []any{map[string]any{
			"resource":             "Encounter",
			"supportedInteraction": []any{"create", "update", "delete"},
		}},
		"canFilterBy":       []any{map[string]any{"resource": "Encounter", "filterParameter": "patient"}},
		"notificationShape": []any{map[string]any{"resource": "Encounter", "include": []any{"Encounter:patient"}}},
	}
}

// topicSub returns a topic-based rest-hook Subscription.
func topicSub(endpoint, topic, content string, filters ...string) map[string]any {
	s := map[string]any{
		"resourceType": "Subscription",
		"meta":         map[string]any{"profile": []any{subscriptions.ProfileSubscription}},
		"status":       "requested",
		"reason":       "test",
		"end":          "2020-12-31T12:00:00Z",
		"criteria":     topic,
		"channel": map[string]any{
			"type":     "rest-hook",
			"endpoint": endpoint,
			"header":   []any{"Authorization: Bearer SECRET-TOKEN", "X-Extra: one, two"},
			"payload":  "application/fhir+json",
			"_payload": map[string]any{"extension": []any{map[string]any{
				"url": subscriptions.ExtPayloadContent, "valueCode": content}}},
		},
	}
	if len(filters) > 0 {
		var exts []any
		for _, f := range filters {
			exts = append(exts, map[string]any{"url": subscriptions.ExtFilterCriteria, "valueString": f})
		}
		s["_criteria"] = map[string]any{"extension": exts}
	}
	return s
}

func channelExt(sub map[string]any, url string, key string, v any) {
	ch := sub["channel"].(map[string]any)
	exts, _ := ch["extension"].([]any)
	ch["extension"] = append(exts, map[string]any{"url": url, key: v})
}

// params returns the status Parameters of a notification Bundle.
func params(t testing.TB, bundle map[string]any) []any {
	t.Helper()
	entries, _ := bundle["entry"].([]any)
	if len(entries) == 0 {
		t.Fatalf("bundle has no entries: %v", bundle)
	}
	res := entries[0].(map[string]any)["resource"].(map[string]any)
	if res["resourceType"] != "Parameters" {
		t.Fatalf("first entry is %v, not Parameters", res["resourceType"])
	}
	return res["parameter"].([]any)
}

// param returns the first value of the named parameter (any value[x]).
func param(t testing.TB, bundle map[string]any, name string) any {
	t.Helper()
	for _, p := range params(t, bundle) {
		pm := p.(map[string]any)
		if pm["name"] != name {
			continue
		}
		for k, v := range pm {
			if strings.HasPrefix(k, "value") || k == "part" {
				return v
			}
		}
	}
	return nil
}

func kindOf(t testing.TB, r received) string {
	t.Helper()
	if r.JSON == nil {
		return ""
	}
	s, _ := param(t, r.JSON, "type").(string)
	return s
}

// forSub accepts notifications of one subscription and kind.
func forSub(t testing.TB, id, kind string) func(received) bool {
	return func(r received) bool {
		if r.JSON == nil || r.JSON["resourceType"] != "Bundle" {
			return false
		}
		ref, _ := param(t, r.JSON, "subscription").(map[string]any)
		s, _ := ref["reference"].(string)
		return strings.HasSuffix(s, "/Subscription/"+id) && (kind == "" || kindOf(t, r) == kind)
	}
}

// eventNumbers returns the event-number of each notification-event.
func eventNumbers(t testing.TB, bundle map[string]any) []string {
	t.Helper()
	var out []string
	for _, p := range params(t, bundle) {
		pm := p.(map[string]any)
		if pm["name"] != "notification-event" {
			continue
		}
		for _, part := range pm["part"].([]any) {
			pp := part.(map[string]any)
			if pp["name"] == "event-number" {
				out = append(out, pp["valueString"].(string))
			}
		}
	}
	return out
}

func observation(patient, status string) map[string]any {
	return map[string]any{
		"resourceType": "Observation",
		"status":       status,
		"code":         map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "2339-0"}}},
		"subject":      map[string]any{"reference": "Patient/" + patient},
	}
}

// Compile-time guards of the consumer-side interfaces.
var (
	_ subscriptions.Sender = hookSender{}
	_ web.Interceptor      = (*subscriptions.SubscriptionHook)(nil)
	_ web.Interceptor      = (*subscriptions.TopicHook)(nil)
	_ web.SubscriptionOps  = (*subscriptions.Manager)(nil)
)

// hookSender adapts channels.RestHook to subscriptions.Sender, as
// cmd/fhirsub does.
type hookSender struct{ rh *channels.RestHook }

func (h hookSender) Send(ctx context.Context, req subscriptions.Request) error {
	_, err := h.rh.Send(ctx, channels.Request(req))
	return err
}
