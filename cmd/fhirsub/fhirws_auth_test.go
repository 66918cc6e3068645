package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestWebsocketAuthorizationThroughTheServer runs the server with HS256
// authentication and proves, on each websocket protocol, that patient A's
// token never receives patient B's data: notifications are filtered by
// the token's compartment, binding another patient's subscription and
// naming another patient are refused.
func TestWebsocketAuthorizationThroughTheServer(t *testing.T) {
	secret := strings.Repeat("s3cret-for-the-websocket-tests!", 2)
	p := startServerProc(t, "--jwt-secret", secret)
	public := strings.Replace(p.base, "127.0.0.1", "localhost", 1)
	wsBase := "ws" + strings.TrimPrefix(public, "http")
	mint := func(scope, patient string) string {
		tok, err := mintToken(mintOptions{Secret: []byte(secret), Scope: scope, Patient: patient,
			Subject: "user-" + patient, TTL: time.Hour, Now: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	admin, tokA, tokB := mint("system/*.cruds", ""), mint("patient/*.cruds", "pat-a"), mint("patient/*.cruds", "pat-b")
	do := func(want int, tok, method, path string, body any) map[string]any {
		t.Helper()
		code, res, err := fhirDoWith(context.Background(), method, p.base+path, body, http.Header{"Authorization": {"Bearer " + tok}})
		if err != nil || code != want {
			t.Fatalf("%s %s: %d %v (%v), want %d", method, path, code, res, err, want)
		}
		return res
	}
	// writeBoth writes a critical Observation for B, then one for A, as
	// admin, and returns their ids.
	n := 0
	writeBoth := func() (idB, idA string) {
		t.Helper()
		n++
		idB = do(201, admin, "POST", "/Observation", criticalObservation("pat-b", "2823-3", "b-"+strings.Repeat("x", n)))["id"].(string)
		idA = do(201, admin, "POST", "/Observation", criticalObservation("pat-a", "2823-3", "a-"+strings.Repeat("x", n)))["id"].(string)
		return idB, idA
	}
	do(201, admin, "PUT", "/Patient/pat-a", map[string]any{"resourceType": "Patient", "id": "pat-a"})
	do(201, admin, "PUT", "/Patient/pat-b", map[string]any{"resourceType": "Patient", "id": "pat-b"})
	classic := func(tok string) string {
		return do(201, tok, "POST", "/Subscription", map[string]any{
			"resourceType": "Subscription", "status": "requested", "reason": "auth e2e",
			"criteria": "Observation?code=http://loinc.org|2823-3", "channel": map[string]any{"type": "websocket"}})["id"].(string)
	}

	t.Run("R4", func(t *testing.T) {
		subA, subB := classic(tokA), classic(tokB)
		none := dialFHIRWS(t, wsBase+"/websocket")
		none.send("bind " + subA)
		none.closedWith(websocket.ClosePolicyViolation)

		steal := dialFHIRWS(t, wsBase+"/websocket?access_token="+url.QueryEscape(tokA))
		steal.send("bind " + subB)
		steal.closedWith(websocket.ClosePolicyViolation)

		ws := dialFHIRWS(t, wsBase+"/websocket?access_token="+url.QueryEscape(tokA))
		ws.send("bind " + subA)
		if f := ws.mustNext(); f != "bound "+subA {
			t.Fatalf("bind: %q", f)
		}
		writeBoth()
		if f := ws.mustNext(); f != "ping "+subA {
			t.Fatalf("want one ping for A's write, got %q", f)
		}
		// B's write came first: had it reached A's subscription, its ping
		// would come before the marker's, and the count would say 3.
		do(201, admin, "POST", "/Observation", criticalObservation("pat-a", "2823-3", "a-marker"))
		if f := ws.mustNext(); f != "ping "+subA {
			t.Fatalf("want the marker's ping, got %q", f)
		}
		raw, err := json.Marshal(do(200, tokA, "GET", "/Subscription/"+subA+"/$status", nil))
		if err != nil {
			t.Fatal(err)
		}
		if n := eventsSince(raw); n != 2 {
			t.Fatalf("A's subscription counts %d events after 2 pings (A's write, the marker): B's write reached it", n)
		}
	})

	t.Run("Backport", func(t *testing.T) {
		subA := do(201, tokA, "POST", "/Subscription", wsTopicSubscription(criticalTopic, "full-resource"))["id"].(string)
		subB := do(201, tokB, "POST", "/Subscription", wsTopicSubscription(criticalTopic, "full-resource"))["id"].(string)
		if _, _, status := bindingToken(t, p.base, subB, "Bearer "+tokA); status != http.StatusForbidden && status != http.StatusNotFound {
			t.Errorf("A's $get-ws-binding-token for B's subscription: %d, want 403 or 404", status)
		}
		if _, _, status := bindingToken(t, p.base, subA, ""); status != http.StatusUnauthorized {
			t.Errorf("$get-ws-binding-token without a token: %d, want 401", status)
		}
		token, wsURL, _ := bindingToken(t, p.base, subA, "Bearer "+tokA)
		ws := dialFHIRWS(t, wsURL)
		ws.send("bind-with-token " + token)
		if n := ws.notification(); n.Type != "handshake" || n.Subscription != subA {
			t.Fatalf("first frame: %+v", n)
		}
		idB, idA := writeBoth()
		f := ws.mustNext()
		if strings.Contains(f, idB) || strings.Contains(f, "pat-b") {
			t.Fatalf("A's binding received B's data: %.400s", f)
		}
		if !strings.Contains(f, idA) {
			t.Fatalf("first event is not A's Observation %s: %.400s", idA, f)
		}
	})

	t.Run("legacy", func(t *testing.T) {
		ws := dialFHIRWS(t, wsBase+"/ws?access_token="+url.QueryEscape(tokA))
		ws.send(`{"type":"subscribe","data":{"subscription_id":"b","resource_types":["*"],"patient_ids":["pat-b"]}}`)
		if f := ws.mustNext(); !isErrorFrame(f, "forbidden") {
			t.Fatalf("subscribe to patient B with A's token: %q, want a forbidden error frame", f)
		}
		ws.send(`{"type":"subscribe","data":{"subscription_id":"all","resource_types":["Observation"],"patient_ids":[]}}`)
		if f := ws.mustNext(); !strings.Contains(f, `"subscribed"`) {
			t.Fatalf("subscribe: %q", f)
		}
		idB, idA := writeBoth()
		for {
			f := ws.mustNext()
			if strings.Contains(f, idB) || strings.Contains(f, "pat-b") {
				t.Fatalf("A's legacy connection received B's data: %.400s", f)
			}
			if strings.Contains(f, `"update"`) && strings.Contains(f, idA) {
				break
			}
		}
		if _, resp, err := websocket.DefaultDialer.Dial(wsBase+"/ws?access_token=forged", nil); err == nil ||
			resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("forged access_token on /ws: %v %v, want 401 at the upgrade", err, resp)
		}
	})
}
