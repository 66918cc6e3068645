package channels_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/fhirsub/fhirsub/channels"
)

func TestOriginalDialectFrames(t *testing.T) {
	at := time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)
	ev, err := channels.NewLegacyUpdate(channels.LegacyUpdate{Seq: 7, Time: at, Action: channels.ActionCreated,
		ResourceType: "Observation", ResourceID: "obs-123", PatientIDs: []string{"patient-123"}, Resource: []byte(`{"resourceType":"Observation"}`)})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"update","data":{"action":"created","resource_type":"Observation","resource_id":"obs-123","patient_id":"patient-123","resource":{"resourceType":"Observation"}},"timestamp":"2024-01-01T12:00:00Z","message_id":null}`
	if got := string(ev.DialectFrame(channels.DialectOriginal, 0)); got != want {
		t.Errorf("original update:\n got %s\nwant %s", got, want)
	}
	del, err := channels.NewLegacyUpdate(channels.LegacyUpdate{Seq: 8, Time: at, Action: channels.ActionDeleted,
		ResourceType: "Observation", ResourceID: "obs-123", PatientIDs: []string{"patient-123"}})
	if err != nil {
		t.Fatal(err)
	}
	want = `{"type":"update","data":{"action":"deleted","resource_type":"Observation","resource_id":"obs-123","patient_id":null,"resource":null},"timestamp":"2024-01-01T12:00:00Z","message_id":null}`
	if got := string(del.DialectFrame(channels.DialectOriginal, 0)); got != want {
		t.Errorf("original deletion:\n got %s\nwant %s", got, want)
	}
	if got := string(del.Frame(0)); !strings.Contains(got, `"seq":8,`) || !strings.Contains(got, `"patient_id":"patient-123","resource":null`) {
		t.Errorf("extended deletion keeps seq and patient_id: %s", got)
	}
	ce, err := channels.NewLegacyClinicalEvent(channels.LegacyClinicalEvent{Seq: 9, Time: at, EventType: "critical_result",
		ResourceType: "Observation", ResourceID: "obs-123", PatientIDs: []string{"patient-123"}, Details: map[string]any{"value": 6.9}})
	if err != nil {
		t.Fatal(err)
	}
	want = `{"type":"update","data":{"action":"clinical_event","resource_type":"Observation","resource_id":"obs-123","patient_id":"patient-123","resource":{"event_type":"critical_result","details":{"patient_id":"patient-123","value":6.9}}},"timestamp":"2024-01-01T12:00:00Z","message_id":null}`
	if got := string(ce.DialectFrame(channels.DialectOriginal, 0)); got != want {
		t.Errorf("original clinical event:\n got %s\nwant %s", got, want)
	}
}

// memPositions is an in-memory channels.LegacyPositions. With slow set,
// SavePosition signals saving and waits until slow is closed.
type memPositions struct {
	mu     sync.Mutex
	m      map[string]channels.LegacyPosition
	saving chan struct{}
	slow   chan struct{}
}

func (p *memPositions) Position(_ context.Context, owner, id string) (channels.LegacyPosition, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.m[owner+"|"+id], nil
}

func (p *memPositions) SavePosition(_ context.Context, owner, id string, pos channels.LegacyPosition) error {
	if p.slow != nil {
		p.saving <- struct{}{}
		<-p.slow
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.m[owner+"|"+id]
	if pos.Seq > old.Seq || pos.Seq == old.Seq && pos.Skip > old.Skip {
		p.m[owner+"|"+id] = pos
	}
	return nil
}

// history is a change feed kept in memory: Publish through it, Replay
// from it.
type history struct {
	t      *testing.T
	legacy *channels.Legacy
	mu     sync.Mutex
	events map[int64][]*channels.LegacyEvent
	reads  int
	seq    int64
}

func (h *history) Replay(_ context.Context, after, upTo int64) ([]*channels.LegacyEvent, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reads++
	var out []*channels.LegacyEvent
	for s := after + 1; s <= upTo; s++ {
		out = append(out, h.events[s]...)
	}
	return out, nil
}

// publish publishes n changes; match(i) decides which are an Observation
// of p1 (the others a Condition of p2). It returns the seqs of the
// Observations.
func (h *history) publish(n int, match func(seq int64) bool) []string {
	var seqs []string
	for range n {
		h.mu.Lock()
		h.seq++
		seq := h.seq
		h.mu.Unlock()
		typ, patient := "Condition", "p2"
		if match(seq) {
			typ, patient = "Observation", "p1"
			seqs = append(seqs, fmt.Sprint(seq))
		}
		ev := update(h.t, seq, channels.ActionCreated, typ, fmt.Sprint(seq), []string{patient}, `{"resourceType":"`+typ+`"}`)
		h.mu.Lock()
		h.events[seq] = []*channels.LegacyEvent{ev}
		h.mu.Unlock()
		h.legacy.Publish(seq, []*channels.LegacyEvent{ev})
	}
	return seqs
}

// TestOriginalResubscribeReplay reconnects an original-dialect client and
// re-subscribes its subscription_id: it gets what it missed (reading back
// window after window of ReplayLimit changes until it has at least 100
// messages), in order, then live messages.
func TestOriginalResubscribeReplay(t *testing.T) {
	checkGoroutines(t)
	h, hub, url := serveOriginal(t, &memPositions{m: map[string]channels.LegacyPosition{}})
	connect := func() *websocketClient { return connectOriginal(t, url) }
	away := func(c *websocketClient) {
		_ = c.ws.Close()
		eventually(t, "the disconnect", func() bool { return hub.Len() == 0 })
	}
	every := func(n int64) func(int64) bool { return func(s int64) bool { return s%n == 0 } }

	c := connect()
	if got := c.ids(h.publish(3, every(1))); got != 3 {
		t.Fatalf("live: %d", got)
	}
	away(c)
	// 247 changes, 24 of them for the subscription: more than ReplayLimit
	// changes, fewer than 100 messages: all of them come back.
	missed := h.publish(247, every(10))
	c = connect()
	if got := c.ids(missed); got != len(missed) {
		t.Fatalf("replayed %d of %d", got, len(missed))
	}
	c.live(h)
	away(c)
	// 2,500 changes, 500 for the subscription: the replay reads back until
	// it has at least 100 (the last ones, in order), not all 2,500.
	missed = h.publish(2500, every(5))
	h.mu.Lock()
	h.reads = 0
	h.mu.Unlock()
	c = connect()
	got := c.until(h)
	h.mu.Lock()
	reads := h.reads
	h.mu.Unlock()
	t.Logf("after 2,500 changes away (500 matching): %d replayed in %d reads of %d changes", len(got), reads, 100)
	if len(got) < 100 || fmt.Sprint(got) != fmt.Sprint(missed[len(missed)-len(got):]) {
		t.Fatalf("replayed %d (%v), want at least the last 100 of %d in order", len(got), got, len(missed))
	}
}

// websocketClient reads update frames of the original dialect.
type websocketClient struct {
	t  *testing.T
	ws *websocket.Conn
}

// ids reads len(want) updates and checks their resource ids.
func (c *websocketClient) ids(want []string) int {
	c.t.Helper()
	for i, id := range want {
		m := recv(c.t, c.ws)
		if m.Type != "update" || m.Data["resource_id"] != id {
			c.t.Fatalf("message %d: %s, want the update of %s", i, m.raw, id)
		}
	}
	return len(want)
}

// live publishes a matching change and expects it next.
func (c *websocketClient) live(h *history) {
	c.t.Helper()
	c.ids(h.publish(1, func(int64) bool { return true }))
}

// until publishes a matching marker change and returns the resource ids
// of the updates before it.
func (c *websocketClient) until(h *history) []string {
	c.t.Helper()
	marker := h.publish(1, func(int64) bool { return true })[0]
	var got []string
	for {
		m := recv(c.t, c.ws)
		if m.Type != "update" {
			c.t.Fatalf("got %s", m.raw)
		}
		id := fmt.Sprint(m.Data["resource_id"])
		if id == marker {
			return got
		}
		got = append(got, id)
	}
}

// serveOriginal serves the original dialect on /api/ws with an in-memory
// change feed and positions.
func serveOriginal(t *testing.T, positions channels.LegacyPositions) (*history, *channels.Hub, string) {
	h := &history{t: t, events: map[int64][]*channels.LegacyEvent{}}
	hub, err := channels.New(channels.Config{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	legacy, err := channels.NewLegacy(channels.LegacyConfig{ReplayLimit: 100, Replayer: h, Positions: positions})
	if err != nil {
		t.Fatal(err)
	}
	h.legacy = legacy
	mux := http.NewServeMux()
	mux.Handle("/api/ws", hub.Handler(legacy.Original("/api/ws")))
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = hub.Shutdown(ctx)
		srv.Close()
	})
	return h, hub, "ws" + strings.TrimPrefix(srv.URL, "http") + "/api/ws"
}

// connectOriginal dials, reads the welcome and subscribes "a" to p1's
// Observations.
func connectOriginal(t *testing.T, url string) *websocketClient {
	c := &websocketClient{t: t, ws: mustDial(t, url)}
	if m := recv(t, c.ws); m.Type != "welcome" {
		t.Fatalf("first message %s", m.raw)
	}
	send(t, c.ws, `{"type":"subscribe","data":{"subscription_id":"a","resource_types":["Observation"],"patient_ids":["p1"]}}`)
	if m := recv(t, c.ws); m.Type != "subscription" || m.Data["action"] != "created" {
		t.Fatalf("ack: %s", m.raw)
	}
	return c
}

// TestOriginalResubscribeWaitsForTheOldPosition re-subscribes while the
// previous connection is still saving its position (the original client
// reconnects at once): the re-subscribe waits for it, and gets what it
// missed.
func TestOriginalResubscribeWaitsForTheOldPosition(t *testing.T) {
	checkGoroutines(t)
	pos := &memPositions{m: map[string]channels.LegacyPosition{}, saving: make(chan struct{}, 1), slow: make(chan struct{})}
	h, _, url := serveOriginal(t, pos)
	every := func(int64) bool { return true }
	c := connectOriginal(t, url)
	c.ids(h.publish(2, every))
	_ = c.ws.Close()
	<-pos.saving // the old session is saving its position
	missed := h.publish(3, every)
	// Reconnect and re-subscribe while the save is still blocked; the ack
	// can only come once it is done.
	c = &websocketClient{t: t, ws: mustDial(t, url)}
	if m := recv(t, c.ws); m.Type != "welcome" {
		t.Fatalf("first message %s", m.raw)
	}
	send(t, c.ws, `{"type":"subscribe","data":{"subscription_id":"a","resource_types":["Observation"],"patient_ids":["p1"]}}`)
	// Give the subscribe time to reach the server before the save ends
	// (the test passes either way; this makes it exercise the wait).
	time.Sleep(100 * time.Millisecond)
	close(pos.slow)
	if m := recv(t, c.ws); m.Type != "subscription" || m.Data["action"] != "created" {
		t.Fatalf("ack: %s", m.raw)
	}
	got := append(c.until(h), "")
	if fmt.Sprint(got[:len(got)-1]) != fmt.Sprint(missed) {
		t.Fatalf("after reconnecting during the save: %v, want %v", got, missed)
	}
}

// TestOriginalRenderChurnLosesNothing unsubscribes and subscribes the same
// filter under a new id (the original hooks do it on every render), with
// changes published in between: the new subscription replays them.
func TestOriginalRenderChurnLosesNothing(t *testing.T) {
	checkGoroutines(t)
	h, _, url := serveOriginal(t, &memPositions{m: map[string]channels.LegacyPosition{}})
	every := func(int64) bool { return true }
	c := connectOriginal(t, url)
	c.ids(h.publish(1, every))
	var want, got []string
	held := "a"
	for render := range 20 {
		send(t, c.ws, `{"type":"unsubscribe","data":{"subscription_id":"`+held+`"}}`)
		if m := recv(t, c.ws); m.Type != "subscription" || m.Data["action"] != "removed" {
			t.Fatalf("render %d: %s", render, m.raw)
		}
		want = append(want, h.publish(2, every)...) // between the two messages
		send(t, c.ws, fmt.Sprintf(`{"type":"subscribe","data":{"subscription_id":"r%d","resource_types":["Observation"],"patient_ids":["p1"]}}`, render))
		if m := recv(t, c.ws); m.Type != "subscription" || m.Data["action"] != "created" {
			t.Fatalf("render %d: %s", render, m.raw)
		}
		held = fmt.Sprint("r", render)
		got = append(got, c.until(h)...) // the replayed ones, then a live marker
	}
	t.Logf("20 renders: %d updates published between unsubscribe and subscribe, %d received", len(want), len(got))
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}
