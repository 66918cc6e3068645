package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The notification side attacked as a hostile tester would, through the
// binary as shipped (HS256 authentication, dashboard mounted, rest-hooks
// allowed to loopback): patient A, a subscriptions-only token and expired
// tokens try to obtain patient B's data through $events, $status,
// $get-ws-binding-token, R4 bind, Backport bind-with-token, and
// full-resource notifications whose topic's notificationShape pulls in
// resources A's own writes point at (DiagnosticReport.result → B's
// Observation, Observation.encounter → B's Encounter,
// Communication.recipient/sender → Patient/B). Every resource of B carries a marker string; no byte any
// attacker receives may contain it. Absence on a stream is proved by a
// later event of the same subscription (A's own write after B's), never by
// a sleep.

// notifyFixture is what the cases attack.
type notifyFixture struct {
	marker string
	public string // the base URL the server writes into references
	wsBase string
	hook   *rawHook

	admin, a, b, pract, subsOnly, expired, anon attacker

	// A's subscriptions, by topic name: rest-hook and websocket.
	hookA, wsA map[string]string
	r4A        string // A's classic websocket subscription
	// B's writes that fire A's topics (type/id).
	bWrites []string
	// A's subscriptions that name B in their criteria: "" when the server
	// refused to create them (createdB records the answer).
	namesB   map[string]string
	createdB map[string][]byte
	// Other owners' subscriptions.
	wsB, r4B, wsP, r4P, hookP string
	// A's writes (the later marker events), by topic name.
	written map[string]string
}

// notifyTopics are the built-in topics whose notificationShape includes
// something A's write can point at B's data with.
//
// The task topic is not among them: Task is outside the Patient
// compartment, so a patient token can neither write nor receive Tasks.
var notifyTopics = []string{"result-available", "critical-result", "communication"}

// bRefs are B's resources A's writes reference: no notification to an
// attacker may carry an entry or an additional-context for them.
var bRefs = []string{"Observation/obs-b", "Encounter/enc-b", "Patient/pat-b"}

func TestNotificationAttacks(t *testing.T) {
	f := setupNotifyFixture(t)
	var cases []attackCase
	cases = append(cases, f.streamCases(t)...)
	cases = append(cases, f.eventsCases()...)
	cases = append(cases, f.statusCases()...)
	cases = append(cases, f.bindingTokenCases()...)
	cases = append(cases, f.bindCases(t)...)

	passed, leaked := 0, 0
	for _, c := range cases {
		leak := bytes.Contains(c.got, []byte(f.marker))
		if leak {
			leaked++
		}
		if c.err == nil && !leak {
			passed++
		}
	}
	reportFigure(fmt.Sprintf("attacks (notify): cases=%d, passed=%d, leaked=%d", len(cases), passed, leaked))
	for _, c := range cases {
		switch {
		case bytes.Contains(c.got, []byte(f.marker)):
			t.Errorf("LEAK %s: the attacker received B's marker: %.600s", c.name, c.got)
		case c.err != nil:
			t.Errorf("%s: %v", c.name, c.err)
		}
	}
	if len(cases) < 40 || passed != len(cases) || leaked != 0 {
		t.Errorf("cases=%d passed=%d leaked=%d: want at least 40 cases, all passed, none leaked", len(cases), passed, leaked)
	}
	// The detector works: a reader allowed to see B receives the marker
	// through the same notifications.
	if err := f.hook.waitFor(f.hookP, f.marker, 30*time.Second); err != nil {
		t.Errorf("control: the practitioner's full-resource rest-hook never carried B's marker, so the leak check proves nothing: %v", err)
	}
}

// attackCase is one attack: got is every byte the attacker received, err
// says how the server's answer differed from the expected refusal or
// filtered answer.
type attackCase struct {
	name string
	got  []byte
	err  error
}

func setupNotifyFixture(t *testing.T) *notifyFixture {
	secret := strings.Repeat("notify-attack-secret-0123456789", 2)
	p := startServerProc(t, "--jwt-secret", secret)
	f := &notifyFixture{
		marker:  "LEAKMARK-B-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		public:  strings.Replace(p.base, "127.0.0.1", "localhost", 1),
		hook:    newRawHook(t),
		hookA:   map[string]string{},
		wsA:     map[string]string{},
		written: map[string]string{},
	}
	f.wsBase = "ws" + strings.TrimPrefix(f.public, "http")
	mint := func(name, scope, patient string, now time.Time, ttl time.Duration) attacker {
		tok, err := mintToken(mintOptions{Secret: []byte(secret), Scope: scope, Patient: patient,
			Subject: name, TTL: ttl, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return attacker{name: name, base: p.base, token: tok}
	}
	now := time.Now()
	f.admin = mint("admin", "system/*.cruds", "", now, time.Hour)
	f.a = mint("patient-a", "patient/*.cruds", "pat-a", now, time.Hour)
	f.b = mint("patient-b", "patient/*.cruds", "pat-b", now, time.Hour)
	f.pract = mint("practitioner", "user/*.cruds", "", now, time.Hour)
	f.subsOnly = mint("subscriptions-only", "user/Subscription.rs", "", now, time.Hour)
	f.expired = mint("expired-a", "patient/*.cruds", "pat-a", now.Add(-2*time.Hour), time.Hour)
	f.anon = attacker{name: "no-token", base: p.base}

	mk := f.marker
	f.admin.must(t, 201, "PUT", "/Patient/pat-a", map[string]any{"resourceType": "Patient", "id": "pat-a",
		"name": []any{map[string]any{"family": "Alpha"}}})
	for _, res := range []map[string]any{
		{"resourceType": "Patient", "id": "pat-b", "name": []any{map[string]any{"family": "Beta", "text": mk}}},
		{"resourceType": "Observation", "id": "obs-b", "status": "final", "code": map[string]any{"text": "potassium " + mk},
			"subject": ref("Patient/pat-b"), "note": []any{map[string]any{"text": mk}}},
		{"resourceType": "Encounter", "id": "enc-b", "status": "finished", "subject": ref("Patient/pat-b"),
			"class":      map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
			"reasonCode": []any{map[string]any{"text": mk}}},
	} {
		f.admin.must(t, 201, "PUT", "/"+res["resourceType"].(string)+"/"+res["id"].(string), res)
	}

	// Subscriptions: A's on every topic (rest-hook and websocket,
	// full-resource, no filter: A's access alone must keep B out), and
	// targets owned by B and by a practitioner.
	for _, tp := range notifyTopics {
		url := topicURL(tp)
		f.hookA[tp] = f.a.must(t, 201, "POST", "/Subscription", topicSubscription(f.hook.url, url, "full-resource"))["id"].(string)
		f.wsA[tp] = f.a.must(t, 201, "POST", "/Subscription", wsTopicSubscription(url, "full-resource"))["id"].(string)
	}
	classic := func(who attacker) string {
		return who.must(t, 201, "POST", "/Subscription", map[string]any{
			"resourceType": "Subscription", "status": "requested", "reason": "classic " + mk,
			"criteria": "Observation?code=http://loinc.org|2823-3", "channel": map[string]any{"type": "websocket"}})["id"].(string)
	}
	f.r4A, f.r4B, f.r4P = classic(f.a), classic(f.b), classic(f.pract)
	wsSub := func(who attacker) string {
		s := wsTopicSubscription(topicURL("result-available"), "full-resource")
		s["reason"] = "target " + mk
		return who.must(t, 201, "POST", "/Subscription", s)["id"].(string)
	}
	f.wsB, f.wsP = wsSub(f.b), wsSub(f.pract)
	// A names B in a topic filter and in classic criteria: refused, or
	// created and never matched by B's writes.
	f.namesB, f.createdB = map[string]string{}, map[string][]byte{}
	for name, body := range map[string]map[string]any{
		"topic filter patient=Patient/pat-b": topicSubscription(f.hook.url, topicURL("result-available"), "full-resource",
			"DiagnosticReport?patient=Patient/pat-b"),
		"classic criteria subject=Patient/pat-b": {"resourceType": "Subscription", "status": "requested", "reason": "names B",
			"criteria": "Observation?subject=Patient/pat-b", "channel": map[string]any{"type": "websocket"}},
	} {
		code, raw, err := f.a.call("POST", "/Subscription", body)
		if err != nil {
			t.Fatal(err)
		}
		f.createdB[name] = raw
		t.Logf("A creates a subscription with a %s: %d", name, code)
		if code == 201 {
			var m map[string]any
			_ = json.Unmarshal(raw, &m)
			f.namesB[name], _ = m["id"].(string)
			if name == "topic filter patient=Patient/pat-b" {
				if err := f.hook.waitFor(f.namesB[name], `"handshake"`, 30*time.Second); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	f.hookP = f.pract.must(t, 201, "POST", "/Subscription", topicSubscription(f.hook.url, topicURL("result-available"), "full-resource"))["id"].(string)
	for _, id := range append(mapValues(f.hookA), f.hookP) {
		if err := f.hook.waitFor(id, `"handshake"`, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func topicURL(name string) string { return "https://fhirsub.org/SubscriptionTopic/" + name }

func ref(r string) map[string]any { return map[string]any{"reference": r} }

func mapValues(m map[string]string) []string {
	var out []string
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}) {
		out = append(out, m[k])
	}
	return out
}

// writeB writes, as an administrator, one resource of B per topic, each
// carrying the marker: each fires a topic A subscribes to.
func (f *notifyFixture) writeB(t *testing.T) {
	mk := f.marker
	crit := criticalObservation("pat-b", "2823-3", "b-crit")
	crit["note"] = []any{map[string]any{"text": mk}}
	crit["encounter"] = ref("Encounter/enc-b")
	for _, res := range []map[string]any{
		crit,
		{"resourceType": "DiagnosticReport", "status": "final", "code": map[string]any{"text": "panel " + mk},
			"subject": ref("Patient/pat-b"), "result": []any{ref("Observation/obs-b")}, "conclusion": mk},
		{"resourceType": "Communication", "status": "completed", "subject": ref("Patient/pat-b"),
			"recipient": []any{ref("Patient/pat-b")}, "payload": []any{map[string]any{"contentString": mk}}},
	} {
		typ := res["resourceType"].(string)
		f.bWrites = append(f.bWrites, typ+"/"+f.admin.must(t, 201, "POST", "/"+typ, res)["id"].(string))
	}
}

// writeA writes, with A's own token, A's resources whose includes point at
// B's: they are the later marker events of A's subscriptions.
func (f *notifyFixture) writeA(t *testing.T) {
	crit := criticalObservation("pat-a", "2823-3", "a-crit")
	crit["encounter"] = ref("Encounter/enc-b")
	writes := map[string]map[string]any{
		"result-available": {"resourceType": "DiagnosticReport", "status": "final", "code": map[string]any{"text": "A's panel"},
			"subject": ref("Patient/pat-a"), "result": []any{ref("Observation/obs-b")}},
		"critical-result": crit,
		"communication": {"resourceType": "Communication", "status": "completed", "subject": ref("Patient/pat-a"),
			"sender": ref("Patient/pat-b"), "recipient": []any{ref("Patient/pat-b")}},
	}
	for _, tp := range notifyTopics {
		res := writes[tp]
		f.written[tp] = f.a.must(t, 201, "POST", "/"+res["resourceType"].(string), res)["id"].(string)
	}
}

// aFocus is the reference of A's write for a topic, as notifications
// carry it.
func (f *notifyFixture) aFocus(tp string) string {
	typ := map[string]string{"result-available": "DiagnosticReport", "critical-result": "Observation",
		"communication": "Communication"}[tp]
	return typ + "/" + f.written[tp]
}

func (f *notifyFixture) hookBodies(id string) []byte { return bytes.Join(f.hook.of(id), []byte("\n")) }

// additionalContext finds the additional-context references of a
// notification's status Parameters.
var additionalContext = regexp.MustCompile(`"name":\s*"additional-context",\s*"valueReference":\s*\{\s*"reference":\s*"([^"]*)"`)

// checkBundle verifies the notification or $events Bundles an attacker
// received: together they carry the focus want (when given), and none has
// an entry or an additional-context for one of B's resources (left out
// entirely, not reduced to a reference).
func checkBundle(parts [][]byte, want string) error {
	found := want == ""
	for _, part := range parts {
		var b map[string]any
		if json.Unmarshal(part, &b) != nil || b["resourceType"] != "Bundle" {
			continue
		}
		for _, e := range asSlice(b["entry"]) {
			em, _ := e.(map[string]any)
			full, _ := em["fullUrl"].(string)
			for _, r := range bRefs {
				if strings.HasSuffix(full, "/"+r) {
					return fmt.Errorf("an entry for %s", r)
				}
			}
			found = found || strings.HasSuffix(full, "/"+want)
		}
		for _, m := range additionalContext.FindAllSubmatch(part, -1) {
			for _, r := range bRefs {
				if strings.HasSuffix(string(m[1]), "/"+r) {
					return fmt.Errorf("an additional-context reference to %s", r)
				}
			}
		}
	}
	if !found {
		return fmt.Errorf("A's own %s is missing", want)
	}
	return nil
}

// streamCases binds A's websockets, lets B and then A write, and checks
// what reached A's rest-hooks, Backport sockets and R4 socket.
func (f *notifyFixture) streamCases(t *testing.T) []attackCase {
	socks := map[string]*socket{}
	for _, tp := range notifyTopics {
		tok, _, raw, code, err := f.a.bindingToken(f.wsA[tp])
		if err != nil || code != 200 {
			t.Fatalf("A's binding token for its own %s subscription: %d %s %v", tp, code, raw, err)
		}
		s, _, err := dialSocket(t, f.wsBase+"/ws/subscriptions")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.send("bind-with-token " + tok); err != nil {
			t.Fatal(err)
		}
		if _, err := s.until(15*time.Second, func(fr string) bool { return strings.Contains(fr, `"handshake"`) }); err != nil {
			t.Fatalf("A's %s binding: no handshake: %v", tp, err)
		}
		socks[tp] = s
	}
	r4, _, err := dialSocket(t, f.wsBase+"/websocket?access_token="+url.QueryEscape(f.a.token))
	if err != nil {
		t.Fatal(err)
	}
	if err := r4.send("bind " + f.r4A); err != nil {
		t.Fatal(err)
	}
	if _, err := r4.until(15*time.Second, func(fr string) bool { return fr == "bound "+f.r4A }); err != nil {
		t.Fatalf("A's R4 bind: %v", err)
	}

	f.writeB(t)
	f.writeA(t)

	var out []attackCase
	for _, tp := range notifyTopics {
		focus := f.aFocus(tp)
		s := socks[tp]
		_, err := s.until(30*time.Second, func(fr string) bool { return strings.Contains(fr, "/"+focus+`"`) })
		if err == nil {
			err = checkBundle(s.frameList(), focus)
		}
		out = append(out, attackCase{"Backport websocket, full-resource " + tp + ": B's write, then A's pointing at B", s.received(), err})
	}
	for _, tp := range notifyTopics {
		id, focus := f.hookA[tp], f.aFocus(tp)
		err := f.hook.waitFor(id, "/"+focus+`"`, 30*time.Second)
		if err == nil {
			err = checkBundle(f.hook.of(id), focus)
		}
		out = append(out, attackCase{"rest-hook, full-resource " + tp + ": B's write, then A's pointing at B", f.hookBodies(id), err})
	}
	// R4: B's critical Observation also has code 2823-3; A's write is the
	// later event. Exactly one event recorded proves B's was not.
	_, err = r4.until(30*time.Second, func(fr string) bool { return fr == "ping "+f.r4A })
	got := r4.received()
	if err == nil {
		raw, serr := f.a.expectStatus("GET", "/Subscription/"+f.r4A+"/$status", nil, 200)
		got = append(got, raw...)
		if n := eventsSince(raw); serr != nil || n != 1 {
			err = fmt.Errorf("A's classic subscription recorded %d events (%v), want 1: A's write only", n, serr)
		}
	}
	out = append(out, attackCase{"R4 websocket: B's matching write, then A's", got, err})
	return out
}

// eventsCases reads $events as each attacker.
func (f *notifyFixture) eventsCases() []attackCase {
	var out []attackCase
	for _, tp := range notifyTopics {
		for _, kind := range []struct {
			name string
			id   string
		}{{"rest-hook", f.hookA[tp]}, {"websocket", f.wsA[tp]}} {
			raw, err := f.a.expectStatus("GET", "/Subscription/"+kind.id+"/$events", nil, 200)
			if err == nil {
				err = checkBundle([][]byte{raw}, f.aFocus(tp))
			}
			out = append(out, attackCase{"$events by A on its own " + kind.name + " " + tp + " subscription", raw, err})
		}
	}
	// Subscriptions of A naming B: refused at creation, or (after the
	// stream cases' later events, so B's writes have been matched) with no
	// event and nothing of B delivered.
	for _, name := range slices.Sorted(maps.Keys(f.createdB)) {
		id, got := f.namesB[name], f.createdB[name]
		var err error
		if id != "" {
			var raw []byte
			raw, err = f.a.expectStatus("GET", "/Subscription/"+id+"/$events", nil, 200)
			got = append(append(got, raw...), f.hookBodies(id)...)
			for _, w := range f.bWrites {
				if err == nil && bytes.Contains(got, []byte("/"+w+`"`)) {
					err = fmt.Errorf("Subscription/%s notified B's %s", id, w)
				}
			}
		}
		out = append(out, attackCase{"A's subscription with a " + name, got, err})
	}
	refused := []struct {
		who  attacker
		id   string
		what string
		want []int
	}{
		{f.a, f.wsB, "B's websocket subscription", []int{403, 404}},
		{f.a, f.r4B, "B's classic subscription", []int{403, 404}},
		{f.a, f.wsP, "the practitioner's subscription", []int{403, 404}},
		{f.subsOnly, f.hookA["result-available"], "A's rest-hook subscription", []int{403, 404}},
		{f.subsOnly, f.wsB, "B's websocket subscription", []int{403, 404}},
		{f.subsOnly, f.wsP, "the practitioner's subscription", []int{403, 404}},
		{f.expired, f.hookA["result-available"], "A's rest-hook subscription", []int{401}},
		{f.anon, f.hookA["result-available"], "A's rest-hook subscription", []int{401}},
	}
	for _, r := range refused {
		raw, err := r.who.expectStatus("GET", "/Subscription/"+r.id+"/$events", nil, r.want...)
		out = append(out, attackCase{"$events by " + r.who.name + " on " + r.what, raw, err})
	}
	// Lowering the content is allowed, raising it is not possible; a
	// full-resource $events on A's own subscription from event 1.
	raw, err := f.a.expectStatus("GET", "/Subscription/"+f.hookA["communication"]+"/$events?eventsSinceNumber=1&content=full-resource", nil, 200)
	if err == nil {
		err = checkBundle([][]byte{raw}, f.aFocus("communication"))
	}
	out = append(out, attackCase{"$events by A from event 1, content=full-resource", raw, err})
	return out
}

// statusCases reads $status as each attacker.
func (f *notifyFixture) statusCases() []attackCase {
	others := []string{f.wsB, f.r4B, f.wsP, f.r4P, f.hookP}
	var out []attackCase
	raw, err := f.a.expectStatus("GET", "/Subscription/$status", nil, 200)
	if err == nil {
		err = lists(raw, others, "A's type-level $status")
	}
	out = append(out, attackCase{"$status by A, type level", raw, err})
	raw, err = f.subsOnly.expectStatus("GET", "/Subscription/$status", nil, 200)
	if err == nil {
		err = lists(raw, append(others, mapValues(f.hookA)...), "the subscriptions-only token's $status")
	}
	out = append(out, attackCase{"$status by the subscriptions-only token, type level", raw, err})
	for _, r := range []struct {
		who  attacker
		path string
		want []int
	}{
		{f.a, "/Subscription/" + f.wsB + "/$status", []int{403, 404}},
		{f.a, "/Subscription/$status?id=" + f.wsB, []int{403, 404}},
		{f.subsOnly, "/Subscription/" + f.wsB + "/$status", []int{403, 404}},
		{f.subsOnly, "/Subscription/" + f.hookA["communication"] + "/$status", []int{403, 404}},
		{f.expired, "/Subscription/$status", []int{401}},
	} {
		raw, err := r.who.expectStatus("GET", r.path, nil, r.want...)
		out = append(out, attackCase{"$status by " + r.who.name + ": " + r.path, raw, err})
	}
	return out
}

// lists fails when the answer names one of the ids.
func lists(raw []byte, ids []string, what string) error {
	for _, id := range ids {
		if bytes.Contains(raw, []byte("/Subscription/"+id+`"`)) {
			return fmt.Errorf("%s lists Subscription/%s", what, id)
		}
	}
	return nil
}

// bindingTokenCases asks $get-ws-binding-token as each attacker.
func (f *notifyFixture) bindingTokenCases() []attackCase {
	var out []attackCase
	for _, r := range []struct {
		who  attacker
		id   string
		ids  []string
		what string
		want []int
	}{
		{f.a, f.wsB, nil, "B's subscription", []int{403, 404}},
		{f.a, f.wsP, nil, "the practitioner's subscription", []int{403, 404}},
		{f.a, "", []string{f.wsA["communication"], f.wsB}, "its own and B's subscription", []int{403, 404}},
		{f.subsOnly, f.wsB, nil, "B's subscription", []int{403, 404}},
		{f.subsOnly, f.wsP, nil, "the practitioner's subscription", []int{403, 404}},
		{f.subsOnly, f.wsA["communication"], nil, "A's subscription", []int{403, 404}},
		{f.subsOnly, "", nil, "every subscription (no id)", []int{403, 404}},
		{f.expired, f.wsA["communication"], nil, "A's subscription", []int{401}},
		{f.anon, f.wsA["communication"], nil, "A's subscription", []int{401}},
	} {
		_, _, raw, code, err := r.who.bindingToken(r.id, r.ids...)
		if err == nil && !slices.Contains(r.want, code) {
			err = fmt.Errorf("status %d, want %v: %.200s", code, r.want, raw)
		}
		out = append(out, attackCase{"$get-ws-binding-token by " + r.who.name + " for " + r.what, raw, err})
	}
	_, subs, raw, code, err := f.a.bindingToken("")
	if err == nil {
		switch {
		case code != 200:
			err = fmt.Errorf("status %d, want 200 with A's own websocket subscriptions", code)
		default:
			own := append(mapValues(f.wsA), f.r4A)
			if id := f.namesB["classic criteria subject=Patient/pat-b"]; id != "" {
				own = append(own, id)
			}
			if len(subs) != len(own) || slices.ContainsFunc(subs, func(s string) bool { return !slices.Contains(own, s) }) {
				err = fmt.Errorf("the token names %v, want exactly A's websocket subscriptions %v", subs, own)
			}
		}
	}
	out = append(out, attackCase{"$get-ws-binding-token by A without ids: only A's own", raw, err})
	return out
}

// bindCases tries R4 bind and Backport bind-with-token.
func (f *notifyFixture) bindCases(t *testing.T) []attackCase {
	var out []attackCase
	r4 := func(name, query, auth, id string, want int, reason string) {
		s, resp, err := dialSocket(t, f.wsBase+"/websocket"+query)
		var got []byte
		switch {
		case want == 401:
			if err == nil || resp == nil || resp.StatusCode != 401 {
				err = fmt.Errorf("upgrade: %v %v, want 401", err, resp)
			} else {
				err = nil
			}
		case err == nil:
			if auth != "" {
				err = s.send(`{"type":"auth","data":{"token":"` + auth + `"}}`)
			}
			if err == nil {
				err = s.send("bind " + id)
			}
			if err == nil {
				err = s.closed(15*time.Second, websocket.ClosePolicyViolation, reason)
			}
			got = s.received()
		}
		out = append(out, attackCase{"R4 bind: " + name, got, err})
	}
	q := func(a attacker) string { return "?access_token=" + url.QueryEscape(a.token) }
	r4("A binds B's subscription", q(f.a), "", f.r4B, 1008, "forbidden")
	r4("A binds the practitioner's subscription", q(f.a), "", f.r4P, 1008, "forbidden")
	r4("subscriptions-only binds B's subscription", q(f.subsOnly), "", f.r4B, 1008, "forbidden")
	r4("subscriptions-only binds the practitioner's subscription", q(f.subsOnly), "", f.r4P, 1008, "forbidden")
	r4("subscriptions-only (auth message) binds A's subscription", "", f.subsOnly.token, f.r4A, 1008, "forbidden")
	r4("expired access_token", q(f.expired), "", f.r4A, 401, "")
	r4("expired token in the auth message", "", f.expired.token, f.r4A, 1008, "")
	r4("no token", "", "", f.r4B, 1008, "")

	bp := func(name, msg string) {
		s, _, err := dialSocket(t, f.wsBase+"/ws/subscriptions")
		var got []byte
		if err == nil {
			if err = s.send(msg); err == nil {
				err = s.closed(15*time.Second, websocket.ClosePolicyViolation, "")
			}
			got = s.received()
		}
		out = append(out, attackCase{"Backport bind: " + name, got, err})
	}
	tok, _, _, _, _ := f.a.bindingToken(f.wsA["result-available"])
	bp("A's token re-signed for B's subscription", "bind-with-token "+forgeSubscription(tok, f.wsA["result-available"], f.wsB))
	bp("the bearer token instead of a binding token", "bind-with-token "+f.a.token)
	bp("an expired bearer as binding token", `{"type":"bind-with-token","payload":{"token":"`+f.expired.token+`"}}`)

	// A legitimate REST read of B's resources is refused to A: the
	// decision notifications must agree with.
	for _, r := range bRefs {
		raw, err := f.a.expectStatus("GET", "/"+r, nil, 403, 404)
		out = append(out, attackCase{"REST read by A of " + r, raw, err})
	}
	return out
}

// forgeSubscription swaps a subscription id in a token's payload, keeping
// the original signature.
func forgeSubscription(tok, from, to string) string {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return tok + "x"
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return tok + "x"
	}
	parts[1] = base64.RawURLEncoding.EncodeToString(bytes.ReplaceAll(payload, []byte(from), []byte(to)))
	return strings.Join(parts, ".")
}

// TestSocketsCloseWhenTheirBearerExpires binds an R4 and a Backport socket
// with a bearer that expires ten seconds later: both close with 1008
// token-expired, and the binding token expires no later than the bearer.
func TestSocketsCloseWhenTheirBearerExpires(t *testing.T) {
	secret := strings.Repeat("notify-expiry-secret-0123456789", 2)
	p := startServerProc(t, "--jwt-secret", secret)
	wsBase := "ws" + strings.TrimPrefix(strings.Replace(p.base, "127.0.0.1", "localhost", 1), "http")
	mint := func(ttl time.Duration) (attacker, time.Time) {
		now := time.Now()
		tok, err := mintToken(mintOptions{Secret: []byte(secret), Scope: "patient/*.cruds", Patient: "pat-a",
			Subject: "patient-a", TTL: ttl, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return attacker{name: "patient-a", base: p.base, token: tok}, now.Add(ttl).Truncate(time.Second)
	}
	long, _ := mint(time.Hour)
	classicID := long.must(t, 201, "POST", "/Subscription", map[string]any{
		"resourceType": "Subscription", "status": "requested", "reason": "expiry",
		"criteria": "Observation?code=http://loinc.org|2823-3", "channel": map[string]any{"type": "websocket"}})["id"].(string)
	topicID := long.must(t, 201, "POST", "/Subscription", wsTopicSubscription(criticalTopic, "id-only"))["id"].(string)

	// Long enough for the set-up below on a loaded machine: the sockets
	// must be bound and live before the bearer expires.
	const ttl = 10 * time.Second
	short, exp := mint(ttl)
	r4, _, err := dialSocket(t, wsBase+"/websocket?access_token="+url.QueryEscape(short.token))
	if err != nil {
		t.Fatal(err)
	}
	if err := r4.send("bind " + classicID); err != nil {
		t.Fatal(err)
	}
	if _, err := r4.until(10*time.Second, func(f string) bool { return f == "bound "+classicID }); err != nil {
		t.Fatalf("R4 bind: %v", err)
	}
	tok, _, raw, code, err := short.bindingToken(topicID)
	if err != nil || code != 200 {
		t.Fatalf("binding token: %d %s %v", code, raw, err)
	}
	var params struct {
		Parameter []struct {
			Name          string `json:"name"`
			ValueDateTime string `json:"valueDateTime"`
		} `json:"parameter"`
	}
	_ = json.Unmarshal(raw, &params)
	for _, q := range params.Parameter {
		if q.Name != "expiration" {
			continue
		}
		got, err := time.Parse(time.RFC3339, q.ValueDateTime)
		t.Logf("bearer expires %s, binding token expiration %s", exp.UTC().Format(time.RFC3339), q.ValueDateTime)
		if err != nil || got.After(exp) {
			t.Errorf("binding token expiration %q (%v) outlives the bearer (%v)", q.ValueDateTime, err, exp)
		}
	}
	bp, _, err := dialSocket(t, wsBase+"/ws/subscriptions")
	if err != nil {
		t.Fatal(err)
	}
	if err := bp.send("bind-with-token " + tok); err != nil {
		t.Fatal(err)
	}
	if _, err := bp.until(10*time.Second, func(f string) bool { return strings.Contains(f, `"handshake"`) }); err != nil {
		t.Fatalf("Backport bind: %v", err)
	}
	// Both sockets are live before the bearer expires.
	long.must(t, 201, "POST", "/Observation", criticalObservation("pat-a", "2823-3", "before-expiry"))
	if _, err := r4.until(10*time.Second, func(f string) bool { return f == "ping "+classicID }); err != nil {
		t.Fatalf("R4 ping before expiry: %v", err)
	}
	if _, err := bp.until(10*time.Second, func(f string) bool { return strings.Contains(f, `"event-notification"`) }); err != nil {
		t.Fatalf("Backport event before expiry: %v", err)
	}
	for name, s := range map[string]*socket{"R4": r4, "Backport": bp} {
		err := s.closed(ttl+15*time.Second, websocket.ClosePolicyViolation, "token-expired")
		t.Logf("%s socket: closed %v after the bearer's exp (err %v)", name, time.Since(exp).Round(100*time.Millisecond), err)
		if err != nil {
			t.Errorf("%s socket: %v", name, err)
		}
	}
}
