package channels_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/fhirsub/fhirsub/channels"
)

// testServer is a hub with the legacy protocol behind an httptest server.
type testServer struct {
	hub    *channels.Hub
	legacy *channels.Legacy
	srv    *httptest.Server
	url    string // ws://…/ws
}

func testLogger(tb testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

// mustServe starts a hub and a legacy protocol; both are shut down in
// t.Cleanup.
func mustServe(tb testing.TB, hcfg channels.Config, lcfg channels.LegacyConfig) *testServer {
	tb.Helper()
	if hcfg.Logger == nil {
		hcfg.Logger = testLogger(tb)
	}
	hub, err := channels.New(hcfg)
	if err != nil {
		tb.Fatal(err)
	}
	legacy, err := channels.NewLegacy(lcfg)
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(hub.Handler(legacy))
	ts := &testServer{hub: hub, legacy: legacy, srv: srv, url: "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := hub.Shutdown(ctx); err != nil {
			tb.Errorf("hub shutdown: %v", err)
		}
		srv.Close()
	})
	return ts
}

func mustDial(tb testing.TB, url string) *websocket.Conn {
	tb.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		tb.Fatalf("dial %s: %v (%v)", url, err, resp)
	}
	tb.Cleanup(func() { _ = ws.Close() })
	return ws
}

// send writes one JSON message.
func send(tb testing.TB, ws *websocket.Conn, msg string) {
	tb.Helper()
	if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		tb.Fatalf("write %s: %v", msg, err)
	}
}

// msg is a decoded server message.
type msg struct {
	Type      string         `json:"type"`
	Seq       *int64         `json:"seq"`
	Data      map[string]any `json:"data"`
	Timestamp string         `json:"timestamp"`
	raw       string
}

// recv reads one message within 5 s.
func recv(tb testing.TB, ws *websocket.Conn) msg {
	tb.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, data, err := ws.ReadMessage()
	if err != nil {
		tb.Fatalf("read: %v", err)
	}
	var m msg
	if err := json.Unmarshal(data, &m); err != nil {
		tb.Fatalf("server sent invalid JSON %q: %v", data, err)
	}
	m.raw = string(data)
	return m
}

// recvType reads one message and checks its type.
func recvType(tb testing.TB, ws *websocket.Conn, typ string) msg {
	tb.Helper()
	m := recv(tb, ws)
	if m.Type != typ {
		tb.Fatalf("got %s, want a %s message", m.raw, typ)
	}
	return m
}

// expectNothingQueued checks that nothing is waiting for the client: it
// pings, and the pong must be the next message. (Publish queues its frames
// before it returns and a replay ends before the next client message is
// read, so anything due would come first.)
func expectNothingQueued(tb testing.TB, ws *websocket.Conn) {
	tb.Helper()
	send(tb, ws, `{"type":"ping"}`)
	if m := recv(tb, ws); m.Type != "pong" {
		tb.Fatalf("unexpected message %s", m.raw)
	}
}

// subscribe sends a subscribe message and waits for "subscribed".
func subscribe(tb testing.TB, ws *websocket.Conn, id string, types, patients []string) {
	tb.Helper()
	data := map[string]any{"subscription_id": id, "resource_types": types}
	if patients != nil {
		data["patient_ids"] = patients
	}
	b, _ := json.Marshal(map[string]any{"type": "subscribe", "data": data})
	send(tb, ws, string(b))
	m := recvType(tb, ws, "subscribed")
	if m.Data["subscription_id"] != id {
		tb.Fatalf("subscribed %s, want id %s", m.raw, id)
	}
}

// eventually polls cond for up to 5 s.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkGoroutines fails if, after the test's cleanups, more goroutines run
// than before it (allowing a few seconds for them to end).
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Errorf("goroutines leaked: %d before, %d after\n%s", before, runtime.NumGoroutine(),
					buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// update builds an update event.
func update(tb testing.TB, seq int64, action, typ, id string, patients []string, body string) *channels.LegacyEvent {
	tb.Helper()
	u := channels.LegacyUpdate{Seq: seq, Time: time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC), Action: action,
		ResourceType: typ, ResourceID: id, PatientIDs: patients}
	if body != "" {
		u.Resource = json.RawMessage(body)
	}
	ev, err := channels.NewLegacyUpdate(u)
	if err != nil {
		tb.Fatal(err)
	}
	return ev
}
