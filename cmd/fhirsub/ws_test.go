package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestLegacyChannelThroughTheServer dials /ws on the fully wired server and
// sees a write made over REST arrive as an update message.
func TestLegacyChannelThroughTheServer(t *testing.T) {
	a := mustStart(t, t.TempDir())
	defer a.shutdown(context.Background())
	url := "ws" + strings.TrimPrefix(a.baseURL, "http") + "/ws?client_id=e2e"
	hdr := http.Header{"Origin": {a.baseURL}}
	c, resp, err := websocket.DefaultDialer.Dial(url, hdr)
	if err != nil {
		t.Fatalf("dial %s: %v (%v)", url, err, resp)
	}
	defer c.Close()
	send := `{"type":"subscribe","data":{"subscription_id":"s1","resource_types":["Observation"],"patient_ids":["p-e2e"]}}`
	if err := c.WriteMessage(websocket.TextMessage, []byte(send)); err != nil {
		t.Fatal(err)
	}
	next := func() map[string]any {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, raw, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("frame %s: %v", raw, err)
		}
		return m
	}
	if m := next(); m["type"] != "subscribed" {
		t.Fatalf("want subscribed, got %v", m)
	}
	obs := `{"resourceType":"Observation","status":"final","code":{"text":"HR"},"subject":{"reference":"Patient/p-e2e"}}`
	r := post(t, a.baseURL+"/Observation", obs)
	r.Body.Close()
	m := next()
	data, _ := m["data"].(map[string]any)
	if m["type"] != "update" || data["action"] != "created" || data["patient_id"] != "p-e2e" || data["resource_type"] != "Observation" {
		t.Fatalf("update message: %v", m)
	}
	if _, ok := m["seq"].(float64); !ok {
		t.Errorf("update without seq: %v", m)
	}
}
