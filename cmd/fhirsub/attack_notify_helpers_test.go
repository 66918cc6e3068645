package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Helpers of the notification attack table: an attacker's view of the
// server, where every byte received is kept (to look for the victim's
// marker) and failures are returned, not fatal, so that one case failing
// does not hide the others.

// attacker is one client of the server holding a bearer token ("" for
// none).
type attacker struct {
	name  string
	base  string
	token string
}

// call sends a request with the attacker's token and returns the status
// and the raw body.
func (a attacker) call(method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, a.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Accept", "application/fhir+json")
	if body != nil {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := fhirClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, raw, err
}

// must is call for set-up steps: anything but want fails the test.
func (a attacker) must(t *testing.T, want int, method, path string, body any) map[string]any {
	t.Helper()
	code, raw, err := a.call(method, path, body)
	if err != nil || code != want {
		t.Fatalf("%s: %s %s: %d %.300s (%v), want %d", a.name, method, path, code, raw, err, want)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s: %s %s: not JSON: %.200s", a.name, method, path, raw)
	}
	return out
}

// expectStatus is call that returns an error unless the status is one of
// want; the body is returned in any case (it is looked at for leaks).
func (a attacker) expectStatus(method, path string, body any, want ...int) ([]byte, error) {
	code, raw, err := a.call(method, path, body)
	if err != nil {
		return raw, err
	}
	for _, w := range want {
		if code == w {
			return raw, nil
		}
	}
	return raw, fmt.Errorf("%s %s: status %d, want %v: %.200s", method, path, code, want, raw)
}

// bindingToken calls $get-ws-binding-token (path is "" for type level with
// ids as id parameters, or a subscription id) and returns the token, the
// subscriptions it names and the raw answer.
func (a attacker) bindingToken(id string, ids ...string) (tok string, subs []string, raw []byte, code int, err error) {
	path := "/Subscription/$get-ws-binding-token"
	if id != "" {
		path = "/Subscription/" + id + "/$get-ws-binding-token"
	} else if len(ids) > 0 {
		path += "?id=" + strings.Join(ids, "&id=")
	}
	code, raw, err = a.call(http.MethodGet, path, nil)
	if err != nil || code != http.StatusOK {
		return "", nil, raw, code, err
	}
	var p struct {
		Parameter []struct {
			Name        string `json:"name"`
			ValueString string `json:"valueString"`
		} `json:"parameter"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return "", nil, raw, code, err
	}
	for _, q := range p.Parameter {
		switch q.Name {
		case "token":
			tok = q.ValueString
		case "subscription":
			subs = append(subs, strings.TrimPrefix(q.ValueString, "Subscription/"))
		}
	}
	return tok, subs, raw, code, nil
}

// socket is a websocket whose every received frame is kept.
type socket struct {
	c      *websocket.Conn
	mu     sync.Mutex
	frames []string
}

// dialSocket dials url; the connection is closed on cleanup.
func dialSocket(t *testing.T, url string) (*socket, *http.Response, error) {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	c, resp, err := d.Dial(url, nil)
	if err != nil {
		return nil, resp, err
	}
	t.Cleanup(func() { _ = c.Close() })
	return &socket{c: c}, resp, nil
}

func (s *socket) send(msg string) error {
	_ = s.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return s.c.WriteMessage(websocket.TextMessage, []byte(msg))
}

// until reads frames until one satisfies stop (returned), the connection
// closes (the *websocket.CloseError is returned as err) or timeout passes.
func (s *socket) until(timeout time.Duration, stop func(string) bool) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		_ = s.c.SetReadDeadline(deadline)
		_, b, err := s.c.ReadMessage()
		if err != nil {
			return "", err
		}
		s.mu.Lock()
		s.frames = append(s.frames, string(b))
		s.mu.Unlock()
		if stop(string(b)) {
			return string(b), nil
		}
	}
}

// closed reads until the close frame and checks its code and reason ("" for
// any reason).
func (s *socket) closed(timeout time.Duration, code int, reason string) error {
	_, err := s.until(timeout, func(string) bool { return false })
	var ce *websocket.CloseError
	if !errors.As(err, &ce) {
		return fmt.Errorf("connection ended with %v, want close %d %s", err, code, reason)
	}
	if ce.Code != code || reason != "" && ce.Text != reason {
		return fmt.Errorf("closed with %d %q, want %d %q", ce.Code, ce.Text, code, reason)
	}
	return nil
}

// received is every frame read so far, joined.
func (s *socket) received() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return []byte(strings.Join(s.frames, "\n"))
}

// frameList is every frame read so far.
func (s *socket) frameList() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]byte, len(s.frames))
	for i, f := range s.frames {
		out[i] = []byte(f)
	}
	return out
}

// rawHook is a real rest-hook endpoint that keeps every body it receives,
// by subscription id.
type rawHook struct {
	url    string
	mu     sync.Mutex
	bodies map[string][][]byte
	wake   chan struct{}
}

func newRawHook(t *testing.T) *rawHook {
	h := &rawHook{bodies: map[string][][]byte{}, wake: make(chan struct{}, 1)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var b map[string]any
		id := "?"
		if json.Unmarshal(raw, &b) == nil {
			if n, err := parseNotification(b); err == nil {
				id = n.Subscription
			}
		}
		h.mu.Lock()
		h.bodies[id] = append(h.bodies[id], raw)
		h.mu.Unlock()
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}))
	_ = srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	h.url = srv.URL + "/hook"
	return h
}

// of returns the bodies received for a subscription.
func (h *rawHook) of(id string) [][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([][]byte(nil), h.bodies[id]...)
}

// waitFor waits until a body for the subscription contains want.
func (h *rawHook) waitFor(id, want string, timeout time.Duration) error {
	deadline := time.After(timeout)
	for {
		for _, b := range h.of(id) {
			if bytes.Contains(b, []byte(want)) {
				return nil
			}
		}
		select {
		case <-h.wake:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			return fmt.Errorf("no notification of Subscription/%s containing %q within %v", id, want, timeout)
		}
	}
}

// eventsSince reads events-since-subscription-start from a $status or
// $events answer (-1 when absent).
func eventsSince(raw []byte) int {
	var b map[string]any
	if json.Unmarshal(raw, &b) != nil {
		return -1
	}
	for _, e := range asSlice(b["entry"]) {
		res, _ := e.(map[string]any)["resource"].(map[string]any)
		for _, p := range asSlice(res["parameter"]) {
			pm, _ := p.(map[string]any)
			if pm["name"] == "events-since-subscription-start" {
				var n int
				if _, err := fmt.Sscan(fmt.Sprint(pm["valueString"]), &n); err == nil {
					return n
				}
			}
		}
	}
	return -1
}
