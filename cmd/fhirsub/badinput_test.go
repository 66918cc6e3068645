package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The bad-input catalogue (issue 8 item 4): one table of hostile or broken
// inputs sent to the real server binary over REST, the Subscription
// operations and the three websocket protocols. Every one must get a clear
// error — an OperationOutcome with the right 4xx status, a websocket error
// frame or close code — and none may crash the server, hang it, or change
// what it stores. After the table the server is healthy, every seeded
// resource reads back with its original version and content, and a normal
// write still notifies.

// badInputMaxBody is the --max-body of the catalogue's server.
const badInputMaxBody = 64 << 10

// badCase is one row of the catalogue: a request (HTTP, websocket or a
// custom run) and the answer expected.
type badCase struct {
	name string

	// HTTP: method, path (with query) and raw body. The Content-Type is
	// application/fhir+json when there is a body, unless ctype says
	// otherwise ("-": none).
	method, path string
	ctype        string
	header       map[string]string
	body         []byte
	// status is the HTTP status expected. Unless plain is set the answer
	// must be an OperationOutcome with an error issue whose code is issue
	// (when set) and whose diagnostics contain diag (when set).
	status int
	issue  string
	diag   string
	plain  bool // a non-FHIR endpoint (a websocket path): status only

	// ws, when set, is a websocket exchange instead of an HTTP request.
	ws *wsScript

	// run, when set, replaces both (floods and multi-step cases).
	run func(t *testing.T)
	// after runs when the answer was as expected (e.g. nothing stored).
	after func(t *testing.T)
}

// wsScript is a websocket exchange: dial path, send frames, and expect an
// error frame and/or a close code.
type wsScript struct {
	path       string // with the query
	dialStatus int    // the upgrade must be refused with this HTTP status
	send       []wsFrame
	pace       time.Duration // between frames
	// errorFrame is expected among the frames received: a JSON error
	// frame whose data.code (legacy) or payload.code (Backport) equals
	// it, or an R4 text frame "error …" containing it.
	errorFrame string
	// closeCode is the close code expected (closeReason, when set, must
	// be contained in the reason). 0: the connection must stay open,
	// which probe proves after the errors.
	closeCode   int
	closeReason string
	probe       *wsProbe
}

type wsFrame struct {
	binary bool
	data   []byte
}

// wsProbe is a message whose answer shows that a connection still works.
type wsProbe struct {
	send, want string // want: a substring of the answer
	wait       time.Duration
}

func text(s string) wsFrame    { return wsFrame{data: []byte(s)} }
func rawText(b []byte) wsFrame { return wsFrame{data: b} }
func repeatFrames(f wsFrame, n int) []wsFrame {
	out := make([]wsFrame, n)
	for i := range out {
		out[i] = f
	}
	return out
}

var (
	legacyProbe = &wsProbe{send: `{"type":"ping"}`, want: `"pong"`}
	r4Probe     = &wsProbe{send: "hello", want: "error unexpected client message"}
)

// seededResource is a resource stored before the table, as it was read
// back then.
type seededResource struct {
	typ, id string
	body    map[string]any
}

func (s seededResource) ref() string { return s.typ + "/" + s.id }

func (s seededResource) version() string {
	meta, _ := s.body["meta"].(map[string]any)
	v, _ := meta["versionId"].(string)
	return v
}

// badInputEnv is what the cases need to know of the running server.
type badInputEnv struct {
	base      string
	patient   string // seeded Patient id
	topicSub  string // seeded topic-based websocket Subscription id
	classic   string // seeded classic R4 websocket Subscription id
	observOne string // seeded Observation ids
}

func TestBadInputCatalogue(t *testing.T) {
	// No --resthook-allow: the SSRF guard is in force, so loopback,
	// private and link-local endpoints must be refused at create.
	srv := startServerProc(t, "--max-body", strconv.Itoa(badInputMaxBody), "--resthook-allow=", "--log-level", "warn")
	seeds, env := seedBadInput(t, srv.base)
	before := storedCounts(t, srv.base)

	cases := badInputCases(env)
	if len(cases) < 40 {
		t.Fatalf("the catalogue has %d cases, want at least 40", len(cases))
	}
	names := map[string]bool{}
	passed := 0
	for _, c := range cases {
		if names[c.name] {
			t.Fatalf("duplicate case name %q", c.name)
		}
		names[c.name] = true
		ok := t.Run(c.name, func(t *testing.T) {
			switch {
			case c.run != nil:
				c.run(t)
			case c.ws != nil:
				runWSCase(t, srv.base, c.ws)
			default:
				runHTTPCase(t, srv.base, c)
			}
			if c.after != nil && !t.Failed() {
				c.after(t)
			}
		})
		if ok {
			passed++
		}
		select {
		case <-srv.exited:
			t.Fatalf("the server exited after case %q:\n%s", c.name, srv.logTail(40))
		default:
		}
	}

	// The server is still healthy.
	for _, p := range []string{"/healthz", "/readyz", "/metadata"} {
		mustFHIR(t, http.StatusOK, "GET", srv.base+p, nil)
	}
	// Nothing stored was lost, changed or added.
	intact := 0
	for _, s := range seeds {
		st, got, err := fhirDo(context.Background(), "GET", srv.base+"/"+s.ref(), nil)
		switch {
		case err != nil:
			t.Errorf("read %s after the table: %v", s.ref(), err)
		case st != http.StatusOK:
			t.Errorf("read %s after the table: status %d: %v", s.ref(), st, got)
		case !reflect.DeepEqual(got, s.body):
			t.Errorf("%s changed during the table:\nbefore %v\nafter  %v", s.ref(), s.body, got)
		default:
			intact++
		}
	}
	if after := storedCounts(t, srv.base); !reflect.DeepEqual(after, before) {
		t.Errorf("resource counts changed during the table: before %v, after %v", before, after)
	}
	// A normal write still works and notifies.
	checkStillNotifies(t, env)
	if log, err := os.ReadFile(srv.logPath); err == nil {
		if i := bytes.Index(log, []byte("panic")); i >= 0 {
			t.Errorf("the server log mentions a panic: %.400s", log[i:])
		}
		// The SSRF cases were refused at validation: no rest-hook
		// subscription exists, so nothing was ever sent or attempted.
		if i := bytes.Index(log, []byte("rest-hook delivery")); i >= 0 {
			t.Errorf("the server attempted a rest-hook delivery: %.400s", log[i:])
		}
	}

	health := "server healthy"
	if t.Failed() {
		health = "FAILURES"
	}
	line := fmt.Sprintf("bad-input: cases=%d, passed=%d, %s, stored resources intact=%d/%d", len(cases), passed, health, intact, len(seeds))
	t.Log(line)
	reportFigure(line)
}

// seedBadInput stores a Patient, two Observations (one updated to version
// 2) and two websocket Subscriptions, and returns them as read back once
// settled.
func seedBadInput(t *testing.T, base string) ([]seededResource, badInputEnv) {
	t.Helper()
	env := badInputEnv{base: base}
	p := mustFHIR(t, http.StatusCreated, "POST", base+"/Patient", map[string]any{
		"resourceType": "Patient",
		"identifier":   []any{map[string]any{"system": "urn:fhirsub:badinput", "value": "seed-patient"}},
		"name":         []any{map[string]any{"family": "Catalogue", "given": []any{"Bad", "Input"}}},
		"birthDate":    "1970-01-01",
	})
	env.patient = p["id"].(string)

	topic := topicSubscription("", criticalTopic, "id-only", "Observation?patient=Patient/"+env.patient)
	topic["channel"].(map[string]any)["type"] = "websocket"
	delete(topic["channel"].(map[string]any), "endpoint")
	s := mustFHIR(t, http.StatusCreated, "POST", base+"/Subscription", topic)
	env.topicSub = s["id"].(string)
	classic := mustFHIR(t, http.StatusCreated, "POST", base+"/Subscription", map[string]any{
		"resourceType": "Subscription",
		"status":       "requested",
		"reason":       "bad-input catalogue, classic R4",
		"criteria":     "Observation?subject=Patient/" + env.patient,
		"channel":      map[string]any{"type": "websocket"},
	})
	env.classic = classic["id"].(string)

	o1 := mustFHIR(t, http.StatusCreated, "POST", base+"/Observation", criticalObservation(env.patient, "2823-3", "seed-obs-1"))
	env.observOne = o1["id"].(string)
	o2 := mustFHIR(t, http.StatusCreated, "POST", base+"/Observation", criticalObservation(env.patient, "2951-2", "seed-obs-2"))
	o2id := o2["id"].(string)
	o2["valueQuantity"] = map[string]any{"value": json.Number("7.2"), "unit": "mmol/L"}
	delete(o2, "meta")
	mustFHIR(t, http.StatusOK, "PUT", base+"/Observation/"+o2id, o2)

	refs := []string{"Patient/" + env.patient, "Subscription/" + env.topicSub, "Subscription/" + env.classic,
		"Observation/" + env.observOne, "Observation/" + o2id}
	var seeds []seededResource
	for _, ref := range refs {
		typ, id, _ := strings.Cut(ref, "/")
		seeds = append(seeds, seededResource{typ: typ, id: id, body: settled(t, base+"/"+ref)})
	}
	if v := seeds[4].version(); v != "2" {
		t.Fatalf("the updated Observation has versionId %q, want 2", v)
	}
	for _, s := range seeds {
		t.Logf("seeded %s version %s", s.ref(), s.version())
	}
	return seeds, env
}

// settled reads a resource until two reads 200 ms apart agree (a new
// Subscription moves from requested to active after its handshake).
func settled(t *testing.T, url string) map[string]any {
	t.Helper()
	prev := mustFHIR(t, http.StatusOK, "GET", url, nil)
	for deadline := time.Now().Add(10 * time.Second); ; {
		time.Sleep(200 * time.Millisecond)
		cur := mustFHIR(t, http.StatusOK, "GET", url, nil)
		if reflect.DeepEqual(cur, prev) && cur["status"] != "requested" {
			return cur
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not settle within 10s: %v", url, cur)
		}
		prev = cur
	}
}

// storedCounts returns the number of Patients, Observations and
// Subscriptions stored.
func storedCounts(t *testing.T, base string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, typ := range []string{"Patient", "Observation", "Subscription"} {
		b := mustFHIR(t, http.StatusOK, "GET", base+"/"+typ+"?_count=1", nil)
		out[typ] = fmt.Sprint(b["total"])
	}
	return out
}

// searchTotal runs a search and returns Bundle.total.
func searchTotal(t *testing.T, url string) string {
	t.Helper()
	return fmt.Sprint(mustFHIR(t, http.StatusOK, "GET", url, nil)["total"])
}

// subscriptionBody is a topic-based Subscription on the critical-result
// topic with the given channel (payload and content added when absent).
func subscriptionBody(channel map[string]any, extra map[string]any) []byte {
	if _, ok := channel["payload"]; !ok {
		channel["payload"] = "application/fhir+json"
	}
	if _, ok := channel["_payload"]; !ok {
		channel["_payload"] = map[string]any{"extension": []any{map[string]any{
			"url":       "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content",
			"valueCode": "id-only",
		}}}
	}
	s := map[string]any{
		"resourceType": "Subscription",
		"status":       "requested",
		"reason":       "bad-input catalogue",
		"criteria":     criticalTopic,
		"channel":      channel,
	}
	for k, v := range extra {
		s[k] = v
	}
	b, _ := json.Marshal(s)
	return b
}

func restHook(endpoint string) []byte {
	return subscriptionBody(map[string]any{"type": "rest-hook", "endpoint": endpoint}, nil)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// runHTTPCase sends c's request and checks the status and the
// OperationOutcome.
func runHTTPCase(t *testing.T, base string, c badCase) {
	t.Helper()
	var body io.Reader
	if c.body != nil {
		body = bytes.NewReader(c.body)
	}
	req, err := http.NewRequest(c.method, base+c.path, body)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case c.ctype == "-":
	case c.ctype != "":
		req.Header.Set("Content-Type", c.ctype)
	case c.body != nil:
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp, err := fhirClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", c.method, c.path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != c.status {
		t.Fatalf("%s %.80s: status %d, want %d: %.400s", c.method, c.path, resp.StatusCode, c.status, raw)
	}
	if c.plain {
		return
	}
	if err := checkOutcome(raw, c.issue, c.diag); err != nil {
		t.Fatalf("%s %.80s (%d): %v: %.400s", c.method, c.path, resp.StatusCode, err, raw)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.Contains(ct, "json") {
		t.Errorf("OperationOutcome served as %q", ct)
	}
}

// checkOutcome checks that raw is an OperationOutcome with an error issue
// of code issue (when set) whose diagnostics contain diag (when set).
func checkOutcome(raw []byte, issue, diag string) error {
	var oo struct {
		ResourceType string `json:"resourceType"`
		Issue        []struct {
			Severity, Code, Diagnostics string
		} `json:"issue"`
	}
	if err := json.Unmarshal(raw, &oo); err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	if oo.ResourceType != "OperationOutcome" || len(oo.Issue) == 0 {
		return errors.New("not an OperationOutcome with an issue")
	}
	for _, is := range oo.Issue {
		if is.Severity != "error" && is.Severity != "fatal" {
			continue
		}
		if issue != "" && is.Code != issue {
			continue
		}
		if diag != "" && !strings.Contains(strings.ToLower(is.Diagnostics), strings.ToLower(diag)) {
			continue
		}
		return nil
	}
	return fmt.Errorf("no error issue with code %q and diagnostics containing %q", issue, diag)
}

// floodHTTP sends n requests over workers connections and checks every
// status.
func floodHTTP(t *testing.T, base string, n, workers int, mk func(i int) (*http.Request, int)) {
	t.Helper()
	var mu sync.Mutex
	bad := map[string]int{}
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				req, want := mk(i)
				resp, err := fhirClient.Do(req)
				var got string
				if err != nil {
					got = err.Error()
				} else {
					raw, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					switch {
					case resp.StatusCode != want:
						got = fmt.Sprintf("status %d", resp.StatusCode)
					case checkOutcome(raw, "", "") != nil:
						got = "no OperationOutcome"
					}
				}
				if got != "" {
					mu.Lock()
					bad[got]++
					mu.Unlock()
				}
			}
		}()
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	if len(bad) > 0 {
		t.Fatalf("flood of %d requests: unexpected answers %v", n, bad)
	}
	t.Logf("flood of %d broken requests answered in %v", n, time.Since(start).Round(time.Millisecond))
}

// checkStillNotifies makes a normal write after the table and sees it on
// the legacy channel and in the seeded topic subscription's events.
func checkStillNotifies(t *testing.T, env badInputEnv) {
	t.Helper()
	s, _, err := dialWS(t, env.base, "/ws")
	if err != nil {
		t.Errorf("dial /ws after the table: %v", err)
		return
	}
	sub := `{"type":"subscribe","data":{"subscription_id":"after","resource_types":["Observation"],"patient_ids":["` + env.patient + `"]}}`
	if err := s.c.WriteMessage(websocket.TextMessage, []byte(sub)); err != nil {
		t.Errorf("subscribe after the table: %v", err)
		return
	}
	if _, ok := s.waitFrame(5*time.Second, func(f string) bool { return strings.Contains(f, `"subscribed"`) }); !ok {
		t.Errorf("no subscribed frame after the table")
		return
	}
	st := mustFHIR(t, http.StatusOK, "GET", env.base+"/Subscription/"+env.topicSub+"/$status", nil)
	before := eventsSinceStart(st)
	o := mustFHIR(t, http.StatusCreated, "POST", env.base+"/Observation", criticalObservation(env.patient, "2823-3", "after-table"))
	id, _ := o["id"].(string)
	if _, ok := s.waitFrame(5*time.Second, func(f string) bool {
		return strings.Contains(f, `"update"`) && strings.Contains(f, id)
	}); !ok {
		t.Errorf("the write after the table (Observation/%s) did not reach the legacy channel", id)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		st = mustFHIR(t, http.StatusOK, "GET", env.base+"/Subscription/"+env.topicSub+"/$status", nil)
		if n := eventsSinceStart(st); n > before {
			t.Logf("write after the table notified: legacy update frame, Subscription/%s events %d → %d", env.topicSub, before, n)
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("the write after the table did not raise an event on Subscription/%s (events-since-subscription-start %d)", env.topicSub, before)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// eventsSinceStart reads events-since-subscription-start from a $status
// Bundle's first Parameters.
func eventsSinceStart(b map[string]any) int {
	for _, e := range asSlice(b["entry"]) {
		em, _ := e.(map[string]any)
		res, _ := em["resource"].(map[string]any)
		for _, p := range asSlice(res["parameter"]) {
			pm, _ := p.(map[string]any)
			if pm["name"] == "events-since-subscription-start" {
				s, _ := pm["valueString"].(string)
				n, _ := strconv.Atoi(s)
				return n
			}
		}
	}
	return -1
}
