package subscriptions

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/channels"
	"github.com/fhirsub/fhirsub/fhirstore"
	"github.com/fhirsub/fhirsub/topics"
)

var t0 = time.Date(2025, 1, 2, 3, 0, 0, 0, time.UTC)

func restHookSub(id string, hb time.Duration) *Subscription {
	return &Subscription{ID: id, VersionID: "1", Status: StatusActive, ChannelType: ChannelRestHook, Heartbeat: hb}
}

func all(string) bool { return true }

// TestScheduleTimers drives the timer heap by hand: heartbeats, retries,
// ends, a fired timer that stays due, status off, partitions owned
// elsewhere.
func TestScheduleTimers(t *testing.T) {
	s := newSchedule()
	s.track(restHookSub("hb", 10*time.Second))
	s.touch("hb", t0)
	s.track(restHookSub("quiet", 0))
	s.touch("quiet", t0)
	ws := &Subscription{ID: "ws", VersionID: "1", Status: StatusActive, ChannelType: ChannelWebsocket,
		Heartbeat: time.Second, End: t0.Add(30 * time.Second)}
	s.track(ws)
	s.touch("ws", t0)

	check := func(now time.Time, want ...string) {
		t.Helper()
		got := s.due(now, time.Second, all)
		slices.Sort(got)
		t.Logf("due at +%v: %v", now.Sub(t0), got)
		if !slices.Equal(got, want) {
			t.Fatalf("due at +%v = %v, want %v", now.Sub(t0), got, want)
		}
	}
	check(t0.Add(9 * time.Second)) // nothing yet; websocket heartbeats are the bridge's
	s.setNext("quiet", t0.Add(9500*time.Millisecond))
	if e := s.earliest(); !e.Equal(t0.Add(9500 * time.Millisecond)) {
		t.Fatalf("earliest = %v, want the retry", e)
	}
	check(t0.Add(10*time.Second), "hb", "quiet")
	// still due (not delivered yet): again a tick later, not before
	check(t0.Add(10500 * time.Millisecond))
	check(t0.Add(11*time.Second), "hb", "quiet")
	// delivered: the retry is cleared, the heartbeat sent
	s.setNext("quiet", time.Time{})
	s.touch("hb", t0.Add(11*time.Second))
	check(t0.Add(20 * time.Second))
	// a fresh retry right after a fire is due at its time
	s.setNext("quiet", t0.Add(20500*time.Millisecond))
	check(t0.Add(20500*time.Millisecond), "quiet")
	s.setNext("quiet", time.Time{})
	check(t0.Add(21*time.Second), "hb")
	s.touch("hb", t0.Add(21*time.Second))
	// off: nothing due; the end of the websocket subscription is
	check(t0.Add(30*time.Second), "ws")
	off := restHookSub("hb", 10*time.Second)
	off.Status = StatusOff
	s.track(off)
	ws.Status = StatusOff // what the deliverer does at the end
	s.track(ws)
	check(t0.Add(40 * time.Second))
	// owned elsewhere: dropped until the partition is gained
	s.track(restHookSub("hb", 10*time.Second))
	if got := s.due(t0.Add(50*time.Second), time.Second, func(string) bool { return false }); len(got) != 0 {
		t.Fatalf("due while not owned = %v", got)
	}
	check(t0.Add(60 * time.Second))
	s.rearm([]string{"hb"})
	check(t0.Add(61*time.Second), "hb")
	s.untrack("hb")
	s.forget("quiet")
	check(t0.Add(120 * time.Second))
	if n := len(s.timers); n != 0 {
		t.Fatalf("%d timers left armed", n)
	}
}

// BenchmarkScheduleTick measures one look of the schedule loop with n
// rest-hook subscriptions with heartbeats, of which none is due: the cost
// must stay flat as n grows (the loop used to walk every subscription).
func BenchmarkScheduleTick(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			reg := topics.NewRegistry()
			tp := topics.BuiltIn()[0]
			reg.Put(tp)
			m, err := New(Config{Topics: reg, ValidateEndpoint: channels.ValidateEndpoint, Store: &fakeStore{versions: map[string]*fhirstore.Resource{}},
				Events: &fakeEvents{states: map[string]fhirstore.SubscriptionState{}}, BaseURL: "https://fhir.example.org/r4",
				Now: func() time.Time { return t0 }})
			if err != nil {
				b.Fatal(err)
			}
			m.mu.Lock()
			for i := range n {
				s := restHookSub(fmt.Sprintf("s%d", i), time.Hour)
				s.Topic, s.TopicURL = tp, tp.URL
				m.putLocked(s, 0)
				m.sched.touch(s.ID, t0.Add(time.Duration(i)*time.Millisecond))
			}
			m.mu.Unlock()
			b.ResetTimer()
			for range b.N {
				m.tick()
			}
		})
	}
}
