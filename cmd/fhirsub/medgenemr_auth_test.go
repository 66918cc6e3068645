package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestMedGenEMRAuthThroughTheBinary runs the binary with HS256
// authentication and connects as the original client does: the JWT as
// ?token= or in a first {"type":"authenticate","token":…} message. A
// patient-scoped token sees only its patient's data; a bad token is
// closed with 4001 "Unauthorized"; the socket closes when the token
// expires.
func TestMedGenEMRAuthThroughTheBinary(t *testing.T) {
	secret := strings.Repeat("s3cret-for-the-medgenemr-tests!", 2)
	p := startServerProc(t, "--jwt-secret", secret)
	wsURL := "ws" + strings.TrimPrefix(p.base, "http") + "/api/ws"
	mint := func(scope, patient string, ttl time.Duration) string {
		tok, err := mintToken(mintOptions{Secret: []byte(secret), Scope: scope, Patient: patient,
			Subject: "user-" + patient, TTL: ttl, Now: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	admin, tokA := mint("system/*.cruds", "", time.Hour), mint("patient/*.cruds", "pat-a", time.Hour)
	do := func(want int, method, path string, body any) map[string]any {
		t.Helper()
		code, res, err := fhirDoWith(context.Background(), method, p.base+path, body, http.Header{"Authorization": {"Bearer " + admin}})
		if err != nil || code != want {
			t.Fatalf("%s %s: %d %v (%v), want %d", method, path, code, res, err, want)
		}
		return res
	}
	do(201, "PUT", "/Patient/pat-a", map[string]any{"resourceType": "Patient", "id": "pat-a"})
	do(201, "PUT", "/Patient/pat-b", map[string]any{"resourceType": "Patient", "id": "pat-b"})
	// onlyA subscribes to everything the token may see, writes a critical
	// result for B then one for A, and checks that the first update is A's
	// and nothing of B's arrived.
	n := 0
	onlyA := func(c *origClient, name string) {
		t.Helper()
		c.subscribe(name, []string{}, []string{})
		c.ack("created", name)
		n++
		idB := do(201, "POST", "/Observation", criticalObservation("pat-b", "2823-3", "b-"+name))["id"].(string)
		idA := do(201, "POST", "/Observation", criticalObservation("pat-a", "2823-3", "a-"+name))["id"].(string)
		m := c.plainUpdate()
		if strings.Contains(m.Text, idB) || strings.Contains(m.Text, "pat-b") || m.Data["resource_id"] != idA {
			t.Fatalf("%s: first update %s, want A's %s (B's is %s)", name, m.Text, idA, idB)
		}
		if ce := c.update(); ce.Data["action"] != "clinical_event" || ce.Data["resource_id"] != idA {
			t.Fatalf("%s: want A's clinical event next, got %s", name, ce.Text)
		}
	}
	checkUser := func(user any) {
		t.Helper()
		claims, _ := user.(map[string]any)
		if claims["sub"] != "user-pat-a" || claims["patient"] != "pat-a" {
			t.Errorf("welcome user: %v, want the token's claims", user)
		}
	}

	t.Run("token query parameter", func(t *testing.T) {
		c := dialOriginal(t, wsURL+"?token="+url.QueryEscape(tokA))
		id, user := c.welcome(false)
		checkUser(user)
		// The reconnect path authenticates the same way.
		again := dialOriginal(t, wsURL+"/"+id+"?token="+url.QueryEscape(tokA))
		if got, user := again.welcome(true); got != id {
			t.Errorf("welcome on /api/ws/%s: client_id %s", id, got)
		} else {
			checkUser(user)
		}
		if ce := dialOriginal(t, wsURL+"/"+id+"?token=forged").closed(); ce.Code != 4001 {
			t.Errorf("forged token on /api/ws/{client_id}: close %d, want 4001", ce.Code)
		}
		// B's patient is outside the token: refused with an error frame.
		c.subscribe("b", nil, []string{"pat-b"})
		if m, err := c.read(10 * time.Second); err != nil || m.Type != "error" || m.Data["code"] != "forbidden" {
			t.Fatalf("subscribe to B with A's token: %s %v, want a forbidden error", m.Text, err)
		}
		onlyA(c, "query")
	})
	t.Run("authenticate message", func(t *testing.T) {
		c := dialOriginal(t, wsURL)
		c.send(map[string]any{"type": "authenticate", "token": tokA})
		_, user := c.welcome(false)
		checkUser(user)
		onlyA(c, "message")
	})
	t.Run("bad tokens close 4001", func(t *testing.T) {
		for name, open := range map[string]func() *origClient{
			"forged ?token=": func() *origClient { return dialOriginal(t, wsURL+"?token=forged") },
			"forged authenticate": func() *origClient {
				c := dialOriginal(t, wsURL)
				c.send(`{"type":"authenticate","token":"forged"}`)
				return c
			},
			"no token": func() *origClient {
				c := dialOriginal(t, wsURL)
				c.subscribe("s", nil, nil)
				return c
			},
		} {
			ce := open().closed()
			t.Logf("%s: close %d %q", name, ce.Code, ce.Text)
			if ce.Code != 4001 || ce.Text != "Unauthorized" {
				t.Errorf("%s: close %d %q, want 4001 Unauthorized", name, ce.Code, ce.Text)
			}
		}
	})
	t.Run("expired token closes the socket", func(t *testing.T) {
		c := dialOriginal(t, wsURL+"?token="+url.QueryEscape(mint("patient/*.cruds", "pat-a", 2*time.Second)))
		c.welcome(false)
		start := time.Now()
		ce := c.closed()
		t.Logf("closed %d %q %v after the welcome", ce.Code, ce.Text, time.Since(start).Round(100*time.Millisecond))
		if ce.Code != websocket.ClosePolicyViolation {
			t.Errorf("close at expiry: %d %q, want 1008", ce.Code, ce.Text)
		}
	})
	t.Run("reconnect at expiry loses nothing", func(t *testing.T) {
		// Writes go on while the token expires; the client reconnects at
		// once with a fresh token and re-subscribes, as the original does.
		c := dialOriginal(t, wsURL+"?token="+url.QueryEscape(mint("patient/*.cruds", "pat-a", 2*time.Second)))
		c.welcome(false)
		c.subscribe("sub_exp", []string{"Observation"}, nil)
		c.ack("created", "sub_exp")
		stop := make(chan struct{})
		written := make(chan []string, 1)
		go func() {
			var ids []string
			defer func() { written <- ids }()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				code, res, err := fhirDoWith(context.Background(), "POST", p.base+"/Observation", observation("pat-a", "exp"),
					http.Header{"Authorization": {"Bearer " + admin}})
				if err != nil || code != 201 {
					t.Errorf("write %d: %d %v", i, code, err)
					return
				}
				ids = append(ids, res["id"].(string))
			}
		}()
		var got []string
		collect := func(m origMsg) {
			if m.Type == "update" && m.Data["action"] == "created" {
				got = append(got, m.Data["resource_id"].(string))
			}
		}
		for {
			m, err := c.read(15 * time.Second)
			if err != nil {
				break // closed at expiry
			}
			collect(m)
		}
		before := len(got)
		c = dialOriginal(t, wsURL+"?token="+url.QueryEscape(tokA))
		c.welcome(false)
		c.subscribe("sub_exp", []string{"Observation"}, nil)
		for len(got) < before+10 { // some replayed, then live ones
			collect(c.next())
		}
		close(stop)
		ids := <-written
		marker := do(201, "POST", "/Observation", observation("pat-a", "exp-marker"))["id"].(string)
		for len(got) == 0 || got[len(got)-1] != marker {
			collect(c.next())
		}
		got = got[:len(got)-1]
		t.Logf("token expiry and reconnect: %d writes, %d updates received (%d before the close)", len(ids), len(got), before)
		if fmt.Sprint(got) != fmt.Sprint(ids) {
			t.Errorf("received %v\nwritten %v", got, ids)
		}
	})
	t.Run("extended dialect takes ?token= too", func(t *testing.T) {
		ws := dialFHIRWS(t, strings.Replace(wsURL, "/api/ws", "/ws", 1)+"?token="+url.QueryEscape(tokA))
		ws.send(`{"type":"subscribe","data":{"subscription_id":"x","resource_types":[]}}`)
		if f := ws.mustNext(); !strings.Contains(f, `"subscribed"`) {
			t.Fatalf("subscribe on /ws with ?token=: %s", f)
		}
	})
}
