package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
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
	body     any      // JSON-encoded unless a string (sent as is)
	ctype    string   // default application/fhir+json when there is a body
	headers  []string // more request headers: name, value, name, value…
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
	s.runTable(t, "rest", s.attacks(t), 50)
}

// runTable sends every attack of a table, as the attacker or control token
// of each, and judges the answers alike for every table: no byte of
// patient B's resources to an attacker, no secret to anybody, the expected
// status, no 5xx, the case's own check, and /healthz within 1 s after it.
// It prints "attacks (label): cases=N, passed=N, leaked=N" before deciding,
// wants at least min cases, and checks at the end that B's data is intact.
func (s *attackServer) runTable(t *testing.T, label string, attacks []restAttack, min int) {
	t.Helper()
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
	reportFigure(fmt.Sprintf("attacks (%s): cases=%d, passed=%d, leaked=%d", label, len(attacks), passed, leaked))
	for _, f := range failures {
		t.Error(f)
	}
	if len(attacks) < min {
		t.Errorf("only %d attack cases, want at least %d", len(attacks), min)
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

func withSubject(m map[string]any, ref string) map[string]any {
	m["subject"] = map[string]any{"reference": ref}
	return m
}

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
	for i := 0; i+1 < len(a.headers); i += 2 {
		req.Header.Set(a.headers[i], a.headers[i+1])
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
