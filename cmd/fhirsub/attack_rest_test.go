package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Strings that must never reach anyone they are not meant for. markerB is
// in patient B's resources; the others are secrets no response may carry
// to anybody (B and the admin included).
const (
	markerB      = "MARKER-B-c4f1e9"
	hookSecret   = "HOOK-SECRET-0b7d"
	hmacSecret   = "HMAC-SECRET-55aa"
	internalPage = "INTERNAL-PAGE-9e2c"
	accessExtURL = "subscription-access"
)

// restAttack is one hostile request (or scripted attempt) and what the
// server must answer.
type restAttack struct {
	name     string
	tok      string // Authorization: Bearer tok; "" sends none
	method   string
	path     string
	body     any    // JSON-encoded unless a string (sent as is)
	ctype    string // default application/fhir+json when there is a body
	want     []int
	attacker bool // the response must not carry markerB
	// check, when set, inspects the answer further.
	check func(status int, body []byte) error
	// run, when set, replaces the HTTP request (scripted attacks).
	run func() (int, []byte, error)
}

// attackServer is the binary as shipped with HS256 authentication, plus
// the tokens and the resources the attacks are about.
type attackServer struct {
	p                                             *serverProc
	admin, tokA, tokB, pract, subsOnly, subsWrite string
	expired, forged, algNone                      string
	obsA, obsB, conB, subA, subB, goneB           string
	hook                                          *secretReceiver
	maxPerOwner, readTimeout                      int
}

// TestRESTAttacks runs the REST side of the hostile table against the
// binary with authentication on: patient A (and a subscriptions-only, an
// expired, a forged and no token) attack patient B's data through read,
// vread, history, search, batch and transaction; the secrets of
// subscriptions, endpoint bodies in Subscription.error and the limits are
// probed too. After every attack /healthz must answer within 1 s.
func TestRESTAttacks(t *testing.T) {
	s := newAttackServer(t)
	attacks := s.attacks(t)
	leaked, passed := 0, 0
	var failures []string
	for _, a := range attacks {
		status, body, err := s.do(a)
		ok := err == nil
		var why []string
		if err != nil {
			why = append(why, err.Error())
		}
		if a.attacker && bytes.Contains(body, []byte(markerB)) {
			leaked++
			ok = false
			why = append(why, "patient B's marker in the answer")
		}
		for _, secret := range []string{hookSecret, hmacSecret, internalPage, accessExtURL} {
			if bytes.Contains(body, []byte(secret)) {
				leaked++
				ok = false
				why = append(why, "secret "+secret+" in the answer")
			}
		}
		if err == nil && !slices.Contains(a.want, status) {
			ok = false
			why = append(why, fmt.Sprintf("status %d, want %v", status, a.want))
		}
		if status >= 500 {
			ok = false
			why = append(why, fmt.Sprintf("server error %d", status))
		}
		if err == nil && a.check != nil {
			if cerr := a.check(status, body); cerr != nil {
				ok = false
				why = append(why, cerr.Error())
			}
		}
		if herr := s.healthy(); herr != nil {
			ok = false
			why = append(why, herr.Error())
		}
		if ok {
			passed++
		} else {
			failures = append(failures, fmt.Sprintf("%s: %s: %.300s", a.name, strings.Join(why, "; "), body))
		}
	}
	reportFigure(fmt.Sprintf("attacks (rest): cases=%d, passed=%d, leaked=%d", len(attacks), passed, leaked))
	for _, f := range failures {
		t.Error(f)
	}
	if len(attacks) < 50 {
		t.Errorf("only %d attack cases, want at least 50", len(attacks))
	}
	if leaked != 0 || passed != len(attacks) {
		t.Errorf("%d of %d attacks passed, %d leaked", passed, len(attacks), leaked)
	}
	s.checkIntact(t)
}

func newAttackServer(t *testing.T) *attackServer {
	secret := strings.Repeat("attack-table-secret!", 3)
	s := &attackServer{maxPerOwner: 4, readTimeout: 3}
	s.p = startServerProc(t, "--jwt-secret", secret, "--max-subscriptions-per-owner", fmt.Sprint(s.maxPerOwner),
		"--http-read-timeout", fmt.Sprintf("%ds", s.readTimeout))
	mint := func(scope, patient, sub string, now time.Time) string {
		tok, err := mintToken(mintOptions{Secret: []byte(secret), Scope: scope, Patient: patient,
			Subject: sub, TTL: time.Hour, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	now := time.Now()
	s.admin = mint("system/*.cruds", "", "admin", now)
	s.tokA = mint("patient/*.cruds", "pat-a", "alice", now)
	s.tokB = mint("patient/*.cruds", "pat-b", "bob", now)
	s.pract = mint("user/*.rs", "", "dr-who", now)
	s.subsOnly = mint("user/Subscription.rs", "", "subs-reader", now)
	s.subsWrite = mint("user/Subscription.cruds", "", "subs-writer", now)
	s.expired = mint("system/*.cruds", "", "admin", now.Add(-3*time.Hour))
	forged, err := mintToken(mintOptions{Secret: []byte(strings.Repeat("not-the-server-secret", 2)), Scope: "system/*.cruds",
		Subject: "mallory", TTL: time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	s.forged = forged
	s.algNone = b64(`{"alg":"none","typ":"JWT"}`) + "." + b64(`{"sub":"mallory","scope":"system/*.cruds","exp":9999999999}`) + "."
	s.hook = newSecretReceiver(t)

	mk := func(tok string, want int, method, path string, body any) map[string]any {
		t.Helper()
		code, out, err := fhirDoWith(context.Background(), method, s.p.base+path, body, http.Header{"Authorization": {"Bearer " + tok}})
		if err != nil || code != want {
			t.Fatalf("setup %s %s: %d %v (%v), want %d", method, path, code, out, err, want)
		}
		return out
	}
	mk(s.admin, 201, "PUT", "/Patient/pat-a", map[string]any{"resourceType": "Patient", "id": "pat-a", "name": []any{map[string]any{"family": "Alpha"}}})
	mk(s.admin, 201, "PUT", "/Patient/pat-b", map[string]any{"resourceType": "Patient", "id": "pat-b", "name": []any{map[string]any{"family": markerB}}})
	obs := func(patient, tag string) map[string]any {
		o := criticalObservation(patient, "2823-3", tag)
		o["note"] = []any{map[string]any{"text": tag}}
		return o
	}
	s.obsA = mk(s.tokA, 201, "POST", "/Observation", obs("pat-a", "alpha"))["id"].(string)
	s.obsB = mk(s.tokB, 201, "POST", "/Observation", obs("pat-b", markerB))["id"].(string)
	mk(s.tokB, 200, "PUT", "/Observation/"+s.obsB, withID(obs("pat-b", markerB+"-v2"), s.obsB))
	s.goneB = mk(s.tokB, 201, "POST", "/Observation", obs("pat-b", markerB+"-deleted"))["id"].(string)
	mk(s.tokB, 200, "DELETE", "/Observation/"+s.goneB, nil)
	s.conB = mk(s.admin, 201, "POST", "/Condition", map[string]any{"resourceType": "Condition",
		"subject": map[string]any{"reference": "Patient/pat-b"}, "code": map[string]any{"text": markerB}})["id"].(string)

	subB := topicSubscription(s.hook.url+"/ok", criticalTopic, "id-only")
	ch := subB["channel"].(map[string]any)
	ch["header"] = []any{"Authorization: Bearer " + hookSecret}
	ch["extension"] = []any{map[string]any{"url": "https://fhirsub.org/StructureDefinition/subscription-hmac-secret", "valueString": hmacSecret}}
	s.subB = mk(s.tokB, 201, "POST", "/Subscription", subB)["id"].(string)
	s.subA = mk(s.tokA, 201, "POST", "/Subscription", topicSubscription(s.hook.url+"/ok", criticalTopic, "id-only"))["id"].(string)
	if !s.hook.waitAuth(1, 30*time.Second) {
		t.Fatalf("B's handshake with its Authorization header did not arrive")
	}
	return s
}

func withID(m map[string]any, id string) map[string]any { m["id"] = id; return m }

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// do sends one attack and returns the status and the body.
func (s *attackServer) do(a restAttack) (int, []byte, error) {
	if a.run != nil {
		return a.run()
	}
	var rd io.Reader
	switch b := a.body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(raw)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, a.method, s.p.base+a.path, rd)
	if err != nil {
		return 0, nil, err
	}
	if a.tok != "" {
		req.Header.Set("Authorization", "Bearer "+a.tok)
	}
	if rd != nil {
		ct := a.ctype
		if ct == "" {
			ct = "application/fhir+json"
		}
		req.Header.Set("Content-Type", ct)
	}
	resp, err := fhirClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// healthy checks that /healthz answers 200 within 1 s.
func (s *attackServer) healthy() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.p.base+"/healthz", nil)
	resp, err := fhirClient.Do(req)
	if err != nil {
		return fmt.Errorf("/healthz after the attack: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/healthz after the attack: %d", resp.StatusCode)
	}
	return nil
}

// checkIntact proves that B's data survived every attack unchanged.
func (s *attackServer) checkIntact(t *testing.T) {
	hdr := http.Header{"Authorization": {"Bearer " + s.tokB}}
	for path, want := range map[string]string{
		"/Observation/" + s.obsB: "2", "/Condition/" + s.conB: "1", "/Patient/pat-b": "1",
	} {
		code, out, err := fhirDoWith(context.Background(), "GET", s.p.base+path, nil, hdr)
		meta, _ := out["meta"].(map[string]any)
		if err != nil || code != 200 || meta["versionId"] != want {
			t.Errorf("after the attacks %s: %d %v %v, want version %s", path, code, meta, err, want)
		}
	}
	if st, _ := subscriptionStatusAs(t, s.p.base, s.subB, s.tokB); st != "active" {
		t.Errorf("B's subscription after the attacks: %s, want active", st)
	}
}

func subscriptionStatusAs(t *testing.T, base, id, tok string) (string, string) {
	t.Helper()
	code, out, err := fhirDoWith(context.Background(), "GET", base+"/Subscription/"+id, nil, http.Header{"Authorization": {"Bearer " + tok}})
	if err != nil || code != 200 {
		t.Fatalf("GET Subscription/%s: %d %v", id, code, err)
	}
	st, _ := out["status"].(string)
	e, _ := out["error"].(string)
	return st, e
}

// secretReceiver is a rest-hook endpoint that records the Authorization
// header of each request to /ok and answers /fail with a 500 whose body
// is an "internal page".
type secretReceiver struct {
	url  string
	mu   sync.Mutex
	auth []string
}

func newSecretReceiver(t *testing.T) *secretReceiver {
	r := &secretReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		if strings.HasPrefix(req.URL.Path, "/fail") {
			w.Header().Set("Location", "http://10.0.0.1/"+internalPage)
			http.Error(w, "<html>"+internalPage+" admin console</html>", http.StatusInternalServerError)
			return
		}
		r.mu.Lock()
		if a := req.Header.Get("Authorization"); a != "" {
			r.auth = append(r.auth, a)
		}
		r.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r
}

// count returns how many requests carried "Bearer hookSecret" so far.
func (r *secretReceiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, a := range r.auth {
		if a == "Bearer "+hookSecret {
			n++
		}
	}
	return n
}

// waitAuth waits until n requests carried "Bearer hookSecret".
func (r *secretReceiver) waitAuth(n int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if r.count() >= n {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// entryStatuses returns the response.status of each entry of a
// batch-response or transaction-response Bundle.
func entryStatuses(body []byte) ([]string, error) {
	var b struct {
		Type  string
		Entry []struct {
			Response struct{ Status string }
		}
	}
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, fmt.Errorf("not a Bundle: %v", err)
	}
	var out []string
	for _, e := range b.Entry {
		out = append(out, e.Response.Status)
	}
	return out, nil
}

// wantEntries checks a bundle answer's entry statuses by their code.
func wantEntries(codes ...string) func(int, []byte) error {
	return func(_ int, body []byte) error {
		got, err := entryStatuses(body)
		if err != nil {
			return err
		}
		if len(got) != len(codes) {
			return fmt.Errorf("entries %v, want %v", got, codes)
		}
		for i, c := range codes {
			if !strings.HasPrefix(got[i], c) {
				return fmt.Errorf("entries %v, want %v", got, codes)
			}
		}
		return nil
	}
}

// total0 checks a searchset (or a batch entry's searchset) is empty.
func total0(_ int, body []byte) error {
	if !bytes.Contains(body, []byte(`"total":0`)) {
		return fmt.Errorf("want an empty searchset")
	}
	return nil
}

func bundle(typ string, entries ...map[string]any) map[string]any {
	es := make([]any, len(entries))
	for i, e := range entries {
		es[i] = e
	}
	return map[string]any{"resourceType": "Bundle", "type": typ, "entry": es}
}

func entry(method, url string, res map[string]any) map[string]any {
	e := map[string]any{"request": map[string]any{"method": method, "url": url}}
	if res != nil {
		e["resource"] = res
	}
	return e
}

// wsNeverBinds dials /ws/subscriptions, sends nothing and reports how the
// server ended the connection (an error when it did not within 30 s).
func (s *attackServer) wsNeverBinds() (int, []byte, error) {
	u := "ws" + strings.TrimPrefix(s.p.base, "http") + "/ws/subscriptions"
	c, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		return 0, nil, err
	}
	defer c.Close()
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if ok := asClose(err, &ce); ok && ce.Code == websocket.ClosePolicyViolation {
				return 200, []byte(fmt.Sprintf("closed %d %s after %v", ce.Code, ce.Text, time.Since(start).Round(time.Second))), nil
			}
			return 0, nil, fmt.Errorf("unbound connection: %v after %v, want close 1008", err, time.Since(start))
		}
	}
}

func asClose(err error, ce **websocket.CloseError) bool {
	e, ok := err.(*websocket.CloseError)
	*ce = e
	return ok
}

// drip sends a create whose body arrives one byte every 2 s; the server
// must end the request within its read timeout (plus slack) with a 408
// OperationOutcome, never wait for the whole body.
func (s *attackServer) drip() (int, []byte, error) {
	conn, err := net.Dial("tcp", s.p.addr)
	if err != nil {
		return 0, nil, err
	}
	defer conn.Close()
	body := `{"resourceType":"Patient","name":[{"family":"drip"}]}`
	fmt.Fprintf(conn, "POST /Patient HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/fhir+json\r\nContent-Length: %d\r\n\r\n",
		s.p.addr, s.tokA, len(body))
	start := time.Now()
	done := make(chan []byte, 1)
	go func() {
		raw, _ := io.ReadAll(conn)
		done <- raw
	}()
	limit := time.Duration(s.readTimeout)*time.Second + 10*time.Second
	for i := 0; ; i++ {
		select {
		case raw := <-done:
			took := time.Since(start)
			if took > limit {
				return 0, raw, fmt.Errorf("drip ended after %v, want within %v", took, limit)
			}
			if len(raw) == 0 {
				return 0, nil, fmt.Errorf("connection closed after %v without an answer, want a 408 OperationOutcome", took)
			}
			resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
			if err != nil {
				return 0, raw, err
			}
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, b, nil
		case <-time.After(2 * time.Second):
			if time.Since(start) > limit {
				return 0, nil, fmt.Errorf("the dripping body was still being read after %v", time.Since(start))
			}
			if i < len(body) {
				_, _ = conn.Write([]byte{body[i]})
			}
		}
	}
}

// quota creates subscriptions as patient A until the server refuses; it
// returns the refusal, which must come at maxPerOwner (A holds one).
func (s *attackServer) quota() (int, []byte, error) {
	hdr := http.Header{"Authorization": {"Bearer " + s.tokA}}
	for i := 1; i <= s.maxPerOwner+1; i++ {
		code, out, err := fhirDoWith(context.Background(), "POST", s.p.base+"/Subscription",
			topicSubscription(s.hook.url+"/ok", criticalTopic, "id-only"), hdr)
		if err != nil {
			return 0, nil, err
		}
		if code != 201 {
			raw, _ := json.Marshal(out)
			if i+1 != s.maxPerOwner+1 { // A already held one
				return code, raw, fmt.Errorf("refused at A's subscription %d, want at %d", i+1, s.maxPerOwner+1)
			}
			return code, raw, nil
		}
	}
	return 201, nil, fmt.Errorf("no refusal past %d subscriptions", s.maxPerOwner)
}

// errorEcho creates B's subscription to endpoint, waits for status error
// and returns its Subscription and $status; Subscription.error must
// contain want and none of the details the endpoint or the network gave
// (the answer's body is also checked for the internal page by the table).
func (s *attackServer) errorEcho(endpoint, want string, details ...string) func() (int, []byte, error) {
	return func() (int, []byte, error) {
		hdr := http.Header{"Authorization": {"Bearer " + s.tokB}}
		code, out, err := fhirDoWith(context.Background(), "POST", s.p.base+"/Subscription",
			topicSubscription(endpoint, criticalTopic, "id-only"), hdr)
		if err != nil || code != 201 {
			return code, nil, fmt.Errorf("create: %d %v", code, err)
		}
		id := out["id"].(string)
		// B's own subscription is deleted after, so that B's quota stays clear.
		defer func() { _, _, _ = fhirDoWith(context.Background(), "DELETE", s.p.base+"/Subscription/"+id, nil, hdr) }()
		deadline := time.Now().Add(60 * time.Second)
		for {
			code, out, err = fhirDoWith(context.Background(), "GET", s.p.base+"/Subscription/"+id, nil, hdr)
			if err != nil {
				return code, nil, err
			}
			if out["status"] == "error" {
				break
			}
			if time.Now().After(deadline) {
				return code, nil, fmt.Errorf("status %v after 60 s, want error", out["status"])
			}
			time.Sleep(50 * time.Millisecond)
		}
		sub, _ := json.Marshal(out)
		_, st, err := fhirDoWith(context.Background(), "GET", s.p.base+"/Subscription/"+id+"/$status", nil, hdr)
		both := append(sub, mustMarshal(st)...)
		msg, _ := out["error"].(string)
		if !strings.Contains(msg, want) {
			return 200, both, fmt.Errorf("Subscription.error %q does not say %q", msg, want)
		}
		for _, d := range details {
			if bytes.Contains(both, []byte(d)) {
				return 200, both, fmt.Errorf("Subscription.error or $status shows %q", d)
			}
		}
		return 200, both, err
	}
}

func mustMarshal(v any) []byte { b, _ := json.Marshal(v); return b }

// legacyMasked watches Subscription changes on the legacy /ws channel
// with the admin's and with A's token while B updates its subscription
// and then A writes an Observation (the later marker): the admin sees B's
// change with the secrets masked, A sees its Observation and, before it,
// nothing of B's subscription.
func (s *attackServer) legacyMasked() (int, []byte, error) {
	admin, err := s.legacyWatcher(s.admin, "Subscription")
	if err != nil {
		return 0, nil, err
	}
	defer admin.c.Close()
	a, err := s.legacyWatcher(s.tokA, "Subscription", "Observation")
	if err != nil {
		return 0, nil, err
	}
	defer a.c.Close()
	update := func(tok, id, reason string) error {
		hdr := http.Header{"Authorization": {"Bearer " + tok}}
		_, out, err := fhirDoWith(context.Background(), "GET", s.p.base+"/Subscription/"+id, nil, hdr)
		if err != nil {
			return err
		}
		out["reason"] = reason
		if code, _, err := fhirDoWith(context.Background(), "PUT", s.p.base+"/Subscription/"+id, out, hdr); err != nil || code != 200 {
			return fmt.Errorf("update of Subscription/%s: %d %v", id, code, err)
		}
		return nil
	}
	if err := update(s.tokB, s.subB, "B watched on the legacy channel"); err != nil {
		return 0, nil, err
	}
	marker := map[string]any{"resourceType": "Observation", "status": "final", "code": map[string]any{"text": "marker"},
		"subject": map[string]any{"reference": "Patient/pat-a"}, "note": []any{map[string]any{"text": "A watched on the legacy channel"}}}
	if code, _, err := fhirDoWith(context.Background(), "POST", s.p.base+"/Observation", marker,
		http.Header{"Authorization": {"Bearer " + s.tokA}}); err != nil || code != 201 {
		return code, nil, fmt.Errorf("A's marker Observation: %d %v", code, err)
	}
	errAdmin := admin.until("B watched on the legacy channel")
	errA := a.until("A watched on the legacy channel")
	frames := append(admin.frames, a.frames...)
	switch {
	case errAdmin != nil:
		return 0, frames, errAdmin
	case errA != nil:
		return 0, frames, errA
	case !bytes.Contains(admin.frames, []byte(`Authorization: ***`)):
		return 0, frames, fmt.Errorf("the legacy update does not show the header masked")
	case bytes.Contains(a.frames, []byte(s.subB)):
		return 0, frames, fmt.Errorf("A's legacy connection received B's subscription")
	}
	return 200, frames, nil
}

// legacyConn is a legacy /ws connection subscribed to some resource
// types, with the frames it received.
type legacyConn struct {
	c      *websocket.Conn
	frames []byte
}

func (s *attackServer) legacyWatcher(tok string, types ...string) (*legacyConn, error) {
	u := "ws" + strings.TrimPrefix(s.p.base, "http") + "/ws?access_token=" + url.QueryEscape(tok)
	c, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		return nil, err
	}
	l := &legacyConn{c: c}
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	sub := mustMarshal(map[string]any{"type": "subscribe", "data": map[string]any{"subscription_id": "subs", "resource_types": types}})
	if err := c.WriteMessage(websocket.TextMessage, sub); err != nil {
		c.Close()
		return nil, err
	}
	if err := l.until(`"subscribed"`); err != nil {
		c.Close()
		return nil, err
	}
	return l, nil
}

// until reads frames until one contains text.
func (l *legacyConn) until(text string) error {
	for {
		_, f, err := l.c.ReadMessage()
		if err != nil {
			return fmt.Errorf("legacy frames until %q: %v", text, err)
		}
		l.frames = append(append(l.frames, f...), '\n')
		if bytes.Contains(f, []byte(text)) {
			return nil
		}
	}
}

// secretKept sends B's subscription back as read (masked) and proves the
// stored header survived: the new handshake carries the real value.
func (s *attackServer) secretKept() (int, []byte, error) {
	hdr := http.Header{"Authorization": {"Bearer " + s.tokB}}
	_, out, err := fhirDoWith(context.Background(), "GET", s.p.base+"/Subscription/"+s.subB, nil, hdr)
	if err != nil {
		return 0, nil, err
	}
	out["status"] = "requested"
	out["reason"] = "edited by its owner"
	before := s.hook.count()
	code, res, err := fhirDoWith(context.Background(), "PUT", s.p.base+"/Subscription/"+s.subB, out, hdr)
	raw, _ := json.Marshal(res)
	if err != nil || code != 200 {
		return code, raw, err
	}
	if !s.hook.waitAuth(before+1, 30*time.Second) {
		return code, raw, fmt.Errorf("no handshake with the stored Authorization header after the masked update")
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if _, out, err = fhirDoWith(context.Background(), "GET", s.p.base+"/Subscription/"+s.subB, nil, hdr); err == nil && out["status"] == "active" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return code, raw, nil
}

func repeatParam(name string, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte('&')
		}
		fmt.Fprintf(&b, "%s=x%d", name, i)
	}
	return b.String()
}

func orValues(n int) string {
	vs := make([]string, n)
	for i := range vs {
		vs[i] = fmt.Sprintf("http://loinc.org|%d-0", i)
	}
	return url.QueryEscape(strings.Join(vs, ","))
}
