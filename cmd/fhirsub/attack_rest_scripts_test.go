package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// The scripted attacks of TestRESTAttacks: each returns a status and the
// bytes the attacker received, which the table checks like any answer.

// wsNeverBinds dials /ws/subscriptions, sends nothing and reports how the
// server ended the connection (an error when it did not within 30 s).
func (s *attackServer) wsNeverBinds() (int, []byte, error) {
	u := "ws" + strings.TrimPrefix(s.p.base, "http") + "/ws/subscriptions"
	c, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		return 0, nil, err
	}
	defer c.Close()
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if ok := asClose(err, &ce); ok && ce.Code == websocket.ClosePolicyViolation {
				return 200, []byte(fmt.Sprintf("closed %d %s after %v", ce.Code, ce.Text, time.Since(start).Round(time.Second))), nil
			}
			return 0, nil, fmt.Errorf("unbound connection: %v after %v, want close 1008", err, time.Since(start))
		}
	}
}

func asClose(err error, ce **websocket.CloseError) bool {
	e, ok := err.(*websocket.CloseError)
	*ce = e
	return ok
}

// drip sends a create whose body arrives one byte every 2 s; the server
// must end the request within its read timeout (plus slack) with a 408
// OperationOutcome, never wait for the whole body.
func (s *attackServer) drip() (int, []byte, error) {
	conn, err := net.Dial("tcp", s.p.addr)
	if err != nil {
		return 0, nil, err
	}
	defer conn.Close()
	body := `{"resourceType":"Patient","name":[{"family":"drip"}]}`
	fmt.Fprintf(conn, "POST /Patient HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/fhir+json\r\nContent-Length: %d\r\n\r\n",
		s.p.addr, s.tokA, len(body))
	start := time.Now()
	done := make(chan []byte, 1)
	go func() {
		raw, _ := io.ReadAll(conn)
		done <- raw
	}()
	limit := time.Duration(s.readTimeout)*time.Second + 10*time.Second
	for i := 0; ; i++ {
		select {
		case raw := <-done:
			took := time.Since(start)
			if took > limit {
				return 0, raw, fmt.Errorf("drip ended after %v, want within %v", took, limit)
			}
			if len(raw) == 0 {
				return 0, nil, fmt.Errorf("connection closed after %v without an answer, want a 408 OperationOutcome", took)
			}
			resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
			if err != nil {
				return 0, raw, err
			}
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, b, nil
		case <-time.After(2 * time.Second):
			if time.Since(start) > limit {
				return 0, nil, fmt.Errorf("the dripping body was still being read after %v", time.Since(start))
			}
			if i < len(body) {
				_, _ = conn.Write([]byte{body[i]})
			}
		}
	}
}

// quota creates subscriptions as patient A until the server refuses; it
// returns the refusal, which must come at maxPerOwner (A holds one).
func (s *attackServer) quota() (int, []byte, error) {
	hdr := http.Header{"Authorization": {"Bearer " + s.tokA}}
	for i := 1; i <= s.maxPerOwner+1; i++ {
		code, out, err := fhirDoWith(context.Background(), "POST", s.p.base+"/Subscription",
			topicSubscription(s.hook.url+"/ok", criticalTopic, "id-only"), hdr)
		if err != nil {
			return 0, nil, err
		}
		if code != 201 {
			raw, _ := json.Marshal(out)
			if i+1 != s.maxPerOwner+1 { // A already held one
				return code, raw, fmt.Errorf("refused at A's subscription %d, want at %d", i+1, s.maxPerOwner+1)
			}
			return code, raw, nil
		}
	}
	return 201, nil, fmt.Errorf("no refusal past %d subscriptions", s.maxPerOwner)
}

// errorEcho creates B's subscription to endpoint, waits for status error
// and returns its Subscription and $status; Subscription.error must
// contain want and none of the details the endpoint or the network gave
// (the answer's body is also checked for the internal page by the table).
func (s *attackServer) errorEcho(endpoint, want string, details ...string) func() (int, []byte, error) {
	return func() (int, []byte, error) {
		hdr := http.Header{"Authorization": {"Bearer " + s.tokB}}
		code, out, err := fhirDoWith(context.Background(), "POST", s.p.base+"/Subscription",
			topicSubscription(endpoint, criticalTopic, "id-only"), hdr)
		if err != nil || code != 201 {
			return code, nil, fmt.Errorf("create: %d %v", code, err)
		}
		id := out["id"].(string)
		// B's own subscription is deleted after, so that B's quota stays clear.
		defer func() { _, _, _ = fhirDoWith(context.Background(), "DELETE", s.p.base+"/Subscription/"+id, nil, hdr) }()
		deadline := time.Now().Add(60 * time.Second)
		for {
			code, out, err = fhirDoWith(context.Background(), "GET", s.p.base+"/Subscription/"+id, nil, hdr)
			if err != nil {
				return code, nil, err
			}
			if out["status"] == "error" {
				break
			}
			if time.Now().After(deadline) {
				return code, nil, fmt.Errorf("status %v after 60 s, want error", out["status"])
			}
			time.Sleep(50 * time.Millisecond)
		}
		sub, _ := json.Marshal(out)
		_, st, err := fhirDoWith(context.Background(), "GET", s.p.base+"/Subscription/"+id+"/$status", nil, hdr)
		both := append(sub, mustMarshal(st)...)
		msg, _ := out["error"].(string)
		if !strings.Contains(msg, want) {
			return 200, both, fmt.Errorf("Subscription.error %q does not say %q", msg, want)
		}
		for _, d := range details {
			if bytes.Contains(both, []byte(d)) {
				return 200, both, fmt.Errorf("Subscription.error or $status shows %q", d)
			}
		}
		return 200, both, err
	}
}

func mustMarshal(v any) []byte { b, _ := json.Marshal(v); return b }

// legacyMasked watches Subscription changes on the legacy /ws channel
// with the admin's and with A's token while B updates its subscription
// and then A writes an Observation (the later marker): the admin sees B's
// change with the secrets masked, A sees its Observation and, before it,
// nothing of B's subscription.
func (s *attackServer) legacyMasked() (int, []byte, error) {
	admin, err := s.legacyWatcher(s.admin, "Subscription")
	if err != nil {
		return 0, nil, err
	}
	defer admin.c.Close()
	a, err := s.legacyWatcher(s.tokA, "Subscription", "Observation")
	if err != nil {
		return 0, nil, err
	}
	defer a.c.Close()
	update := func(tok, id, reason string) error {
		hdr := http.Header{"Authorization": {"Bearer " + tok}}
		_, out, err := fhirDoWith(context.Background(), "GET", s.p.base+"/Subscription/"+id, nil, hdr)
		if err != nil {
			return err
		}
		out["reason"] = reason
		if code, _, err := fhirDoWith(context.Background(), "PUT", s.p.base+"/Subscription/"+id, out, hdr); err != nil || code != 200 {
			return fmt.Errorf("update of Subscription/%s: %d %v", id, code, err)
		}
		return nil
	}
	if err := update(s.tokB, s.subB, "B watched on the legacy channel"); err != nil {
		return 0, nil, err
	}
	marker := map[string]any{"resourceType": "Observation", "status": "final", "code": map[string]any{"text": "marker"},
		"subject": map[string]any{"reference": "Patient/pat-a"}, "note": []any{map[string]any{"text": "A watched on the legacy channel"}}}
	if code, _, err := fhirDoWith(context.Background(), "POST", s.p.base+"/Observation", marker,
		http.Header{"Authorization": {"Bearer " + s.tokA}}); err != nil || code != 201 {
		return code, nil, fmt.Errorf("A's marker Observation: %d %v", code, err)
	}
	errAdmin := admin.until("B watched on the legacy channel")
	errA := a.until("A watched on the legacy channel")
	frames := append(admin.frames, a.frames...)
	switch {
	case errAdmin != nil:
		return 0, frames, errAdmin
	case errA != nil:
		return 0, frames, errA
	case !bytes.Contains(admin.frames, []byte(`Authorization: ***`)):
		return 0, frames, fmt.Errorf("the legacy update does not show the header masked")
	case bytes.Contains(a.frames, []byte(s.subB)):
		return 0, frames, fmt.Errorf("A's legacy connection received B's subscription")
	}
	return 200, frames, nil
}

// legacyConn is a legacy /ws connection subscribed to some resource
// types, with the frames it received.
type legacyConn struct {
	c      *websocket.Conn
	frames []byte
}

func (s *attackServer) legacyWatcher(tok string, types ...string) (*legacyConn, error) {
	u := "ws" + strings.TrimPrefix(s.p.base, "http") + "/ws?access_token=" + url.QueryEscape(tok)
	c, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		return nil, err
	}
	l := &legacyConn{c: c}
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	sub := mustMarshal(map[string]any{"type": "subscribe", "data": map[string]any{"subscription_id": "subs", "resource_types": types}})
	if err := c.WriteMessage(websocket.TextMessage, sub); err != nil {
		c.Close()
		return nil, err
	}
	if err := l.until(`"subscribed"`); err != nil {
		c.Close()
		return nil, err
	}
	return l, nil
}

// until reads frames until one contains text.
func (l *legacyConn) until(text string) error {
	for {
		_, f, err := l.c.ReadMessage()
		if err != nil {
			return fmt.Errorf("legacy frames until %q: %v", text, err)
		}
		l.frames = append(append(l.frames, f...), '\n')
		if bytes.Contains(f, []byte(text)) {
			return nil
		}
	}
}

// secretKept sends B's subscription back as read (masked) and proves the
// stored header survived: the new handshake carries the real value.
func (s *attackServer) secretKept() (int, []byte, error) {
	hdr := http.Header{"Authorization": {"Bearer " + s.tokB}}
	_, out, err := fhirDoWith(context.Background(), "GET", s.p.base+"/Subscription/"+s.subB, nil, hdr)
	if err != nil {
		return 0, nil, err
	}
	out["status"] = "requested"
	out["reason"] = "edited by its owner"
	before := s.hook.count()
	code, res, err := fhirDoWith(context.Background(), "PUT", s.p.base+"/Subscription/"+s.subB, out, hdr)
	raw, _ := json.Marshal(res)
	if err != nil || code != 200 {
		return code, raw, err
	}
	if !s.hook.waitAuth(before+1, 30*time.Second) {
		return code, raw, fmt.Errorf("no handshake with the stored Authorization header after the masked update")
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if _, out, err = fhirDoWith(context.Background(), "GET", s.p.base+"/Subscription/"+s.subB, nil, hdr); err == nil && out["status"] == "active" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return code, raw, nil
}

func repeatParam(name string, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte('&')
		}
		fmt.Fprintf(&b, "%s=x%d", name, i)
	}
	return b.String()
}

func orValues(n int) string {
	vs := make([]string, n)
	for i := range vs {
		vs[i] = fmt.Sprintf("http://loinc.org|%d-0", i)
	}
	return url.QueryEscape(strings.Join(vs, ","))
}
