package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// wsListener is one websocket connection whose notifications go to a
// tracker; its reading goroutine ends when the connection is closed.
type wsListener struct {
	conn *websocket.Conn
	done chan struct{}
	bad  atomic.Int64 // frames that could not be understood
}

var dialer = websocket.Dialer{HandshakeTimeout: 10 * time.Second}

// dial connects to a websocket on the server at base (whatever host a
// server-given URL names, the load client only dials base's host).
func dial(ctx context.Context, base, rawURL string) (*websocket.Conn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	b, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	u.Host = b.Host
	u.Scheme = strings.Replace(b.Scheme, "http", "ws", 1)
	c, resp, err := dialer.DialContext(ctx, u.String(), nil)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close() // the upgrade's answer carries nothing we read
	}
	if err != nil {
		if resp != nil {
			return nil, &dialError{URL: u.String(), Status: resp.StatusCode, Err: err}
		}
		return nil, fmt.Errorf("dial %s: %w", u, err)
	}
	return c, nil
}

// dialError is a websocket upgrade the server answered with an HTTP
// status (404: the path is not served).
type dialError struct {
	URL    string
	Status int
	Err    error
}

func (e *dialError) Error() string {
	return fmt.Sprintf("dial %s: HTTP %d: %v", e.URL, e.Status, e.Err)
}

// readUntil reads frames until accept says one is the awaited answer.
func readUntil(c *websocket.Conn, timeout time.Duration, accept func([]byte) (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		_ = c.SetReadDeadline(deadline)
		_, raw, err := c.ReadMessage()
		if err != nil {
			return err
		}
		ok, err := accept(raw)
		if err != nil || ok {
			_ = c.SetReadDeadline(time.Time{})
			return err
		}
	}
}

// listenBackport binds the websocket subscription sub with a token from
// $get-ws-binding-token and, after its handshake, records the focus of
// every event notification.
func listenBackport(ctx context.Context, c *client, sub string, tr *tracker) (*wsListener, error) {
	token, wsURL, err := c.bindingToken(ctx, sub)
	if err != nil {
		return nil, err
	}
	conn, err := dial(ctx, c.base, wsURL)
	if err != nil {
		return nil, err
	}
	if err := conn.WriteMessage(websocket.TextMessage, []byte("bind-with-token "+token)); err != nil {
		_ = conn.Close()
		return nil, err
	}
	err = readUntil(conn, 15*time.Second, func(raw []byte) (bool, error) {
		n, err := parseNotice(raw)
		if err != nil {
			return false, fmt.Errorf("backport bind: %w: %.200s", err, raw)
		}
		return n.Type == "handshake", nil
	})
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("backport bind of %s: %w", sub, err)
	}
	l := &wsListener{conn: conn, done: make(chan struct{})}
	go l.read(func(raw []byte, at time.Time) bool {
		n, err := parseNotice(raw)
		if err != nil {
			return false
		}
		if n.Type == "event-notification" {
			for _, id := range n.IDs {
				tr.arrive(id, at)
			}
		}
		return true
	})
	return l, nil
}

// legacyFrame is the part of a legacy channel message the load reads.
type legacyFrame struct {
	Type string `json:"type"`
	Data struct {
		Action       string `json:"action"`
		ResourceType string `json:"resource_type"`
		ResourceID   string `json:"resource_id"`
	} `json:"data"`
}

// listenLegacy connects to the legacy channel at path, subscribes to the
// patient's Observations and records the resource id of every update.
// Both dialects are understood: the subscribe is answered "subscribed"
// (extended) or "subscription" (original), after an optional welcome.
func listenLegacy(ctx context.Context, base, path, clientID, patient string, tr *tracker) (*wsListener, error) {
	conn, err := dial(ctx, base, base+path+"?client_id="+url.QueryEscape(clientID))
	if err != nil {
		return nil, err
	}
	sub := fmt.Sprintf(`{"type":"subscribe","data":{"subscription_id":%q,"resource_types":["Observation"],"patient_ids":[%q]}}`,
		clientID, patient)
	if err := conn.WriteMessage(websocket.TextMessage, []byte(sub)); err != nil {
		_ = conn.Close()
		return nil, err
	}
	err = readUntil(conn, 15*time.Second, func(raw []byte) (bool, error) {
		var f legacyFrame
		if err := json.Unmarshal(raw, &f); err != nil {
			return false, fmt.Errorf("legacy subscribe: %w: %.200s", err, raw)
		}
		if f.Type == "error" {
			return false, fmt.Errorf("legacy subscribe refused: %.300s", raw)
		}
		return f.Type == "subscribed" || f.Type == "subscription", nil
	})
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("legacy %s subscribe: %w", path, err)
	}
	l := &wsListener{conn: conn, done: make(chan struct{})}
	go l.read(func(raw []byte, at time.Time) bool {
		var f legacyFrame
		if err := json.Unmarshal(raw, &f); err != nil {
			return false
		}
		// The original dialect sends a clinical event as a second update
		// (action clinical_event) of the same resource: not a duplicate.
		if f.Type == "update" && f.Data.Action != "clinical_event" && f.Data.ResourceType == "Observation" && f.Data.ResourceID != "" {
			tr.arrive(f.Data.ResourceID, at)
		}
		return true
	})
	return l, nil
}

// read hands each frame with its arrival time to handle until the
// connection ends.
func (l *wsListener) read(handle func(raw []byte, at time.Time) bool) {
	defer close(l.done)
	for {
		_, raw, err := l.conn.ReadMessage()
		if err != nil {
			return
		}
		if !handle(raw, time.Now()) {
			l.bad.Add(1)
		}
	}
}

// close ends the connection with a normal closure and waits for the
// reader. A connection that broke during the run shows as lost
// notifications, not here.
func (l *wsListener) close() {
	_ = l.conn.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, "load done"), time.Now().Add(time.Second))
	select {
	case <-l.done:
	case <-time.After(3 * time.Second):
	}
	_ = l.conn.Close()
	<-l.done
}

// notServed reports whether err is a websocket upgrade answered 404.
func notServed(err error) bool {
	var de *dialError
	return errors.As(err, &de) && de.Status == http.StatusNotFound
}
