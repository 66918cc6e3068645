package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// notification is what the receiver understood of one notification Bundle.
type notification struct {
	Subscription string   // the id: last path segment of the subscription reference
	Type         string   // handshake, heartbeat, event-notification, ...
	Status       string   // the subscription status the Bundle reports
	Events       []int    // notification-event event-numbers
	Foci         []string // the focus reference of each event ("" for empty payloads)
}

// parseNotification reads the status Parameters (first entry) of a
// notification or $events Bundle.
func parseNotification(b map[string]any) (notification, error) {
	var n notification
	if b["resourceType"] != "Bundle" {
		return n, fmt.Errorf("resourceType %v, want Bundle", b["resourceType"])
	}
	entries := asSlice(b["entry"])
	if len(entries) == 0 {
		return n, errors.New("bundle has no entries")
	}
	first, _ := entries[0].(map[string]any)
	params, _ := first["resource"].(map[string]any)
	if params["resourceType"] != "Parameters" {
		return n, fmt.Errorf("first entry is %v, not the status Parameters", params["resourceType"])
	}
	for _, p := range asSlice(params["parameter"]) {
		pm, _ := p.(map[string]any)
		switch pm["name"] {
		case "subscription":
			ref, _ := pm["valueReference"].(map[string]any)
			s, _ := ref["reference"].(string)
			n.Subscription = s[strings.LastIndex(s, "/")+1:]
		case "type":
			n.Type, _ = pm["valueCode"].(string)
		case "status":
			n.Status, _ = pm["valueCode"].(string)
		case "notification-event":
			num, focus := -1, ""
			for _, part := range asSlice(pm["part"]) {
				pp, _ := part.(map[string]any)
				switch pp["name"] {
				case "event-number":
					s, _ := pp["valueString"].(string)
					v, err := strconv.Atoi(s)
					if err != nil {
						return n, fmt.Errorf("event-number %v is not a number string", pp["valueString"])
					}
					num = v
				case "focus":
					ref, _ := pp["valueReference"].(map[string]any)
					focus, _ = ref["reference"].(string)
				}
			}
			if num < 1 {
				return n, errors.New("notification-event without a positive event-number")
			}
			n.Events = append(n.Events, num)
			n.Foci = append(n.Foci, focus)
		}
	}
	if n.Subscription == "" || n.Type == "" {
		return n, errors.New("status Parameters lack subscription or type")
	}
	return n, nil
}

// subLog is what a hookReceiver saw of one subscription.
type subLog struct {
	handshakes int
	deliveries map[int]int         // event number → times received with a 2xx answer
	epochs     map[int][]int       // event number → the epoch of each reception
	focus      map[int]string      // event number → focus reference
	failures   []time.Time         // requests answered with a non-2xx status
	notes      []seenNote          // every notification, in arrival order
	times      map[int][]time.Time // event number → the time of each 2xx reception
}

// seenNote is one notification as received: its type and reported
// status, whether it was answered 2xx, and when.
type seenNote struct {
	Type, Status string
	OK           bool
	At           time.Time
}

// hookReceiver is a real HTTP rest-hook endpoint that records every
// notification, keyed by subscription id and event number. It answers
// with a settable status and can be taken down (connection refused) and
// brought back on the same address.
type hookReceiver struct {
	t      testing.TB
	addr   string
	status sync.Mutex // guards code
	code   int

	mu     sync.Mutex
	srv    *httptest.Server
	subs   map[string]*subLog
	bad    []string // requests that were not notification Bundles
	notify chan struct{}
	epoch  atomic.Int64 // stamped on each accepted connection
}

// epochKey is the context key of a connection's epoch.
type epochKey struct{}

// newHookReceiver starts a receiver on a loopback port; it is closed on
// cleanup.
func newHookReceiver(t testing.TB) *hookReceiver {
	t.Helper()
	r := &hookReceiver{t: t, code: http.StatusOK, subs: map[string]*subLog{}, notify: make(chan struct{}, 1)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	r.serve(ln)
	t.Cleanup(r.down)
	return r
}

// URL is the endpoint to put in Subscription.channel.endpoint.
func (r *hookReceiver) URL() string { return "http://" + r.addr + "/hook" }

func (r *hookReceiver) serve(ln net.Listener) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(r.handle))
	srv.Config.ConnContext = func(ctx context.Context, _ net.Conn) context.Context {
		return context.WithValue(ctx, epochKey{}, r.epoch.Load())
	}
	_ = srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
}

// down closes the listener and every connection: deliveries are refused.
func (r *hookReceiver) down() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		srv.CloseClientConnections()
		srv.Close()
	}
}

// up listens again on the same address.
func (r *hookReceiver) up() {
	r.t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 100; i++ {
		if ln, err = net.Listen("tcp", r.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatalf("receiver cannot listen on %s again: %v", r.addr, err)
	}
	r.serve(ln)
}

// nextEpoch starts a new epoch: connections accepted from now on are
// stamped with it. The crash test calls it after each kill, so that the
// receptions of an event can be attributed to server processes.
func (r *hookReceiver) nextEpoch() { r.epoch.Add(1) }

// answer sets the status code of the next answers.
func (r *hookReceiver) answer(code int) {
	r.status.Lock()
	r.code = code
	r.status.Unlock()
}

func (r *hookReceiver) handle(w http.ResponseWriter, req *http.Request) {
	raw, err := io.ReadAll(req.Body)
	r.status.Lock()
	code := r.code
	r.status.Unlock()
	var b map[string]any
	if err == nil {
		err = json.Unmarshal(raw, &b)
	}
	var n notification
	if err == nil {
		n, err = parseNotification(b)
	}
	epoch, _ := req.Context().Value(epochKey{}).(int64)
	r.mu.Lock()
	if err != nil {
		r.bad = append(r.bad, fmt.Sprintf("%s %s: %v: %.200s", req.Method, req.URL.Path, err, raw))
	} else {
		l := r.subs[n.Subscription]
		if l == nil {
			l = &subLog{deliveries: map[int]int{}, epochs: map[int][]int{}, focus: map[int]string{}, times: map[int][]time.Time{}}
			r.subs[n.Subscription] = l
		}
		l.notes = append(l.notes, seenNote{Type: n.Type, Status: n.Status, OK: code/100 == 2, At: time.Now()})
		switch {
		case code/100 != 2:
			l.failures = append(l.failures, time.Now())
		case n.Type == "handshake":
			l.handshakes++
		default:
			for i, num := range n.Events {
				l.deliveries[num]++
				l.times[num] = append(l.times[num], time.Now())
				l.epochs[num] = append(l.epochs[num], int(epoch))
				if prev, ok := l.focus[num]; ok && prev != n.Foci[i] {
					r.bad = append(r.bad, fmt.Sprintf("Subscription/%s event %d delivered with two foci: %s and %s",
						n.Subscription, num, prev, n.Foci[i]))
				}
				l.focus[num] = n.Foci[i]
			}
		}
	}
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
	w.WriteHeader(code)
}

// snapshot returns a deep copy of what was received for one subscription.
func (r *hookReceiver) snapshot(id string) subLog {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := subLog{deliveries: map[int]int{}, epochs: map[int][]int{}, focus: map[int]string{}, times: map[int][]time.Time{}}
	l := r.subs[id]
	if l == nil {
		return out
	}
	out.handshakes = l.handshakes
	for k, v := range l.deliveries {
		out.deliveries[k] = v
	}
	for k, v := range l.epochs {
		out.epochs[k] = append([]int(nil), v...)
	}
	for k, v := range l.focus {
		out.focus[k] = v
	}
	for k, v := range l.times {
		out.times[k] = append([]time.Time(nil), v...)
	}
	out.failures = append(out.failures, l.failures...)
	out.notes = append(out.notes, l.notes...)
	return out
}

// malformed returns the requests that were not notification Bundles.
func (r *hookReceiver) malformed() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bad...)
}

// waitUntil polls cond (and wakes on every received request) until it
// holds or the timeout passes; it reports whether cond held.
func (r *hookReceiver) waitUntil(timeout time.Duration, cond func() bool) bool {
	return pollUntil(r.notify, timeout, cond)
}

// pollUntil checks cond every 50 ms and whenever wake fires, until it
// holds or the timeout passes, and reports whether it held (checked once
// more at the deadline). The receivers of these tests wait with it.
func pollUntil(wake <-chan struct{}, timeout time.Duration, cond func() bool) bool {
	deadline := time.After(timeout)
	for !cond() {
		select {
		case <-wake:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			return cond()
		}
	}
	return true
}

// contiguous reports whether the keys of m are exactly 1..n.
func contiguous(m map[int]int, n int) bool {
	if len(m) != n {
		return false
	}
	for i := 1; i <= n; i++ {
		if m[i] == 0 {
			return false
		}
	}
	return true
}
