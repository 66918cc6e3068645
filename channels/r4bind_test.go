package channels_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/fhirsub/fhirsub/channels"
	"github.com/fhirsub/fhirsub/conformance/smart"
)

// fakeSubs plays the subscription side: ids listed are websocket
// subscriptions, "rh-*" ids are rest-hook ones, "secret-*" ids are visible
// only to callers that may read every Subscription without a patient.
type fakeSubs struct {
	mu      sync.Mutex
	pings   map[string][]func(int64)
	ends    map[string][]func(string)
	sinks   map[string][]channels.Sink
	cancels int
	access  []*smart.Access
	gone    []string // deleted ids
}

func newFakeSubs() *fakeSubs {
	return &fakeSubs{pings: map[string][]func(int64){}, ends: map[string][]func(string){}, sinks: map[string][]channels.Sink{}}
}

func (f *fakeSubs) check(id string, acc *smart.Access) error {
	f.mu.Lock()
	gone := slices.Contains(f.gone, id)
	f.mu.Unlock()
	switch {
	case gone:
		return fmt.Errorf("Subscription/%s: %w", id, channels.ErrSubscriptionNotFound)
	case strings.HasPrefix(id, "missing"):
		return fmt.Errorf("Subscription/%s: %w", id, channels.ErrSubscriptionNotFound)
	case strings.HasPrefix(id, "rh-"):
		return fmt.Errorf("Subscription/%s: %w", id, channels.ErrNotWebsocket)
	case strings.HasPrefix(id, "secret-") && acc.Patient != "":
		return fmt.Errorf("Subscription/%s: %w", id, channels.ErrBindForbidden)
	}
	return nil
}

func (f *fakeSubs) cancel() func() {
	return func() {
		f.mu.Lock()
		f.cancels++
		f.mu.Unlock()
	}
}

func (f *fakeSubs) BindR4(_ context.Context, id string, acc *smart.Access, ping func(int64), ended func(string)) (func(), error) {
	if err := f.check(id, acc); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.pings[id] = append(f.pings[id], ping)
	f.ends[id] = append(f.ends[id], ended)
	f.access = append(f.access, acc)
	f.mu.Unlock()
	return f.cancel(), nil
}

func (f *fakeSubs) BindBackport(_ context.Context, id string, acc *smart.Access, sink channels.Sink) (func(), error) {
	if err := f.check(id, acc); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.sinks[id] = append(f.sinks[id], sink)
	f.access = append(f.access, acc)
	f.mu.Unlock()
	sink.Send([]byte(`{"handshake":"`+id+`"}`), 0)
	return f.cancel(), nil
}

// fire calls every ping of id.
func (f *fakeSubs) fire(id string, n int64) {
	f.mu.Lock()
	fns := append([]func(int64){}, f.pings[id]...)
	f.mu.Unlock()
	for _, fn := range fns {
		fn(n)
	}
}

// deleted plays the deletion of subscription id: every binding of it is
// told it ended, and later binds of it fail as for an unknown one.
func (f *fakeSubs) deleted(id string) {
	f.mu.Lock()
	ends, sinks := f.ends[id], f.sinks[id]
	delete(f.ends, id)
	delete(f.pings, id)
	delete(f.sinks, id)
	f.gone = append(f.gone, id)
	f.mu.Unlock()
	for _, fn := range ends {
		fn("Subscription/" + id + " was deleted: its binding ended")
	}
	for _, s := range sinks {
		s.End("Subscription/" + id + " was deleted")
	}
}

func (f *fakeSubs) cancelled() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cancels
}

// r4TestVerifier accepts "good-<patient>" tokens.
type r4TestVerifier struct{}

func (r4TestVerifier) Verify(_ context.Context, raw string) (*smart.Access, error) {
	p, ok := strings.CutPrefix(raw, "good")
	if !ok {
		return nil, errors.New("bad token")
	}
	return &smart.Access{Subject: "u", Patient: strings.TrimPrefix(p, "-"), Scopes: smart.MustParseScopes("user/*.rs")}, nil
}

// protoServer serves one protocol on a hub behind httptest.
func protoServer(t *testing.T, p channels.Protocol) string {
	t.Helper()
	hub, err := channels.New(channels.Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(hub.Handler(p))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = hub.Shutdown(ctx)
		srv.Close()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

func wsDial(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v (%v)", url, err, resp)
	}
	t.Cleanup(func() { _ = ws.Close() })
	return ws
}

func wsSend(t *testing.T, ws *websocket.Conn, msg string) {
	t.Helper()
	if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatalf("write %q: %v", msg, err)
	}
}

func wsRead(t *testing.T, ws *websocket.Conn) string {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, data, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(data)
}

// wsClosed reads until the close frame and returns its code and reason.
func wsClosed(t *testing.T, ws *websocket.Conn) (int, string) {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, data, err := ws.ReadMessage()
		if err == nil {
			t.Logf("frame before close: %s", data)
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code, ce.Text
		}
		t.Fatalf("connection ended without a close frame: %v", err)
	}
}

func expectWSClose(t *testing.T, ws *websocket.Conn, code int, reason string) {
	t.Helper()
	if c, r := wsClosed(t, ws); c != code || r != reason {
		t.Fatalf("closed with %d %q, want %d %q", c, r, code, reason)
	}
}

func newR4(t *testing.T, cfg channels.R4Config) string {
	t.Helper()
	p, err := channels.NewR4(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return protoServer(t, p)
}

func TestR4BindPing(t *testing.T) {
	subs := newFakeSubs()
	url := newR4(t, channels.R4Config{Binder: subs, MaxBindings: 2})
	ws := wsDial(t, url)
	wsSend(t, ws, "bind 123")
	if got := wsRead(t, ws); got != "bound 123" {
		t.Fatalf("got %q, want bound 123", got)
	}
	wsSend(t, ws, "bind 456")
	if got := wsRead(t, ws); got != "bound 456" {
		t.Fatalf("got %q", got)
	}
	subs.fire("123", 1)
	subs.fire("456", 1)
	subs.fire("123", 2)
	for _, want := range []string{"ping 123", "ping 456", "ping 123"} {
		if got := wsRead(t, ws); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	wsSend(t, ws, "bind 123") // again: answered, no second binding
	if got := wsRead(t, ws); got != "bound 123" {
		t.Fatalf("got %q", got)
	}
	wsSend(t, ws, "bind 789")
	if got := wsRead(t, ws); !strings.HasPrefix(got, "error too many bindings") {
		t.Fatalf("third binding: %q", got)
	}
	wsSend(t, ws, "hello")
	if got := wsRead(t, ws); !strings.HasPrefix(got, "error unexpected client message") {
		t.Fatalf("unexpected message: %q", got)
	}
	_ = ws.Close()
	deadline := time.Now().Add(5 * time.Second)
	for subs.cancelled() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d bindings cancelled on close, want 2", subs.cancelled())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestR4BindRefused(t *testing.T) {
	url := newR4(t, channels.R4Config{Binder: newFakeSubs()})
	for id, reason := range map[string]string{
		"missing-1": channels.ReasonNotFound,
		"rh-1":      channels.ReasonNotWebsocket,
		"a/b":       channels.ReasonNotFound,
	} {
		ws := wsDial(t, url)
		wsSend(t, ws, "bind "+id)
		if got := wsRead(t, ws); !strings.HasPrefix(got, "error ") {
			t.Fatalf("bind %s: got %q, want an error frame", id, got)
		}
		expectWSClose(t, ws, channels.ClosePolicyViolation, reason)
	}
}

func TestR4Auth(t *testing.T) {
	subs := newFakeSubs()
	url := newR4(t, channels.R4Config{Binder: subs, Auth: r4TestVerifier{}, AuthTimeout: 300 * time.Millisecond})

	// No token: a bind is refused.
	ws := wsDial(t, url)
	wsSend(t, ws, "bind 1")
	if got := wsRead(t, ws); !strings.HasPrefix(got, "error authenticate") {
		t.Fatalf("got %q", got)
	}
	expectWSClose(t, ws, channels.ClosePolicyViolation, channels.ReasonAuthRequired)

	// A bad access_token refuses the upgrade.
	if _, resp, err := websocket.DefaultDialer.Dial(url+"?access_token=bad", nil); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bad access_token: %v %v", err, resp)
	}

	// access_token query parameter.
	ws = wsDial(t, url+"?access_token=good-p1")
	wsSend(t, ws, "bind 1")
	if got := wsRead(t, ws); got != "bound 1" {
		t.Fatalf("got %q", got)
	}
	// The patient-scoped access reaches the binder, which refuses.
	wsSend(t, ws, "bind secret-1")
	if got := wsRead(t, ws); !strings.HasPrefix(got, "error ") {
		t.Fatalf("got %q", got)
	}
	expectWSClose(t, ws, channels.ClosePolicyViolation, channels.ReasonForbidden)

	// First-message auth.
	ws = wsDial(t, url)
	wsSend(t, ws, `{"type":"auth","data":{"token":"good"}}`)
	wsSend(t, ws, "bind secret-2")
	if got := wsRead(t, ws); got != "bound secret-2" {
		t.Fatalf("got %q", got)
	}
	subs.mu.Lock()
	last := subs.access[len(subs.access)-1]
	subs.mu.Unlock()
	if last.Subject != "u" || last.Patient != "" {
		t.Errorf("binder got access %+v", last)
	}

	// A bad first message token closes.
	ws = wsDial(t, url)
	wsSend(t, ws, `{"type":"auth","data":{"token":"forged"}}`)
	expectWSClose(t, ws, channels.ClosePolicyViolation, channels.ReasonInvalidToken)

	// Silence: closed after AuthTimeout.
	ws = wsDial(t, url)
	expectWSClose(t, ws, channels.ClosePolicyViolation, channels.ReasonAuthTimeout)
}
