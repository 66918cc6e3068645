package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The websocket side of the bad-input catalogue: a session that collects a
// connection's frames, and the runner of a wsScript.

// wsSession is a dialled connection whose frames a goroutine collects.
type wsSession struct {
	c      *websocket.Conn
	frames chan string
	done   chan struct{}
	err    error // the read error, once done is closed
}

func dialWS(t *testing.T, base, path string) (*wsSession, *http.Response, error) {
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial("ws"+strings.TrimPrefix(base, "http")+path, nil)
	if err != nil {
		return nil, resp, err
	}
	s := &wsSession{c: c, frames: make(chan string, 4096), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			_, data, err := c.ReadMessage()
			if err != nil {
				s.err = err
				return
			}
			select {
			case s.frames <- string(data):
			default: // a flood's answers beyond the buffer are not needed
			}
		}
	}()
	t.Cleanup(func() { _ = c.Close() })
	return s, resp, nil
}

// waitFrame waits until a frame satisfies match, or the connection ends,
// or timeout passes.
func (s *wsSession) waitFrame(timeout time.Duration, match func(string) bool) (string, bool) {
	deadline := time.After(timeout)
	for {
		select {
		case f := <-s.frames:
			if match(f) {
				return f, true
			}
		case <-s.done:
			for { // frames read before the close
				select {
				case f := <-s.frames:
					if match(f) {
						return f, true
					}
				default:
					return "", false
				}
			}
		case <-deadline:
			return "", false
		}
	}
}

// isErrorFrame reports whether f is an error frame carrying code: legacy
// {"type":"error","data":{"code":…}}, Backport
// {"type":"error","payload":{"code":…}} or R4 "error …".
func isErrorFrame(f, code string) bool {
	if strings.HasPrefix(f, "{") {
		var m struct {
			Type    string            `json:"type"`
			Data    map[string]string `json:"data"`
			Payload map[string]any    `json:"payload"`
		}
		if json.Unmarshal([]byte(f), &m) != nil || m.Type != "error" {
			return false
		}
		return m.Data["code"] == code && m.Data["message"] != "" || m.Payload["code"] == code && m.Payload["message"] != ""
	}
	return strings.HasPrefix(f, "error ") && strings.Contains(f, code)
}

func runWSCase(t *testing.T, base string, w *wsScript) {
	t.Helper()
	s, resp, err := dialWS(t, base, w.path)
	if w.dialStatus != 0 {
		if err == nil {
			t.Fatalf("dial %.60s: the upgrade was accepted, want HTTP %d", w.path, w.dialStatus)
		}
		if resp == nil || resp.StatusCode != w.dialStatus {
			t.Fatalf("dial %.60s: %v (%v), want HTTP %d", w.path, err, resp, w.dialStatus)
		}
		return
	}
	if err != nil {
		st := 0
		if resp != nil {
			st = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (HTTP %d)", w.path, err, st)
	}
	for i, f := range w.send {
		typ := websocket.TextMessage
		if f.binary {
			typ = websocket.BinaryMessage
		}
		_ = s.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if err := s.c.WriteMessage(typ, f.data); err != nil {
			if w.closeCode != 0 {
				break // the server may close before the last frame
			}
			t.Fatalf("write frame %d: %v", i, err)
		}
		if w.pace > 0 {
			time.Sleep(w.pace)
		}
	}
	if w.errorFrame != "" {
		if _, ok := s.waitFrame(5*time.Second, func(f string) bool { return isErrorFrame(f, w.errorFrame) }); !ok {
			t.Fatalf("no error frame %q (connection ended: %v)", w.errorFrame, s.err)
		}
	}
	if w.closeCode != 0 {
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			t.Fatalf("the server did not close the connection within 5s (want close %d)", w.closeCode)
		}
		var ce *websocket.CloseError
		if !errors.As(s.err, &ce) {
			t.Fatalf("the connection ended with %v, want close %d", s.err, w.closeCode)
		}
		if ce.Code != w.closeCode || !strings.Contains(ce.Text, w.closeReason) {
			t.Fatalf("close %d %q, want %d with reason containing %q", ce.Code, ce.Text, w.closeCode, w.closeReason)
		}
		return
	}
	if w.probe != nil {
		time.Sleep(w.probe.wait) // the rate limiter refills
		for drained := false; !drained; {
			select {
			case <-s.frames:
			default:
				drained = true
			}
		}
		_ = s.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if err := s.c.WriteMessage(websocket.TextMessage, []byte(w.probe.send)); err != nil {
			t.Fatalf("the connection did not stay open: write probe: %v", err)
		}
		if _, ok := s.waitFrame(5*time.Second, func(f string) bool { return strings.Contains(f, w.probe.want) }); !ok {
			t.Fatalf("the connection did not stay usable: no answer containing %q to %q (ended: %v)", w.probe.want, w.probe.send, s.err)
		}
	}
	_ = s.c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
}
