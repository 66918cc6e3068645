package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/fhirstore"
)

// RunEvents runs the fhirstore.EventStore contract, one subtest per
// behaviour, each on a fresh store from open (which must implement
// fhirstore.EventStore; Run closes it as in Run).
func RunEvents(t *testing.T, open OpenFunc, opts RunOptions) {
	name := opts.Name
	if name == "" {
		name = "unnamed backend"
	}
	t.Logf("storetest: running the fhirstore.EventStore contract against %s", name)
	s := &suite{open: open, opts: opts}
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"Numbering", s.testEventNumbering},
		{"ReRecord", s.testEventReRecord},
		{"OneEventPerChange", s.testEventOnePerChange},
		{"ManyPerChange", s.testEventManyPerChange},
		{"RecordInvalid", s.testEventRecordInvalid},
		{"ConcurrentRecord", s.testEventConcurrentRecord},
		{"Range", s.testEventRange},
		{"SaveDelivery", s.testEventSaveDelivery},
		{"Prune", s.testEventPrune},
		{"DropSubscription", s.testEventDrop},
	} {
		t.Run(tc.name, tc.fn)
	}
}

// events opens a fresh store as an EventStore.
func (s *suite) events(t *testing.T) fhirstore.EventStore {
	t.Helper()
	st := s.store(t)
	es, ok := st.(fhirstore.EventStore)
	if !ok {
		t.Fatalf("%T does not implement fhirstore.EventStore", st)
	}
	return es
}

// evAt is the commit time used by the tests; Record keeps milliseconds.
var evAt = time.Date(2026, 3, 4, 5, 6, 7, 891_234_567, time.UTC)

// match builds a match of sub on Observation/id version 1.
func match(sub, id string) fhirstore.Match {
	return fhirstore.Match{
		SubscriptionID: sub, Topic: "http://example.org/topic/" + sub,
		Type: "Observation", ID: id, VersionID: "1", Interaction: fhirstore.InteractionCreate,
	}
}

func mustRecord(t *testing.T, es fhirstore.EventStore, cursor string, seq int64, matches ...fhirstore.Match) []fhirstore.Event {
	t.Helper()
	evs, err := es.Record(ctxFor(t), cursor, seq, evAt, matches)
	if err != nil {
		t.Fatalf("Record %s seq %d: %v", cursor, seq, err)
	}
	return evs
}

func mustEvents(t *testing.T, es fhirstore.EventStore, sub string, from, to int64, limit int) []fhirstore.Event {
	t.Helper()
	evs, err := es.Events(ctxFor(t), sub, from, to, limit)
	if err != nil {
		t.Fatalf("Events %s %d..%d limit %d: %v", sub, from, to, limit, err)
	}
	return evs
}

func mustState(t *testing.T, es fhirstore.EventStore, sub string) fhirstore.SubscriptionState {
	t.Helper()
	st, err := es.State(ctxFor(t), sub)
	if err != nil {
		t.Fatalf("State %s: %v", sub, err)
	}
	return st
}

func mustCursor(t *testing.T, es fhirstore.EventStore, name string) int64 {
	t.Helper()
	seq, err := es.Cursor(ctxFor(t), name)
	if err != nil {
		t.Fatalf("Cursor %s: %v", name, err)
	}
	return seq
}

// numbers lists "sub#number@seq" of events, for comparisons.
func numbers(evs []fhirstore.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = fmt.Sprintf("%s#%d@%d", e.SubscriptionID, e.Number, e.ChangeSeq)
	}
	return out
}

func wantNumbers(t *testing.T, what string, evs []fhirstore.Event, want ...string) {
	t.Helper()
	if got := numbers(evs); !equalStrings(got, want) {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

func (s *suite) testEventNumbering(t *testing.T) {
	es := s.events(t)
	if c := mustCursor(t, es, "matcher"); c != 0 {
		t.Fatalf("cursor of a new store = %d, want 0", c)
	}
	wantNumbers(t, "seq 1", mustRecord(t, es, "matcher", 1, match("a", "o1"), match("b", "o1")), "a#1@1", "b#1@1")
	wantNumbers(t, "seq 2", mustRecord(t, es, "matcher", 2, match("a", "o2")), "a#2@2")
	wantNumbers(t, "seq 3 (no match)", mustRecord(t, es, "matcher", 3))
	if c := mustCursor(t, es, "matcher"); c != 3 {
		t.Fatalf("cursor after an empty Record = %d, want 3", c)
	}
	del := fhirstore.Match{SubscriptionID: "b", Type: "Patient", ID: "p1", VersionID: "3", Interaction: fhirstore.InteractionDelete}
	got := mustRecord(t, es, "matcher", 5, del, match("c", "o5"))
	wantNumbers(t, "seq 5", got, "b#2@5", "c#1@5")
	if c := mustCursor(t, es, "matcher"); c != 5 {
		t.Fatalf("cursor = %d, want 5", c)
	}
	if c := mustCursor(t, es, "other"); c != 0 {
		t.Fatalf("cursor of another consumer = %d, want 0", c)
	}

	wantAt := evAt.Truncate(time.Millisecond)
	want := fhirstore.Event{Match: del, Number: 2, ChangeSeq: 5, Time: wantAt}
	if got[0] != want {
		t.Errorf("recorded event = %+v\nwant %+v", got[0], want)
	}
	stored := mustEvents(t, es, "b", 1, 0, 0)
	wantNumbers(t, "events of b", stored, "b#1@1", "b#2@5")
	if !stored[1].Time.Equal(wantAt) || stored[1].Time.Location() != time.UTC {
		t.Errorf("stored time %v, want %v UTC", stored[1].Time, wantAt)
	}
	stored[1].Time = wantAt
	if stored[1] != want {
		t.Errorf("stored event = %+v\nwant %+v", stored[1], want)
	}
	if e := mustEvents(t, es, "a", 1, 0, 0)[0]; e.Topic != "http://example.org/topic/a" || e.Interaction != fhirstore.InteractionCreate {
		t.Errorf("event a#1 = %+v: topic or interaction lost", e)
	}
	for sub, n := range map[string]int64{"a": 2, "b": 2, "c": 1} {
		if st := mustState(t, es, sub); st.EventCount != n || st.Delivered != 0 || st.SubscriptionID != sub {
			t.Errorf("state of %s = %+v, want EventCount %d, Delivered 0", sub, st, n)
		}
	}
	_, err := es.State(ctxFor(t), "never")
	wantErr(t, "State of an unknown subscription", err, fhirstore.ErrNoState)
}

func (s *suite) testEventReRecord(t *testing.T) {
	es := s.events(t)
	first := mustRecord(t, es, "matcher", 1, match("a", "o1"), match("b", "o1"))
	mustRecord(t, es, "matcher", 2, match("a", "o2"))
	mustRecord(t, es, "matcher", 4)

	// A replay of seq 2 (cursor at 4) writes nothing, whatever the matches
	// are this time, and gives back what seq 2 recorded.
	again, err := es.Record(ctxFor(t), "matcher", 2, evAt.Add(time.Hour), []fhirstore.Match{match("a", "o2"), match("c", "o2")})
	if err != nil {
		t.Fatalf("replay of seq 2: %v", err)
	}
	wantNumbers(t, "replay of seq 2", again, "a#2@2")
	if !again[0].Time.Equal(evAt.Truncate(time.Millisecond)) {
		t.Errorf("replay gave time %v, want the recorded %v", again[0].Time, evAt)
	}
	replay1 := mustRecord(t, es, "matcher", 1)
	wantNumbers(t, "replay of seq 1", replay1, numbers(first)...)
	wantNumbers(t, "replay of seq 3 (recorded nothing)", mustRecord(t, es, "matcher", 3, match("a", "o3")))
	wantNumbers(t, "replay of seq 4", mustRecord(t, es, "matcher", 4, match("a", "o4")))

	if c := mustCursor(t, es, "matcher"); c != 4 {
		t.Fatalf("cursor after replays = %d, want 4 (never moves back)", c)
	}
	wantNumbers(t, "events of a", mustEvents(t, es, "a", 1, 0, 0), "a#1@1", "a#2@2")
	if _, err := es.State(ctxFor(t), "c"); !errors.Is(err, fhirstore.ErrNoState) {
		t.Fatalf("a replay created state for c: %v", err)
	}
	if st := mustState(t, es, "a"); st.EventCount != 2 {
		t.Fatalf("EventCount of a after replays = %d, want 2", st.EventCount)
	}
	wantNumbers(t, "after replays", mustRecord(t, es, "matcher", 5, match("a", "o5")), "a#3@5")
}

func (s *suite) testEventOnePerChange(t *testing.T) {
	es := s.events(t)
	wantNumbers(t, "duplicate match", mustRecord(t, es, "m1", 1, match("a", "o1"), match("a", "o1")), "a#1@1", "a#1@1")
	// Another consumer recording the same change gets a's existing event
	// and a new one only for b.
	wantNumbers(t, "second cursor", mustRecord(t, es, "m2", 1, match("a", "o1"), match("b", "o1")), "a#1@1", "b#1@1")
	if st := mustState(t, es, "a"); st.EventCount != 1 {
		t.Fatalf("EventCount of a = %d, want 1", st.EventCount)
	}
	if c := mustCursor(t, es, "m2"); c != 1 {
		t.Fatalf("cursor m2 = %d, want 1", c)
	}
	wantNumbers(t, "replay on m1 returns every event of seq 1", mustRecord(t, es, "m1", 1), "a#1@1", "b#1@1")
}

// testEventManyPerChange: a change matching more subscriptions than a
// store may write in one statement (75, one listed twice) numbers and
// keeps every event, with its match, as one per subscription would.
func (s *suite) testEventManyPerChange(t *testing.T) {
	es := s.events(t)
	const n = 75
	var ms []fhirstore.Match
	for i := range n {
		ms = append(ms, match(fmt.Sprintf("s%02d", i), "o1"))
	}
	first := mustRecord(t, es, "matcher", 1, append(ms, match("s10", "o1"))...)
	if len(first) != n+1 || first[n].SubscriptionID != "s10" || first[n].Number != 1 {
		t.Fatalf("change 1 recorded %d events, the last %s#%d, want %d and the repeated s10#1", len(first), first[len(first)-1].SubscriptionID, first[len(first)-1].Number, n+1)
	}
	for i := range ms {
		ms[i].ID = "o2"
	}
	second := mustRecord(t, es, "matcher", 2, ms...)
	for i, ev := range second {
		if want := fmt.Sprintf("s%02d", i); ev.SubscriptionID != want || ev.Number != 2 || ev.ChangeSeq != 2 {
			t.Fatalf("event %d of change 2 = %s#%d@%d, want %s#2@2", i, ev.SubscriptionID, ev.Number, ev.ChangeSeq, want)
		}
	}
	for _, sub := range []string{"s00", "s31", "s32", "s63", "s64", "s74"} {
		evs := mustEvents(t, es, sub, 1, 0, 0)
		wantNumbers(t, "events of "+sub, evs, sub+"#1@1", sub+"#2@2")
		if evs[1].Topic != "http://example.org/topic/"+sub || evs[1].ID != "o2" || evs[1].Type != "Observation" ||
			evs[1].VersionID != "1" || evs[1].Interaction != fhirstore.InteractionCreate {
			t.Fatalf("event 2 of %s = %+v, want its match kept", sub, evs[1].Match)
		}
	}
	if replay := mustRecord(t, es, "matcher", 1); len(replay) != n {
		t.Fatalf("replay of change 1 gave %d events, want %d", len(replay), n)
	}
}

func (s *suite) testEventRecordInvalid(t *testing.T) {
	es := s.events(t)
	ctx := ctxFor(t)
	mustRecord(t, es, "matcher", 1, match("a", "o1"))
	bad := func(f func(*fhirstore.Match)) []fhirstore.Match {
		m := match("a", "o2")
		f(&m)
		return []fhirstore.Match{match("b", "o2"), m}
	}
	for _, tc := range []struct {
		name    string
		cursor  string
		seq     int64
		matches []fhirstore.Match
	}{
		{"EmptyCursor", "", 2, nil},
		{"ZeroSeq", "matcher", 0, nil},
		{"NegativeSeq", "matcher", -3, nil},
		{"EmptySubscription", "matcher", 2, bad(func(m *fhirstore.Match) { m.SubscriptionID = "" })},
		{"BadSubscription", "matcher", 2, bad(func(m *fhirstore.Match) { m.SubscriptionID = "a/b" })},
		{"BadType", "matcher", 2, bad(func(m *fhirstore.Match) { m.Type = "observation" })},
		{"BadID", "matcher", 2, bad(func(m *fhirstore.Match) { m.ID = "" })},
		{"NoVersion", "matcher", 2, bad(func(m *fhirstore.Match) { m.VersionID = "" })},
		{"BadInteraction", "matcher", 2, bad(func(m *fhirstore.Match) { m.Interaction = "patch" })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := es.Record(ctx, tc.cursor, tc.seq, evAt, tc.matches)
			wantErr(t, "Record", err, fhirstore.ErrInvalid)
		})
	}
	if c := mustCursor(t, es, "matcher"); c != 1 {
		t.Fatalf("cursor after refused Records = %d, want 1", c)
	}
	if _, err := es.State(ctx, "b"); !errors.Is(err, fhirstore.ErrNoState) {
		t.Fatalf("a refused Record wrote state for b: %v", err)
	}
}

// testEventConcurrentRecord has several consumers, each with its own
// cursor and increasing seqs, record events of the same subscriptions at
// once: every subscription must end with 1..N, no gap, no duplicate.
func (s *suite) testEventConcurrentRecord(t *testing.T) {
	if s.opts.SkipAtomicRaces != "" {
		t.Skip(s.opts.SkipAtomicRaces)
	}
	es := s.events(t)
	const consumers, perConsumer = 4, 40
	subs := []string{"s0", "s1", "s2"}
	var wg sync.WaitGroup
	returned := make([][]fhirstore.Event, consumers)
	errs := make([]error, consumers)
	for c := range consumers {
		wg.Go(func() {
			cursor := fmt.Sprint("consumer-", c)
			for i := 1; i <= perConsumer; i++ {
				seq := int64(c*perConsumer + i) // disjoint changes, increasing per cursor
				var ms []fhirstore.Match
				for k, sub := range subs {
					if (i+k)%2 == 0 || k == 0 {
						ms = append(ms, match(sub, fmt.Sprint("o", seq)))
					}
				}
				evs, err := es.Record(ctxFor(t), cursor, seq, evAt, ms)
				if err != nil {
					errs[c] = fmt.Errorf("%s seq %d: %w", cursor, seq, err)
					return
				}
				returned[c] = append(returned[c], evs...)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	byNumber := map[string]fhirstore.Event{}
	for _, evs := range returned {
		for _, e := range evs {
			key := fmt.Sprintf("%s#%d", e.SubscriptionID, e.Number)
			if prev, dup := byNumber[key]; dup {
				t.Fatalf("two Records returned %s: seq %d and seq %d", key, prev.ChangeSeq, e.ChangeSeq)
			}
			byNumber[key] = e
		}
	}
	for c := range consumers {
		if got := mustCursor(t, es, fmt.Sprint("consumer-", c)); got != int64((c+1)*perConsumer) {
			t.Errorf("cursor consumer-%d = %d, want %d", c, got, (c+1)*perConsumer)
		}
	}
	for _, sub := range subs {
		evs := mustEvents(t, es, sub, 1, 0, 0)
		seen := map[int64]bool{}
		for i, e := range evs {
			if e.Number != int64(i+1) {
				t.Fatalf("%s: event %d has number %d: numbering has a gap or duplicate", sub, i+1, e.Number)
			}
			if seen[e.ChangeSeq] {
				t.Fatalf("%s: two events for seq %d", sub, e.ChangeSeq)
			}
			seen[e.ChangeSeq] = true
			if r, ok := byNumber[fmt.Sprintf("%s#%d", sub, e.Number)]; !ok || r.ChangeSeq != e.ChangeSeq {
				t.Fatalf("%s#%d: stored seq %d, Record returned %+v", sub, e.Number, e.ChangeSeq, r)
			}
		}
		if st := mustState(t, es, sub); st.EventCount != int64(len(evs)) {
			t.Errorf("%s: EventCount %d, %d events stored", sub, st.EventCount, len(evs))
		}
	}
	if len(byNumber) == 0 {
		t.Fatal("no events recorded")
	}
}

func (s *suite) testEventRange(t *testing.T) {
	es := s.events(t)
	for seq := int64(1); seq <= 10; seq++ {
		mustRecord(t, es, "matcher", seq, match("a", fmt.Sprint("o", seq)))
		if seq%3 == 0 {
			mustRecord(t, es, "other", seq, match("b", fmt.Sprint("o", seq)))
		}
	}
	nums := func(evs []fhirstore.Event) []string {
		out := make([]string, len(evs))
		for i, e := range evs {
			out[i] = fmt.Sprint(e.Number)
		}
		return out
	}
	for _, tc := range []struct {
		name      string
		sub       string
		from, to  int64
		limit     int
		wantNums  []string
		wantFirst int64 // ChangeSeq of the first event, 0 = none
	}{
		{"All", "a", 1, 0, 0, []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10"}, 1},
		{"FromZero", "a", 0, 0, 3, []string{"1", "2", "3"}, 1},
		{"Closed", "a", 3, 5, 0, []string{"3", "4", "5"}, 3},
		{"Limit", "a", 3, 0, 2, []string{"3", "4"}, 3},
		{"LimitAndTo", "a", 3, 4, 5, []string{"3", "4"}, 3},
		{"Tail", "a", 8, 0, 0, []string{"8", "9", "10"}, 8},
		{"One", "a", 7, 7, 0, []string{"7"}, 7},
		{"PastEnd", "a", 11, 0, 0, []string{}, 0},
		{"Inverted", "a", 5, 3, 0, []string{}, 0},
		{"OtherSubscription", "b", 1, 0, 0, []string{"1", "2", "3"}, 3},
		{"Unknown", "zz", 1, 0, 0, []string{}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs := mustEvents(t, es, tc.sub, tc.from, tc.to, tc.limit)
			if got := nums(evs); !equalStrings(got, tc.wantNums) {
				t.Fatalf("numbers = %v, want %v", got, tc.wantNums)
			}
			if len(evs) > 0 && evs[0].ChangeSeq != tc.wantFirst {
				t.Fatalf("first event's seq = %d, want %d", evs[0].ChangeSeq, tc.wantFirst)
			}
		})
	}
	_, err := es.Events(ctxFor(t), "a", 1, 0, -1)
	wantErr(t, "Events with a negative limit", err, fhirstore.ErrInvalid)
}

func (s *suite) testEventSaveDelivery(t *testing.T) {
	es := s.events(t)
	ctx := ctxFor(t)
	t0 := time.Date(2026, 5, 6, 7, 8, 9, 123_456_789, time.UTC)
	save := func(st fhirstore.SubscriptionState) {
		t.Helper()
		if err := es.SaveDelivery(ctx, st); err != nil {
			t.Fatalf("SaveDelivery %+v: %v", st, err)
		}
	}
	// Delivery state before any event: created with EventCount 0.
	save(fhirstore.SubscriptionState{SubscriptionID: "h", ConsecutiveFailures: 1, LastError: "handshake refused", LastAttempt: t0})
	if st := mustState(t, es, "h"); st.EventCount != 0 || st.ConsecutiveFailures != 1 || st.LastError != "handshake refused" ||
		!st.LastAttempt.Equal(t0.Truncate(time.Millisecond)) || !st.LastSuccess.IsZero() || !st.NextAttempt.IsZero() {
		t.Fatalf("state of h = %+v", st)
	}
	for seq := int64(1); seq <= 5; seq++ {
		mustRecord(t, es, "matcher", seq, match("a", fmt.Sprint("o", seq)))
	}
	save(fhirstore.SubscriptionState{SubscriptionID: "a", EventCount: 99, Delivered: 4, LastAttempt: t0, LastSuccess: t0})
	st := mustState(t, es, "a")
	if st.EventCount != 5 || st.Delivered != 4 || st.ConsecutiveFailures != 0 || st.LastError != "" {
		t.Fatalf("state after success = %+v, want EventCount 5 (owned by Record), Delivered 4", st)
	}
	if !st.LastSuccess.Equal(t0.Truncate(time.Millisecond)) {
		t.Errorf("LastSuccess = %v, want %v", st.LastSuccess, t0)
	}
	// A stale save (an older delivery finishing late) keeps Delivered.
	t1 := t0.Add(time.Minute)
	save(fhirstore.SubscriptionState{SubscriptionID: "a", Delivered: 2, ConsecutiveFailures: 3, LastError: "HTTP 503",
		LastAttempt: t1, LastSuccess: t0, NextAttempt: t1.Add(time.Second)})
	st = mustState(t, es, "a")
	if st.Delivered != 4 {
		t.Fatalf("Delivered moved backwards to %d", st.Delivered)
	}
	if st.ConsecutiveFailures != 3 || st.LastError != "HTTP 503" || !st.NextAttempt.Equal(t1.Add(time.Second).Truncate(time.Millisecond)) {
		t.Fatalf("failure fields not saved: %+v", st)
	}
	mustRecord(t, es, "matcher", 6, match("a", "o6"))
	if st := mustState(t, es, "a"); st.EventCount != 6 || st.Delivered != 4 || st.ConsecutiveFailures != 3 {
		t.Fatalf("Record changed delivery fields: %+v", st)
	}
	all, err := es.States(ctx)
	if err != nil {
		t.Fatalf("States: %v", err)
	}
	if len(all) != 2 || all[0].SubscriptionID != "a" || all[1].SubscriptionID != "h" || all[0].EventCount != 6 {
		t.Fatalf("States = %+v, want a and h", all)
	}
	for _, bad := range []fhirstore.SubscriptionState{
		{SubscriptionID: ""},
		{SubscriptionID: "a", Delivered: -1},
		{SubscriptionID: "a", ConsecutiveFailures: -1},
	} {
		wantErr(t, fmt.Sprintf("SaveDelivery %+v", bad), es.SaveDelivery(ctx, bad), fhirstore.ErrInvalid)
	}
}

func (s *suite) testEventPrune(t *testing.T) {
	es := s.events(t)
	ctx := ctxFor(t)
	for seq := int64(1); seq <= 10; seq++ {
		mustRecord(t, es, "matcher", seq, match("a", fmt.Sprint("o", seq)), match("u", fmt.Sprint("o", seq)))
	}
	prune := func(sub string, keep int) {
		t.Helper()
		if err := es.Prune(ctx, sub, keep); err != nil {
			t.Fatalf("Prune %s keep %d: %v", sub, keep, err)
		}
	}
	first := func(sub string) int64 {
		t.Helper()
		evs := mustEvents(t, es, sub, 1, 0, 0)
		if len(evs) == 0 || evs[len(evs)-1].Number != 10 {
			t.Fatalf("events of %s after prune: %v (the newest must stay)", sub, numbers(evs))
		}
		for i := 1; i < len(evs); i++ {
			if evs[i].Number != evs[i-1].Number+1 {
				t.Fatalf("prune left a hole: %v", numbers(evs))
			}
		}
		return evs[0].Number
	}
	if err := es.SaveDelivery(ctx, fhirstore.SubscriptionState{SubscriptionID: "a", Delivered: 6}); err != nil {
		t.Fatal(err)
	}
	prune("a", 2)
	if f := first("a"); f != 5 {
		t.Fatalf("after Prune keep 2 with 6 delivered, events start at %d, want 5", f)
	}
	prune("a", 0)
	if f := first("a"); f != 7 {
		t.Fatalf("after Prune keep 0, events start at %d, want 7 (undelivered kept)", f)
	}
	prune("u", 0) // nothing delivered: nothing goes
	if f := first("u"); f != 1 {
		t.Fatalf("Prune deleted undelivered events of u: first is %d", f)
	}
	prune("never", 3) // no state: no error
	mustRecord(t, es, "matcher", 11, match("a", "o11"))
	if evs := mustEvents(t, es, "a", 11, 0, 0); len(evs) != 1 || evs[0].Number != 11 {
		t.Fatalf("numbering after prune: %v, want a#11", numbers(evs))
	}
	if st := mustState(t, es, "a"); st.EventCount != 11 || st.Delivered != 6 {
		t.Fatalf("state after prune = %+v", st)
	}
	wantErr(t, "Prune with negative keep", es.Prune(ctx, "a", -1), fhirstore.ErrInvalid)
}

func (s *suite) testEventDrop(t *testing.T) {
	es := s.events(t)
	ctx := ctxFor(t)
	for seq := int64(1); seq <= 3; seq++ {
		mustRecord(t, es, "matcher", seq, match("a", fmt.Sprint("o", seq)), match("b", fmt.Sprint("o", seq)))
	}
	if err := es.SaveDelivery(ctx, fhirstore.SubscriptionState{SubscriptionID: "a", Delivered: 2}); err != nil {
		t.Fatal(err)
	}
	if err := es.DropSubscription(ctx, "a"); err != nil {
		t.Fatalf("DropSubscription: %v", err)
	}
	if evs := mustEvents(t, es, "a", 1, 0, 0); len(evs) != 0 {
		t.Fatalf("events of a dropped subscription: %v", numbers(evs))
	}
	_, err := es.State(ctx, "a")
	wantErr(t, "State of a dropped subscription", err, fhirstore.ErrNoState)
	if evs := mustEvents(t, es, "b", 1, 0, 0); len(evs) != 3 {
		t.Fatalf("dropping a touched b: %v", numbers(evs))
	}
	if err := es.DropSubscription(ctx, "never"); err != nil {
		t.Fatalf("DropSubscription of an unknown subscription: %v", err)
	}
	wantNumbers(t, "a again", mustRecord(t, es, "matcher", 4, match("a", "o4")), "a#1@4")
	if c := mustCursor(t, es, "matcher"); c != 4 {
		t.Fatalf("cursor = %d, want 4", c)
	}
}
