package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// origClient speaks the original MedGenEMR websocket protocol frame by
// frame, as its browser client does (services/websocket.js): it checks
// the shape of every server message it reads and answers nothing by
// itself.
type origClient struct {
	t *testing.T
	c *websocket.Conn
}

// origMsg is one decoded server message of the original dialect.
type origMsg struct {
	Type string
	Data map[string]any
	raw  map[string]any
	Text string
}

// dialOriginal dials url (ws://…/api/ws…).
func dialOriginal(t *testing.T, url string) *origClient {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	c, resp, err := d.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v (%v)", url, err, resp)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &origClient{t: t, c: c}
}

func (o *origClient) send(v any) {
	o.t.Helper()
	b, ok := v.([]byte)
	if !ok {
		if s, isString := v.(string); isString {
			b = []byte(s)
		} else {
			var err error
			if b, err = json.Marshal(v); err != nil {
				o.t.Fatal(err)
			}
		}
	}
	if err := o.c.WriteMessage(websocket.TextMessage, b); err != nil {
		o.t.Fatalf("send %s: %v", b, err)
	}
}

// subscribe sends a subscribe message; nil lists are left out.
func (o *origClient) subscribe(id string, types, patients []string) {
	o.t.Helper()
	data := map[string]any{"subscription_id": id}
	if types != nil {
		data["resource_types"] = types
	}
	if patients != nil {
		data["patient_ids"] = patients
	}
	o.send(map[string]any{"type": "subscribe", "data": data})
}

// read returns the next server message, or the error that ended the
// connection.
func (o *origClient) read(timeout time.Duration) (origMsg, error) {
	_ = o.c.SetReadDeadline(time.Now().Add(timeout))
	_, b, err := o.c.ReadMessage()
	if err != nil {
		return origMsg{}, err
	}
	m := origMsg{Text: string(b)}
	if err := json.Unmarshal(b, &m.raw); err != nil {
		return m, fmt.Errorf("frame is not a JSON object: %s", b)
	}
	m.Type, _ = m.raw["type"].(string)
	m.Data, _ = m.raw["data"].(map[string]any)
	return m, nil
}

// next returns the next message that is not a heartbeat ping (pings are
// checked and answered with pong, as the original client does).
func (o *origClient) next() origMsg {
	o.t.Helper()
	for {
		m, err := o.read(15 * time.Second)
		if err != nil {
			o.t.Fatalf("read: %v", err)
		}
		if m.Type == "ping" {
			o.checkPing(m)
			o.send(`{"type":"pong"}`)
			continue
		}
		if m.Type == "error" {
			o.t.Fatalf("error frame: %s", m.Text)
		}
		return m
	}
}

// checkPing checks the shape of a heartbeat.
func (o *origClient) checkPing(m origMsg) {
	o.t.Helper()
	if v, ok := m.raw["data"]; !ok || v != nil {
		o.t.Errorf("ping data: %s, want null", m.Text)
	}
	o.checkEnvelope(m)
}

// checkEnvelope checks "timestamp" and "message_id": null.
func (o *origClient) checkEnvelope(m origMsg) {
	o.t.Helper()
	ts, _ := m.raw["timestamp"].(string)
	if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
		o.t.Errorf("%s message without an RFC 3339 timestamp: %s", m.Type, m.Text)
	}
	if v, ok := m.raw["message_id"]; !ok || v != nil {
		o.t.Errorf("%s message: message_id must be present and null: %s", m.Type, m.Text)
	}
	if _, ok := m.raw["seq"]; ok {
		o.t.Errorf("%s message carries the extended dialect's seq: %s", m.Type, m.Text)
	}
}

// welcome reads the welcome message and returns its client id.
func (o *origClient) welcome(reconnected bool) (clientID string, user any) {
	o.t.Helper()
	m := o.next()
	if m.Type != "welcome" {
		o.t.Fatalf("first message: %s, want welcome", m.Text)
	}
	clientID, _ = m.Data["client_id"].(string)
	if clientID == "" {
		o.t.Fatalf("welcome without client_id: %s", m.Text)
	}
	user, ok := m.Data["user"]
	if !ok {
		o.t.Fatalf("welcome without user: %s", m.Text)
	}
	if got, _ := m.Data["reconnected"].(bool); got != reconnected {
		o.t.Fatalf("welcome reconnected = %v, want %v: %s", got, reconnected, m.Text)
	}
	return clientID, user
}

// ack reads a subscription ack (skipping clinical events still on the
// way) and checks it.
func (o *origClient) ack(action, id string) origMsg {
	o.t.Helper()
	m := o.next()
	for m.Type == "update" && m.Data["action"] == "clinical_event" {
		m = o.next()
	}
	if m.Type != "subscription" || m.Data["action"] != action || m.Data["subscription_id"] != id {
		o.t.Fatalf("got %s, want a subscription %s ack of %s", m.Text, action, id)
	}
	return m
}

// update reads an update message and checks its envelope.
func (o *origClient) update() origMsg {
	o.t.Helper()
	m := o.next()
	if m.Type != "update" {
		o.t.Fatalf("got %s, want an update", m.Text)
	}
	o.checkEnvelope(m)
	for _, k := range []string{"action", "resource_type", "resource_id", "patient_id", "resource"} {
		if _, ok := m.Data[k]; !ok {
			o.t.Fatalf("update without data.%s: %s", k, m.Text)
		}
	}
	return m
}

// updateOf reads updates until one with action and resource id, failing on
// anything but clinical events on the way.
func (o *origClient) updateOf(action, id string) origMsg {
	o.t.Helper()
	for {
		m := o.update()
		if m.Data["action"] == action && m.Data["resource_id"] == id {
			return m
		}
		if m.Data["action"] != "clinical_event" {
			o.t.Fatalf("got %s, want the %s update of %s", m.Text, action, id)
		}
	}
}

// plainUpdate reads updates until one that is not a clinical event.
func (o *origClient) plainUpdate() origMsg {
	o.t.Helper()
	for {
		if m := o.update(); m.Data["action"] != "clinical_event" {
			return m
		}
	}
}

// closed reads until the server closes and returns the close frame.
func (o *origClient) closed() *websocket.CloseError {
	o.t.Helper()
	for {
		m, err := o.read(15 * time.Second)
		if err == nil {
			if m.Type == "update" {
				o.t.Fatalf("an update before the close: %s", m.Text)
			}
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			o.t.Fatalf("connection ended without a close frame: %v", err)
		}
		return ce
	}
}

// websocketConnections reads the fhirsub_websocket_connections gauge.
func websocketConnections(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "fhirsub_websocket_connections "); ok {
			return v
		}
	}
	return "?"
}

// waitNoSockets waits until the server has seen every socket close (so
// that their positions are saved).
func waitNoSockets(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for websocketConnections(t, base) != "0" {
		if time.Now().After(deadline) {
			t.Fatalf("websocket connections still open: %s", websocketConnections(t, base))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// observation is a vital-sign Observation of patient with a marker tag.
func observation(patient, tag string) map[string]any {
	return map[string]any{
		"resourceType": "Observation", "status": "final",
		"identifier": []any{map[string]any{"system": "urn:fhirsub:medgenemr-test", "value": tag}},
		"code":       map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "8867-4"}}},
		"subject":    map[string]any{"reference": "Patient/" + patient},
	}
}
