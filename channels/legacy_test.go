package channels_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/fhirsub/fhirsub/channels"
)

// memLog publishes events to a Legacy and keeps them for replays: a
// function-level stand-in for the feed.
type memLog struct {
	legacy *channels.Legacy
	mu     sync.Mutex
	events []*channels.LegacyEvent
}

func (m *memLog) publish(seq int64, evs ...*channels.LegacyEvent) {
	m.mu.Lock()
	m.events = append(m.events, evs...)
	m.mu.Unlock()
	m.legacy.Publish(seq, evs)
}

func (m *memLog) Replay(_ context.Context, after, upTo int64) ([]*channels.LegacyEvent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*channels.LegacyEvent
	for _, ev := range m.events {
		if ev.Seq > after && ev.Seq <= upTo {
			out = append(out, ev)
		}
	}
	return out, nil
}

func serveWithLog(t *testing.T, hcfg channels.Config, lcfg channels.LegacyConfig) (*testServer, *memLog) {
	t.Helper()
	log := &memLog{}
	lcfg.Replayer = log
	ts := mustServe(t, hcfg, lcfg)
	log.legacy = ts.legacy
	return ts, log
}

const obs = `{"resourceType":"Observation","id":"o1","status":"final","subject":{"reference":"Patient/p1"}}`

func TestLegacyFilters(t *testing.T) {
	checkGoroutines(t)
	ts, log := serveWithLog(t, channels.Config{}, channels.LegacyConfig{})
	byType := mustDial(t, ts.url)
	subscribe(t, byType, "t", []string{"Observation"}, nil)
	byPatient := mustDial(t, ts.url)
	subscribe(t, byPatient, "p", []string{"*"}, []string{"Patient/p2"})
	all := mustDial(t, ts.url)
	subscribe(t, all, "a", []string{"*"}, []string{})

	log.publish(1, update(t, 1, channels.ActionCreated, "Observation", "o1", []string{"p1"}, obs))
	log.publish(2, update(t, 2, channels.ActionCreated, "Condition", "c1", []string{"p2"}, `{"resourceType":"Condition","id":"c1"}`))
	log.publish(3, update(t, 3, channels.ActionCreated, "Practitioner", "pr", nil, `{"resourceType":"Practitioner","id":"pr"}`))
	// In two compartments: the patient filter matches the second.
	log.publish(4, update(t, 4, channels.ActionDeleted, "Group", "g", []string{"p1", "p2"}, ""))

	m := recvType(t, byType, "update")
	if *m.Seq != 1 || m.Data["resource_type"] != "Observation" || m.Data["patient_id"] != "p1" {
		t.Errorf("type filter got %s", m.raw)
	}
	expectNothingQueued(t, byType)

	m = recvType(t, byPatient, "update")
	if *m.Seq != 2 || m.Data["patient_id"] != "p2" {
		t.Errorf("patient filter got %s", m.raw)
	}
	m = recvType(t, byPatient, "update")
	if *m.Seq != 4 || m.Data["patient_id"] != "p2" || m.Data["resource"] != nil || m.Data["action"] != "deleted" {
		t.Errorf("patient filter got %s, want the Group deletion with patient_id p2", m.raw)
	}
	expectNothingQueued(t, byPatient)

	want := []struct {
		seq     int64
		patient any
	}{{1, "p1"}, {2, "p2"}, {3, nil}, {4, "p1"}}
	for _, w := range want {
		m := recvType(t, all, "update")
		if *m.Seq != w.seq || m.Data["patient_id"] != w.patient {
			t.Errorf("all got %s, want seq %d patient %v", m.raw, w.seq, w.patient)
		}
	}

	// Unsubscribe stops delivery.
	send(t, byType, `{"type":"unsubscribe","data":{"subscription_id":"t"}}`)
	recvType(t, byType, "unsubscribed")
	log.publish(5, update(t, 5, channels.ActionUpdated, "Observation", "o1", []string{"p1"}, obs))
	expectNothingQueued(t, byType)
}

func TestLegacyUpdateShape(t *testing.T) {
	ev := update(t, 7, channels.ActionDeleted, "Observation", "obs-123", []string{"patient-123"}, "")
	want := `{"type":"update","seq":7,"data":{"action":"deleted","resource_type":"Observation","resource_id":"obs-123","patient_id":"patient-123","resource":null},"timestamp":"2024-01-01T12:00:00Z"}`
	if got := string(ev.Frame(0)); got != want {
		t.Errorf("frame\n got %s\nwant %s", got, want)
	}
	ev = update(t, 8, channels.ActionCreated, "Practitioner", "x", nil, `{"resourceType":"Practitioner","id":"x"}`)
	if got := string(ev.Frame(0)); !strings.Contains(got, `"patient_id":null,"resource":{"resourceType":"Practitioner","id":"x"}`) {
		t.Errorf("frame %s", got)
	}
	for _, bad := range []channels.LegacyUpdate{
		{Action: "moved", ResourceType: "A", ResourceID: "b", Resource: json.RawMessage(`{}`)},
		{Action: channels.ActionCreated, ResourceID: "b", Resource: json.RawMessage(`{}`)},
		{Action: channels.ActionCreated, ResourceType: "A", ResourceID: "b", Resource: json.RawMessage(`[1]`)},
		{Action: channels.ActionCreated, ResourceType: "A", ResourceID: "b", Resource: json.RawMessage(`{"a":`)},
	} {
		if _, err := channels.NewLegacyUpdate(bad); err == nil {
			t.Errorf("NewLegacyUpdate(%+v) accepted", bad)
		}
	}
	ce, err := channels.NewLegacyClinicalEvent(channels.LegacyClinicalEvent{Seq: 9, EventType: "critical_result",
		ResourceType: "Observation", PatientIDs: []string{"a", "b"}, Details: map[string]any{"code": "x"},
		Time: time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	want = `{"type":"clinical_event","seq":9,"data":{"event_type":"critical_result","details":{"code":"x","patient_id":"b"}},"timestamp":"2024-01-01T12:00:00Z"}`
	if got := string(ce.Frame(1)); got != want {
		t.Errorf("clinical frame\n got %s\nwant %s", got, want)
	}
}

func TestLegacyErrors(t *testing.T) {
	checkGoroutines(t)
	ts := mustServe(t, channels.Config{}, channels.LegacyConfig{MessageBurst: 100, MessageRate: 100})
	ws := mustDial(t, ts.url)
	for _, tc := range []struct{ name, in, code string }{
		{"malformed JSON", `{"type":`, channels.LegacyErrInvalidJSON},
		{"not an object", `[1,2]`, channels.LegacyErrInvalidJSON},
		{"no type", `{"data":{}}`, channels.LegacyErrMissingField},
		{"unknown type", `{"type":"bind"}`, channels.LegacyErrUnknownType},
		{"subscribe without data", `{"type":"subscribe"}`, channels.LegacyErrMissingField},
		{"subscribe data not an object", `{"type":"subscribe","data":"x"}`, channels.LegacyErrInvalidField},
		{"no subscription_id", `{"type":"subscribe","data":{"resource_types":["*"]}}`, channels.LegacyErrMissingField},
		{"bad resource type", `{"type":"subscribe","data":{"subscription_id":"s","resource_types":["observation"]}}`, channels.LegacyErrInvalidField},
		{"resource_types wrong JSON type", `{"type":"subscribe","data":{"subscription_id":"s","resource_types":"Observation"}}`, channels.LegacyErrInvalidField},
		{"bad patient id", `{"type":"subscribe","data":{"subscription_id":"s","resource_types":["*"],"patient_ids":["a b"]}}`, channels.LegacyErrInvalidField},
		{"unsubscribe unknown", `{"type":"unsubscribe","data":{"subscription_id":"nope"}}`, channels.LegacyErrNotSubscribed},
		{"unsubscribe without id", `{"type":"unsubscribe","data":{}}`, channels.LegacyErrMissingField},
		{"resume before subscribe", `{"type":"resume","data":{"since":0}}`, channels.LegacyErrNotSubscribed},
		{"resume without since", `{"type":"resume","data":{}}`, channels.LegacyErrMissingField},
		{"resume negative since", `{"type":"resume","data":{"since":-1}}`, channels.LegacyErrInvalidField},
		{"resume fractional since", `{"type":"resume","data":{"since":1.5}}`, channels.LegacyErrInvalidField},
		{"resume since a string", `{"type":"resume","data":{"since":"1"}}`, channels.LegacyErrInvalidField},
	} {
		t.Run(tc.name, func(t *testing.T) {
			send(t, ws, tc.in)
			m := recvType(t, ws, "error")
			if m.Data["code"] != tc.code || m.Data["message"] == "" {
				t.Errorf("%s: got %s, want code %s", tc.in, m.raw, tc.code)
			}
		})
	}
	// The connection is still usable.
	send(t, ws, `{"type":"ping"}`)
	recvType(t, ws, "pong")
	// Without a replayer, resume is unavailable.
	subscribe(t, ws, "s", []string{"*"}, nil)
	send(t, ws, `{"type":"resume","data":{"since":0}}`)
	if m := recvType(t, ws, "error"); m.Data["code"] != channels.LegacyErrReplayUnavailable {
		t.Errorf("resume without replayer: %s", m.raw)
	}
}

func TestLegacyLimits(t *testing.T) {
	checkGoroutines(t)
	t.Run("subscriptions per connection", func(t *testing.T) {
		ts := mustServe(t, channels.Config{}, channels.LegacyConfig{MaxSubscriptions: 2})
		ws := mustDial(t, ts.url)
		subscribe(t, ws, "a", []string{"*"}, nil)
		subscribe(t, ws, "b", []string{"*"}, nil)
		subscribe(t, ws, "a", []string{"Patient"}, nil) // replacing does not count
		send(t, ws, `{"type":"subscribe","data":{"subscription_id":"c","resource_types":["*"]}}`)
		if m := recvType(t, ws, "error"); m.Data["code"] != channels.LegacyErrTooManySubscriptions {
			t.Errorf("third subscription: %s", m.raw)
		}
	})
	t.Run("message rate", func(t *testing.T) {
		ts := mustServe(t, channels.Config{}, channels.LegacyConfig{MessageRate: 1, MessageBurst: 3})
		ws := mustDial(t, ts.url)
		for range 5 {
			send(t, ws, `{"type":"ping"}`)
		}
		for range 3 {
			recvType(t, ws, "pong")
		}
		for range 2 {
			if m := recvType(t, ws, "error"); m.Data["code"] != channels.LegacyErrRateLimited {
				t.Errorf("over the rate: %s", m.raw)
			}
		}
		time.Sleep(1100 * time.Millisecond) // one token comes back
		send(t, ws, `{"type":"ping"}`)
		recvType(t, ws, "pong")
	})
	t.Run("patient-scoped access", func(t *testing.T) {
		ts := mustServe(t, channels.Config{}, channels.LegacyConfig{
			Authorize: func(*http.Request) (channels.LegacyAccess, error) {
				return channels.LegacyAccess{Patients: []string{"p1"}}, nil
			},
		})
		ws := mustDial(t, ts.url)
		send(t, ws, `{"type":"subscribe","data":{"subscription_id":"s","resource_types":["*"],"patient_ids":["p2"]}}`)
		if m := recvType(t, ws, "error"); m.Data["code"] != channels.LegacyErrForbidden {
			t.Errorf("subscribe outside access: %s", m.raw)
		}
		subscribe(t, ws, "s", []string{"*"}, nil)
		ts.legacy.Publish(1, []*channels.LegacyEvent{update(t, 1, channels.ActionCreated, "Observation", "x", []string{"p2"}, obs)})
		ts.legacy.Publish(2, []*channels.LegacyEvent{update(t, 2, channels.ActionCreated, "Practitioner", "x", nil, `{"resourceType":"Practitioner"}`)})
		ts.legacy.Publish(3, []*channels.LegacyEvent{update(t, 3, channels.ActionCreated, "Group", "g", []string{"p2", "p1"}, `{"resourceType":"Group"}`)})
		m := recvType(t, ws, "update")
		if *m.Seq != 3 || m.Data["patient_id"] != "p1" {
			t.Errorf("patient-scoped caller got %s, want only seq 3 for p1", m.raw)
		}
		expectNothingQueued(t, ws)
	})
}

func TestLegacyResume(t *testing.T) {
	checkGoroutines(t)
	ts, log := serveWithLog(t, channels.Config{}, channels.LegacyConfig{ReplayLimit: 100})
	for i := int64(1); i <= 150; i++ {
		typ := "Observation"
		if i%2 == 0 {
			typ = "Condition"
		}
		log.publish(i, update(t, i, channels.ActionCreated, typ, fmt.Sprint("r", i), []string{"p1"}, obs))
	}
	ws := mustDial(t, ts.url)
	subscribe(t, ws, "s", []string{"Observation"}, nil)
	send(t, ws, `{"type":"resume","data":{"since":140}}`)
	for _, seq := range []int64{141, 143, 145, 147, 149} {
		if m := recvType(t, ws, "update"); *m.Seq != seq {
			t.Fatalf("replay got %s, want seq %d", m.raw, seq)
		}
	}
	m := recvType(t, ws, "resumed")
	if *m.Seq != 150 || m.Data["replayed"] != 5.0 || m.Data["truncated"] != false {
		t.Errorf("resumed: %s", m.raw)
	}
	// Older than the window: the last ReplayLimit changes, truncated.
	send(t, ws, `{"type":"resume","data":{"since":0}}`)
	for seq := int64(51); seq <= 150; seq += 2 {
		if m := recvType(t, ws, "update"); *m.Seq != seq {
			t.Fatalf("truncated replay got %s, want seq %d", m.raw, seq)
		}
	}
	if m := recvType(t, ws, "resumed"); m.Data["truncated"] != true || m.Data["replayed"] != 50.0 {
		t.Errorf("resumed: %s", m.raw)
	}
	// Live delivery goes on.
	log.publish(151, update(t, 151, channels.ActionCreated, "Observation", "live", []string{"p1"}, obs))
	if m := recvType(t, ws, "update"); *m.Seq != 151 {
		t.Errorf("live after replay: %s", m.raw)
	}
}

func TestLegacyReconnectWithClientID(t *testing.T) {
	checkGoroutines(t)
	ts, log := serveWithLog(t, channels.Config{}, channels.LegacyConfig{})
	url := ts.url + "?client_id=browser-1"

	ws := mustDial(t, url)
	subscribe(t, ws, "s", []string{"Observation"}, []string{"p1"})
	log.publish(1, update(t, 1, channels.ActionCreated, "Observation", "a", []string{"p1"}, obs))
	recvType(t, ws, "update")
	_ = ws.Close()
	eventually(t, "the disconnect", func() bool { return ts.hub.Len() == 0 })

	// Missed while away: 2 and 4 match, 3 does not.
	log.publish(2, update(t, 2, channels.ActionCreated, "Observation", "b", []string{"p1"}, obs))
	log.publish(3, update(t, 3, channels.ActionCreated, "Observation", "c", []string{"p9"}, obs))
	log.publish(4, update(t, 4, channels.ActionUpdated, "Observation", "b", []string{"p1"}, obs))

	// The server remembers the subscription: restored, then replayed at once.
	ws = mustDial(t, url)
	if m := recvType(t, ws, "subscribed"); m.Data["subscription_id"] != "s" || m.Data["restored"] != true {
		t.Errorf("restore: %s", m.raw)
	}
	for _, seq := range []int64{2, 4} {
		if m := recvType(t, ws, "update"); *m.Seq != seq {
			t.Fatalf("reconnect replay got %s, want seq %d", m.raw, seq)
		}
	}
	expectNothingQueued(t, ws)
	log.publish(5, update(t, 5, channels.ActionCreated, "Observation", "d", []string{"p1"}, obs))
	if m := recvType(t, ws, "update"); *m.Seq != 5 {
		t.Errorf("live: %s", m.raw)
	}

	// Another client_id, or none, gets no replay.
	other := mustDial(t, ts.url+"?client_id=browser-2")
	subscribe(t, other, "s", []string{"*"}, nil)
	expectNothingQueued(t, other)
}

func TestLegacyReconnectAfterForgetting(t *testing.T) {
	checkGoroutines(t)
	// A client whose subscriptions were unsubscribed before it left: its
	// position is remembered, and its next subscribe replays from there.
	ts, log := serveWithLog(t, channels.Config{}, channels.LegacyConfig{})
	url := ts.url + "?client_id=c"
	ws := mustDial(t, url)
	subscribe(t, ws, "s", []string{"*"}, nil)
	log.publish(1, update(t, 1, channels.ActionCreated, "Observation", "a", []string{"p1"}, obs))
	recvType(t, ws, "update")
	send(t, ws, `{"type":"unsubscribe","data":{"subscription_id":"s"}}`)
	recvType(t, ws, "unsubscribed")
	_ = ws.Close()
	eventually(t, "the disconnect", func() bool { return ts.hub.Len() == 0 })
	log.publish(2, update(t, 2, channels.ActionCreated, "Observation", "b", []string{"p1"}, obs))

	ws = mustDial(t, url)
	expectNothingQueued(t, ws)
	subscribe(t, ws, "s2", []string{"*"}, nil)
	if m := recvType(t, ws, "update"); *m.Seq != 2 {
		t.Errorf("replay after re-subscribe: %s", m.raw)
	}
}

func TestLegacyLiveDuringReplay(t *testing.T) {
	checkGoroutines(t)
	// Events published while a replay runs arrive after it, once, in order.
	// The queue (64) is smaller than the replay (200): SendWait paces it.
	ts, log := serveWithLog(t, channels.Config{SendQueue: 64}, channels.LegacyConfig{})
	for i := int64(1); i <= 200; i++ {
		log.publish(i, update(t, i, channels.ActionCreated, "Observation", fmt.Sprint(i), []string{"p"}, obs))
	}
	ws := mustDial(t, ts.url)
	subscribe(t, ws, "s", []string{"*"}, nil)
	send(t, ws, `{"type":"resume","data":{"since":0}}`)
	done := make(chan struct{})
	next := int64(1)
	for next <= 260 {
		m := recv(t, ws)
		if next == 1 {
			go func() { // live events while the replay runs
				defer close(done)
				for i := int64(201); i <= 260; i++ {
					log.publish(i, update(t, i, channels.ActionCreated, "Observation", fmt.Sprint(i), []string{"p"}, obs))
				}
			}()
		}
		if m.Type == "resumed" {
			if next != 201 {
				t.Fatalf("resumed before update %d, want it between the replay and the live events: %s", next, m.raw)
			}
			continue
		}
		if m.Type != "update" || *m.Seq != next {
			t.Fatalf("got %s, want update seq %d", m.raw, next)
		}
		next++
	}
	<-done
	expectNothingQueued(t, ws)
}

var _ = websocket.TextMessage
