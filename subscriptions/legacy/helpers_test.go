package legacy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/fhirsub/fhirsub/channels"
	"github.com/fhirsub/fhirsub/fhirstore"
	"github.com/fhirsub/fhirsub/fhirstore/sqlite"
	"github.com/fhirsub/fhirsub/subscriptions"
	"github.com/fhirsub/fhirsub/subscriptions/legacy"
)

// server is the whole legacy pipeline on a real SQLite file: store →
// matcher (the one tail of the change feed) → feed → legacy protocol →
// hub → httptest server, wired as cmd/fhirsub does.
type server struct {
	store *sqlite.DB
	mgr   *subscriptions.Manager
	hub   *channels.Hub
	proto *channels.Legacy
	feed  *legacy.Feed
	srv   *httptest.Server
	url   string
	once  sync.Once
}

func logger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

func mustOpenStore(tb testing.TB, path string) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(context.Background(), sqlite.Config{Path: path, PollInterval: 20 * time.Millisecond})
	if err != nil {
		tb.Fatalf("open sqlite: %v", err)
	}
	return db
}

// mustStart wires a server on the database at path (a fresh one when path
// is ""); stop (also run by t.Cleanup) shuts it down in the order cmd uses.
func mustStart(tb testing.TB, path string, hcfg channels.Config, lcfg channels.LegacyConfig) *server {
	tb.Helper()
	return mustStartReading(tb, path, hcfg, lcfg, nil)
}

// mustStartReading is mustStart with the pipeline reading the store
// through read (nil: directly).
func mustStartReading(tb testing.TB, path string, hcfg channels.Config, lcfg channels.LegacyConfig, read func(fhirstore.Store) fhirstore.Store) *server {
	tb.Helper()
	if path == "" {
		path = filepath.Join(tb.TempDir(), "fhir.db")
	}
	s := &server{store: mustOpenStore(tb, path)}
	var err error
	hcfg.Logger = logger()
	if s.hub, err = channels.New(hcfg); err != nil {
		tb.Fatal(err)
	}
	lcfg.Logger = logger()
	lcfg.Replayer = channels.LegacyReplayFunc(func(ctx context.Context, after, upTo int64) ([]*channels.LegacyEvent, error) {
		return s.feed.Replay(ctx, after, upTo)
	})
	if s.proto, err = channels.NewLegacy(lcfg); err != nil {
		tb.Fatal(err)
	}
	if s.feed, err = legacy.New(legacy.Config{Store: s.store, Sink: s.proto, Logger: logger(), RetryInterval: 50 * time.Millisecond}); err != nil {
		tb.Fatal(err)
	}
	var store fhirstore.Store = s.store
	if read != nil {
		store = read(store)
	}
	if s.mgr, err = subscriptions.New(subscriptions.Config{Store: store, Events: s.store, BaseURL: "http://127.0.0.1/fhir",
		ValidateEndpoint: channels.ValidateEndpoint, PollInterval: 20 * time.Millisecond, Logger: logger(),
		Taps: []subscriptions.Tap{s.feed}}); err != nil {
		tb.Fatal(err)
	}
	if err := s.mgr.Run(context.Background()); err != nil {
		tb.Fatal(err)
	}
	if err := s.feed.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	s.srv = httptest.NewServer(s.hub.Handler(s.proto))
	s.url = "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/ws"
	tb.Cleanup(func() { s.stop(tb) })
	select {
	case <-s.feed.Ready():
	case <-time.After(5 * time.Second):
		tb.Fatal("the feed did not start")
	}
	return s
}

// stop shuts the server down as cmd does: HTTP server, hub, feed, store.
func (s *server) stop(tb testing.TB) {
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.srv.Close()
		if err := s.hub.Shutdown(ctx); err != nil {
			tb.Errorf("hub shutdown: %v", err)
		}
		if err := s.feed.Shutdown(ctx); err != nil {
			tb.Errorf("feed shutdown: %v", err)
		}
		if err := s.mgr.Shutdown(ctx); err != nil {
			tb.Errorf("subscriptions shutdown: %v", err)
		}
		if err := s.store.Close(); err != nil {
			tb.Errorf("store close: %v", err)
		}
	})
}

// resource decodes JSON the way the server does (numbers as json.Number).
func resource(tb testing.TB, s string) map[string]any {
	tb.Helper()
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		tb.Fatalf("bad test resource %s: %v", s, err)
	}
	return m
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

func send(tb testing.TB, ws *websocket.Conn, msg string) {
	tb.Helper()
	if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		tb.Fatalf("write %s: %v", msg, err)
	}
}

type msg struct {
	Type      string         `json:"type"`
	Seq       *int64         `json:"seq"`
	Data      map[string]any `json:"data"`
	Timestamp string         `json:"timestamp"`
	raw       string
}

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

func recvType(tb testing.TB, ws *websocket.Conn, typ string) msg {
	tb.Helper()
	m := recv(tb, ws)
	if m.Type != typ {
		tb.Fatalf("got %s, want a %s message", m.raw, typ)
	}
	return m
}

// expectNothingQueued pings; the pong must come next.
func expectNothingQueued(tb testing.TB, ws *websocket.Conn) {
	tb.Helper()
	send(tb, ws, `{"type":"ping"}`)
	if m := recv(tb, ws); m.Type != "pong" {
		tb.Fatalf("unexpected message %s", m.raw)
	}
}

func subscribe(tb testing.TB, ws *websocket.Conn, id string, types, patients []string) {
	tb.Helper()
	data := map[string]any{"subscription_id": id, "resource_types": types}
	if patients != nil {
		data["patient_ids"] = patients
	}
	b, _ := json.Marshal(map[string]any{"type": "subscribe", "data": data})
	send(tb, ws, string(b))
	if m := recvType(tb, ws, "subscribed"); m.Data["subscription_id"] != id {
		tb.Fatalf("subscribed %s, want id %s", m.raw, id)
	}
}

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
