package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"maps"
	"net/url"
	"slices"
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
// Communication.recipient/sender → Patient/B). Every resource of B
// carries a marker string; no byte any attacker receives may contain it.
// Absence on a stream is proved by a later event of the same subscription
// (A's own write after B's), never by a sleep. The fixture is in
// attack_notify_fixture_test.go, the attacker's helpers in
// attack_notify_helpers_test.go.
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
