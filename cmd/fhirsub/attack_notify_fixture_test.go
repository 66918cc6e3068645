package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

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
