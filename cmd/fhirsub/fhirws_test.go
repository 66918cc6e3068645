package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The two FHIR websocket protocols end to end, through the server binary:
// R4 classic bind/bound/ping on /websocket and the Backport
// bind-with-token protocol on the URL $get-ws-binding-token returns, with
// real dials and writes over REST.

// wsClient is one real websocket connection with read deadlines.
type wsClient struct {
	t *testing.T
	c *websocket.Conn
}

func dialFHIRWS(t *testing.T, url string) *wsClient {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v (%v)", url, err, resp)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &wsClient{t: t, c: c}
}

func (w *wsClient) send(s string) {
	w.t.Helper()
	if err := w.c.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		w.t.Fatalf("send %q: %v", s, err)
	}
}

// next returns the next text frame, or the error that ended the
// connection (a *websocket.CloseError for a close frame).
func (w *wsClient) next(timeout time.Duration) (string, error) {
	_ = w.c.SetReadDeadline(time.Now().Add(timeout))
	_, b, err := w.c.ReadMessage()
	return string(b), err
}

func (w *wsClient) mustNext() string {
	w.t.Helper()
	f, err := w.next(10 * time.Second)
	if err != nil {
		w.t.Fatalf("read: %v", err)
	}
	return f
}

// notification decodes the next frame as a notification Bundle.
func (w *wsClient) notification() notification {
	w.t.Helper()
	f := w.mustNext()
	var b map[string]any
	if err := json.Unmarshal([]byte(f), &b); err != nil {
		w.t.Fatalf("frame is not JSON: %.300s", f)
	}
	n, err := parseNotification(b)
	if err != nil {
		w.t.Fatalf("frame is not a notification Bundle (%v): %.300s", err, f)
	}
	return n
}

// closedWith reads until the connection closes and checks the close code.
// Frames before the close are returned.
func (w *wsClient) closedWith(code int) []string {
	w.t.Helper()
	var frames []string
	for {
		f, err := w.next(10 * time.Second)
		if err == nil {
			frames = append(frames, f)
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			w.t.Fatalf("connection ended with %v, want close %d (frames %q)", err, code, frames)
		}
		if ce.Code != code {
			w.t.Fatalf("close %d %q, want %d (frames %q)", ce.Code, ce.Text, code, frames)
		}
		return frames
	}
}

// wsTopicSubscription is a Backport topic subscription on the websocket
// channel.
func wsTopicSubscription(topic, content string, filters ...string) map[string]any {
	s := topicSubscription("", topic, content, filters...)
	ch := s["channel"].(map[string]any)
	ch["type"] = "websocket"
	delete(ch, "endpoint")
	return s
}

// bindingToken calls $get-ws-binding-token for id with the given
// Authorization header ("" for none) and returns the token and the
// websocket-url, or the HTTP status when it is not 200.
func bindingToken(t *testing.T, base, id, auth string) (token, url string, status int) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/Subscription/"+id+"/$get-ws-binding-token", nil)
	req.Header.Set("Accept", "application/fhir+json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := fhirClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", "", resp.StatusCode
	}
	var p struct {
		ResourceType string `json:"resourceType"`
		Parameter    []struct {
			Name        string `json:"name"`
			ValueString string `json:"valueString"`
			ValueURL    string `json:"valueUrl"`
		} `json:"parameter"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil || p.ResourceType != "Parameters" {
		t.Fatalf("$get-ws-binding-token: %v %q", err, p.ResourceType)
	}
	for _, q := range p.Parameter {
		switch q.Name {
		case "token":
			token = q.ValueString
		case "websocket-url":
			url = q.ValueURL
		}
	}
	if token == "" || url == "" {
		t.Fatalf("$get-ws-binding-token without token or websocket-url: %+v", p)
	}
	return token, url, http.StatusOK
}

func TestFHIRWebsocketsThroughTheServer(t *testing.T) {
	p := startServerProc(t, "--ws-binding-ttl", "1s")
	// the public base the server derives from a loopback address
	public := strings.Replace(p.base, "127.0.0.1", "localhost", 1)
	wsBase := "ws" + strings.TrimPrefix(public, "http")

	md := mustFHIR(t, 200, "GET", p.base+"/metadata", nil)
	if raw, _ := json.Marshal(md); !strings.Contains(string(raw), wsBase+"/websocket") ||
		!strings.Contains(string(raw), "get-ws-binding-token") {
		t.Errorf("CapabilityStatement advertises neither the R4 websocket URL nor $get-ws-binding-token")
	}

	t.Run("R4 bind, bound, ping", func(t *testing.T) {
		sub := mustFHIR(t, 201, "POST", p.base+"/Subscription", map[string]any{
			"resourceType": "Subscription", "status": "requested", "reason": "r4 websocket e2e",
			"criteria": "Observation?subject=Patient/ws-r4", "channel": map[string]any{"type": "websocket"}})
		id := sub["id"].(string)
		ws := dialFHIRWS(t, wsBase+"/websocket")
		ws.send("bind " + id)
		if f := ws.mustNext(); f != "bound "+id {
			t.Fatalf("after bind: %q, want %q", f, "bound "+id)
		}
		mustFHIR(t, 201, "POST", p.base+"/Observation", criticalObservation("ws-other", "2823-3", "r4-other"))
		mustFHIR(t, 201, "POST", p.base+"/Observation", criticalObservation("ws-r4", "2823-3", "r4-1"))
		if f := ws.mustNext(); f != "ping "+id {
			t.Fatalf("after a matching write: %q, want %q (a non-matching write must not ping)", f, "ping "+id)
		}

		bad := dialFHIRWS(t, wsBase+"/websocket")
		bad.send("bind no-such-subscription")
		frames := bad.closedWith(websocket.ClosePolicyViolation)
		if len(frames) != 1 || !strings.HasPrefix(frames[0], "error ") {
			t.Errorf("unknown id: frames %q, want one error frame before close 1008", frames)
		}
	})

	t.Run("R4 binding of a deleted subscription", func(t *testing.T) {
		// a client-chosen id, so that another subscription can take it
		// after the deletion
		const id = "ws-r4-deleted"
		sub := func(patient string) map[string]any {
			return map[string]any{"resourceType": "Subscription", "id": id, "status": "requested", "reason": "deleted while bound",
				"criteria": "Observation?subject=Patient/" + patient, "channel": map[string]any{"type": "websocket"}}
		}
		mustFHIR(t, 201, "PUT", p.base+"/Subscription/"+id, sub("ws-del-1"))
		old := dialFHIRWS(t, wsBase+"/websocket")
		old.send("bind " + id)
		if f := old.mustNext(); f != "bound "+id {
			t.Fatalf("after bind: %q", f)
		}
		mustFHIR(t, 200, "DELETE", p.base+"/Subscription/"+id, nil)
		if f := old.mustNext(); f != "error Subscription/"+id+" was deleted: its binding ended" {
			t.Fatalf("after the deletion: %q, want the binding's end", f)
		}
		// the id taken again, for another patient, and bound by a new client
		mustFHIR(t, 201, "PUT", p.base+"/Subscription/"+id, sub("ws-del-2"))
		fresh := dialFHIRWS(t, wsBase+"/websocket")
		fresh.send("bind " + id)
		if f := fresh.mustNext(); f != "bound "+id {
			t.Fatalf("binding the new subscription: %q", f)
		}
		// two matching writes, each pinged to the new client: the matcher
		// had handed the first to every listener of the id before the
		// second (it is one goroutine), so a ping of the first to the old
		// connection would be queued before the answer read below
		for _, tag := range []string{"del-1", "del-2"} {
			mustFHIR(t, 201, "POST", p.base+"/Observation", criticalObservation("ws-del-2", "2823-3", tag))
			if f := fresh.mustNext(); f != "ping "+id {
				t.Fatalf("the new subscription's client after a matching write: %q", f)
			}
		}
		other := mustFHIR(t, 201, "POST", p.base+"/Subscription", map[string]any{"resourceType": "Subscription", "status": "requested",
			"reason": "marker", "criteria": "Observation?subject=Patient/ws-marker", "channel": map[string]any{"type": "websocket"}})
		old.send("bind " + other["id"].(string))
		if f := old.mustNext(); f != "bound "+other["id"].(string) {
			t.Fatalf("the old connection, after the new subscription's events: %q, want only the answer to its bind", f)
		}
	})

	t.Run("R4 binding of a subscription moved to rest-hook", func(t *testing.T) {
		const id = "ws-r4-moved"
		sub := map[string]any{"resourceType": "Subscription", "id": id, "status": "requested", "reason": "channel changed while bound",
			"criteria": "Observation?subject=Patient/ws-moved", "channel": map[string]any{"type": "websocket"}}
		mustFHIR(t, 201, "PUT", p.base+"/Subscription/"+id, sub)
		ws := dialFHIRWS(t, wsBase+"/websocket")
		ws.send("bind " + id)
		if f := ws.mustNext(); f != "bound "+id {
			t.Fatalf("after bind: %q", f)
		}
		hook := newHookReceiver(t)
		sub["channel"] = map[string]any{"type": "rest-hook", "endpoint": hook.URL(), "payload": "application/fhir+json"}
		mustFHIR(t, 200, "PUT", p.base+"/Subscription/"+id, sub)
		if f := ws.mustNext(); f != "error Subscription/"+id+" is no longer a websocket subscription: its binding ended" {
			t.Fatalf("after the update to rest-hook: %q, want the binding's end", f)
		}
		ws.send("bind " + id)
		if frames := ws.closedWith(websocket.ClosePolicyViolation); len(frames) != 1 || !strings.Contains(frames[0], "does not use the websocket channel") {
			t.Errorf("binding it again: frames %q, want the refusal of a subscription of another channel", frames)
		}
	})

	t.Run("Backport bind-with-token", func(t *testing.T) {
		sub := mustFHIR(t, 201, "POST", p.base+"/Subscription",
			wsTopicSubscription(criticalTopic, "id-only", "Observation?patient=Patient/ws-bp"))
		id := sub["id"].(string)
		token, url, _ := bindingToken(t, p.base, id, "")
		if url != wsBase+"/ws/subscriptions" {
			t.Errorf("websocket-url %q, want %q", url, wsBase+"/ws/subscriptions")
		}
		ws := dialFHIRWS(t, url)
		ws.send("bind-with-token " + token)
		if n := ws.notification(); n.Type != "handshake" || n.Subscription != id {
			t.Fatalf("first frame after bind: %+v, want the handshake of %s", n, id)
		}
		obs := mustFHIR(t, 201, "POST", p.base+"/Observation", criticalObservation("ws-bp", "2823-3", "bp-1"))
		n := ws.notification()
		if n.Type != "event-notification" || len(n.Events) != 1 || n.Events[0] != 1 {
			t.Fatalf("after a matching write: %+v, want event-notification with event 1", n)
		}
		if want := public + "/Observation/" + obs["id"].(string); n.Foci[0] != want {
			t.Errorf("focus %q, want %q", n.Foci[0], want)
		}

		forged := dialFHIRWS(t, url)
		forged.send("bind-with-token " + token[:len(token)-4] + "AAAA")
		forged.closedWith(websocket.ClosePolicyViolation)

		// The TTL is 1 s and the server allows 5 s of clock skew.
		stale, _, _ := bindingToken(t, p.base, id, "")
		time.Sleep(7 * time.Second)
		late := dialFHIRWS(t, url)
		late.send(fmt.Sprintf(`{"type":"bind-with-token","payload":{"token":%q}}`, stale))
		late.closedWith(websocket.ClosePolicyViolation)
	})
}
