package delivery

import (
	"slices"
	"testing"
	"time"
	"unsafe"
)

var t0 = time.Date(2025, 1, 2, 3, 0, 0, 0, time.UTC)

// restHook is the timing of an active rest-hook subscription.
func restHook(hb time.Duration) Timing { return Timing{RestHook: true, Beats: true, Heartbeat: hb} }

func all(string) bool { return true }

// TestScheduleTimers drives the timer heap by hand: heartbeats, retries,
// ends, a fired timer that stays due, status off, partitions owned
// elsewhere.
func TestScheduleTimers(t *testing.T) {
	s := NewSchedule()
	s.Track("hb", restHook(10*time.Second))
	s.Touch("hb", t0)
	s.Track("quiet", restHook(0))
	s.Touch("quiet", t0)
	ws := Timing{Beats: true, Heartbeat: time.Second, End: t0.Add(30 * time.Second)} // a websocket subscription
	s.Track("ws", ws)
	s.Touch("ws", t0)

	check := func(now time.Time, want ...string) {
		t.Helper()
		got := s.Due(now, time.Second, all)
		slices.Sort(got)
		t.Logf("due at +%v: %v", now.Sub(t0), got)
		if !slices.Equal(got, want) {
			t.Fatalf("due at +%v = %v, want %v", now.Sub(t0), got, want)
		}
	}
	check(t0.Add(9 * time.Second)) // nothing yet; websocket heartbeats are the bridge's
	s.SetNext("quiet", t0.Add(9500*time.Millisecond))
	if e := s.Earliest(); !e.Equal(t0.Add(9500 * time.Millisecond)) {
		t.Fatalf("earliest = %v, want the retry", e)
	}
	check(t0.Add(10*time.Second), "hb", "quiet")
	// still due (not delivered yet): again a tick later, not before
	check(t0.Add(10500 * time.Millisecond))
	check(t0.Add(11*time.Second), "hb", "quiet")
	// delivered: the retry is cleared, the heartbeat sent
	s.SetNext("quiet", time.Time{})
	s.Touch("hb", t0.Add(11*time.Second))
	check(t0.Add(20 * time.Second))
	// a fresh retry right after a fire is due at its time
	s.SetNext("quiet", t0.Add(20500*time.Millisecond))
	check(t0.Add(20500*time.Millisecond), "quiet")
	s.SetNext("quiet", time.Time{})
	check(t0.Add(21*time.Second), "hb")
	s.Touch("hb", t0.Add(21*time.Second))
	// off: nothing due; the end of the websocket subscription is
	check(t0.Add(30*time.Second), "ws")
	off := restHook(10 * time.Second)
	off.Off, off.Beats = true, false
	s.Track("hb", off)
	ws.Off, ws.Beats = true, false // what the deliverer does at the end
	s.Track("ws", ws)
	check(t0.Add(40 * time.Second))
	// owned elsewhere: dropped until the partition is gained
	s.Track("hb", restHook(10*time.Second))
	if got := s.Due(t0.Add(50*time.Second), time.Second, func(string) bool { return false }); len(got) != 0 {
		t.Fatalf("due while not owned = %v", got)
	}
	check(t0.Add(60 * time.Second))
	s.Rearm([]string{"hb"})
	check(t0.Add(61*time.Second), "hb")
	s.Untrack("hb")
	s.Forget("quiet")
	check(t0.Add(120 * time.Second))
	if n := len(s.timers); n != 0 {
		t.Fatalf("%d timers left armed", n)
	}
}

// TestInstantKeepsOrderAndClamps: the schedule's compact times keep a
// time to the nanosecond and its order; the zero time is none; an end
// before 1678 is past and one after 2262 never comes.
func TestInstantKeepsOrderAndClamps(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 0, 0, 123456789, time.UTC)
	if got := instantOf(now).time(); !got.Equal(now) {
		t.Errorf("round trip of %v gave %v", now, got)
	}
	if instantOf(time.Time{}) != 0 || !instant(0).time().IsZero() {
		t.Error("the zero time is not 0, or 0 not the zero time")
	}
	past := instantOf(time.Date(1500, 1, 1, 0, 0, 0, 0, time.UTC))
	future := instantOf(time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC))
	if !(past != 0 && past < instantOf(now) && instantOf(now) < instantOf(now.Add(time.Nanosecond)) && instantOf(now) < future) {
		t.Errorf("order lost: 1500 → %d, now → %d, 9999 → %d", past, instantOf(now), future)
	}
	if instantOf(time.Unix(0, 0)) == 0 {
		t.Error("the Unix epoch became no time")
	}
}

// TestTimingStaysSmall guards the size of the record the schedule keeps
// for every subscription: 64 bytes is a size class of Go's allocator, the
// next is 80.
func TestTimingStaysSmall(t *testing.T) {
	if n := unsafe.Sizeof(timing{}); n > 64 {
		t.Errorf("a timing is %d bytes, want at most 64", n)
	}
}
