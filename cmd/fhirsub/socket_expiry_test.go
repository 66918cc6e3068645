package main

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

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
