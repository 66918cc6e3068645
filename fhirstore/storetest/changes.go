package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/fhirstore"
)

func (s *suite) testChangeFeed(t *testing.T) {
	st := s.store(t)
	ctx := ctxFor(t)
	if seq := lastSeq(t, st); seq != 0 {
		t.Fatalf("LastSeq of an empty store = %d", seq)
	}
	if ch, err := st.Changes(ctx, 0, 10); err != nil || len(ch) != 0 {
		t.Fatalf("Changes of an empty store = %v, %v", ch, err)
	}
	type want struct {
		typ, id, version, prev string
		inter                  fhirstore.Interaction
		time                   time.Time
	}
	var wants []want
	rec := func(r *fhirstore.Resource, prev string, inter fhirstore.Interaction) {
		wants = append(wants, want{r.Type, r.ID, r.VersionID, prev, inter, r.LastUpdated})
	}
	a := mustCreate(t, st, patient(t, "A"))
	rec(a, "", fhirstore.InteractionCreate)
	r, _ := mustUpdate(t, st, a.ID, patient(t, "A2"), "")
	rec(r, "1", fhirstore.InteractionUpdate)
	b := mustCreate(t, st, body(t, `{"resourceType":"Observation","status":"final"}`))
	rec(b, "", fhirstore.InteractionCreate)
	rec(mustDelete(t, st, "Patient", a.ID), "2", fhirstore.InteractionDelete)
	r, _ = mustUpdate(t, st, a.ID, patient(t, "A4"), "")
	rec(r, "", fhirstore.InteractionCreate)
	r, _ = mustUpdate(t, st, a.ID, patient(t, "A5"), "")
	rec(r, "4", fhirstore.InteractionUpdate)
	rec(mustDelete(t, st, "Observation", b.ID), "1", fhirstore.InteractionDelete)
	mustDelete(t, st, "Observation", b.ID) // writes nothing
	_, _, err := st.Update(ctx, a.ID, patient(t, "stale"), fhirstore.WriteOptions{IfMatch: "1"})
	wantErr(t, "stale update", err, fhirstore.ErrVersionConflict)

	changes, err := st.Changes(ctx, 0, 100)
	if err != nil {
		t.Fatalf("Changes: %v", err)
	}
	if len(changes) != len(wants) {
		t.Fatalf("got %d changes, want %d (one per write): %+v", len(changes), len(wants), changes)
	}
	for i, c := range changes {
		w := wants[i]
		if c.Seq != int64(i+1) || c.Type != w.typ || c.ID != w.id || c.VersionID != w.version ||
			c.PreviousVersionID != w.prev || c.Interaction != w.inter {
			t.Errorf("change %d = %+v\nwant seq %d %+v", i, c, i+1, w)
		}
		if !c.Time.Equal(w.time) {
			t.Errorf("change %d time %v, want the version's LastUpdated %v", i, c.Time, w.time)
		}
	}
	if seq := lastSeq(t, st); seq != int64(len(wants)) {
		t.Errorf("LastSeq = %d, want %d", seq, len(wants))
	}
}

func (s *suite) testChangesPaging(t *testing.T) {
	st := s.store(t)
	ctx := ctxFor(t)
	for i := range 7 {
		mustCreate(t, st, patient(t, fmt.Sprint("P", i)))
	}
	var got []int64
	for _, c := range readPages(t, "Changes", 3, func(after int64, limit int) ([]fhirstore.Change, error) {
		return st.Changes(ctx, after, limit)
	}) {
		got = append(got, c.Seq)
	}
	if len(got) != 7 {
		t.Fatalf("paged through %v, want seq 1..7", got)
	}
	for i, seq := range got {
		if seq != int64(i+1) {
			t.Fatalf("paged through %v, want seq 1..7", got)
		}
	}
	page, err := st.Changes(ctx, 5, 100)
	if err != nil || len(page) != 2 || page[0].Seq != 6 {
		t.Errorf("Changes(5, 100) = %+v, %v", page, err)
	}
}

func (s *suite) testTypeChanges(t *testing.T) {
	st := s.store(t)
	ctx := ctxFor(t)
	obs := func() map[string]any { return body(t, `{"resourceType":"Observation","status":"final"}`) }
	var pats []*fhirstore.Resource
	for i := range 3 {
		pats = append(pats, mustCreate(t, st, patient(t, fmt.Sprint("P", i))))
		mustCreate(t, st, obs())
	}
	mustUpdate(t, st, pats[0].ID, patient(t, "P0b"), "")
	o := mustCreate(t, st, obs())
	mustDelete(t, st, "Patient", pats[1].ID)
	mustDelete(t, st, "Observation", o.ID)
	mustUpdate(t, st, pats[1].ID, patient(t, "P1b"), "") // a create again
	mustCreate(t, st, obs())

	all, err := st.Changes(ctx, 0, 100)
	if err != nil {
		t.Fatalf("Changes: %v", err)
	}
	of := func(typ string, after int64) []fhirstore.Change {
		var out []fhirstore.Change
		for _, c := range all {
			if c.Type == typ && c.Seq > after {
				out = append(out, c)
			}
		}
		return out
	}
	got := readPages(t, "TypeChanges(Patient)", 2, func(after int64, limit int) ([]fhirstore.Change, error) {
		return st.TypeChanges(ctx, "Patient", after, limit)
	})
	sameChanges(t, "TypeChanges(Patient) paged by 2", got, of("Patient", 0))
	mid := all[len(all)/2].Seq
	page, err := st.TypeChanges(ctx, "Observation", mid, 100)
	if err != nil {
		t.Fatalf("TypeChanges(Observation, %d): %v", mid, err)
	}
	sameChanges(t, fmt.Sprintf("TypeChanges(Observation, %d)", mid), page, of("Observation", mid))
	if page, err := st.TypeChanges(ctx, "Encounter", 0, 10); err != nil || len(page) != 0 {
		t.Errorf("TypeChanges(Encounter) = %+v, %v; want none", page, err)
	}
}

// readPages reads a feed from its start in pages of limit, each after the
// last seq of the one before, until an empty page, failing on a page
// longer than limit, and returns every change read.
func readPages(t *testing.T, what string, limit int, read func(after int64, limit int) ([]fhirstore.Change, error)) []fhirstore.Change {
	t.Helper()
	var out []fhirstore.Change
	for after := int64(0); ; {
		page, err := read(after, limit)
		if err != nil {
			t.Fatalf("%s after %d, limit %d: %v", what, after, limit, err)
		}
		if len(page) > limit {
			t.Fatalf("%s after %d, limit %d: returned %d changes", what, after, limit, len(page))
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		after = page[len(page)-1].Seq
	}
}

// sameChanges compares got with want, field by field.
func sameChanges(t *testing.T, what string, got, want []fhirstore.Change) {
	t.Helper()
	if len(want) == 0 {
		t.Fatalf("%s: the fixture wrote no such change", what)
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d changes %+v, want %d %+v", what, len(got), got, len(want), want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Seq != w.Seq || g.Type != w.Type || g.ID != w.ID || g.VersionID != w.VersionID ||
			g.PreviousVersionID != w.PreviousVersionID || g.Interaction != w.Interaction || !g.Time.Equal(w.Time) {
			t.Errorf("%s: change %d = %+v, want %+v", what, i, g, w)
		}
	}
}

func (s *suite) testWait(t *testing.T) {
	st := s.store(t)
	ctx := ctxFor(t)
	mustCreate(t, st, patient(t, "A"))

	short, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := st.Wait(short, 0); err != nil {
		t.Fatalf("Wait(0) with seq 1 committed: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Wait behind the feed took %v, want immediate", d)
	}

	expiring, cancel2 := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel2()
	wantErr(t, "Wait with nothing new", st.Wait(expiring, 1), context.DeadlineExceeded)

	canceled, cancel3 := context.WithCancel(ctx)
	cancel3()
	wantErr(t, "Wait with a canceled context", st.Wait(canceled, 1), context.Canceled)

	woken := make(chan error, 1)
	waitCtx, cancel4 := context.WithTimeout(ctx, 10*time.Second)
	defer cancel4()
	go func() { woken <- st.Wait(waitCtx, 1) }()
	time.Sleep(20 * time.Millisecond) // let the waiter block
	start = time.Now()
	mustCreate(t, st, patient(t, "B"))
	if err := <-woken; err != nil {
		t.Fatalf("Wait woken by a concurrent write: %v", err)
	}
	t.Logf("Wait woke %v after the write returned", time.Since(start))
}

func (s *suite) testConcurrentWriters(t *testing.T) {
	st := s.store(t)
	ctx := ctxFor(t)
	const writers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			var last *fhirstore.Resource
			for i := range each {
				b := patient(t, fmt.Sprintf("W%d-%d", w, i))
				// A failing transaction between the writes must leave no
				// change and no gap behind.
				_, err := st.Transaction(ctx, []fhirstore.Op{
					{Method: fhirstore.MethodCreate, Body: patient(t, "Doomed")},
					{Method: fhirstore.MethodDelete, Type: "Patient", ID: "never-existed"},
				})
				if !errors.Is(err, fhirstore.ErrNotFound) {
					errs <- fmt.Errorf("failing transaction: %w", err)
					return
				}
				if i%3 == 2 && last != nil {
					last, _, err = st.Update(ctx, last.ID, b, fhirstore.WriteOptions{})
				} else {
					last, err = st.Create(ctx, b)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent write: %v", err)
	}
	changes, err := st.Changes(ctx, 0, writers*each+10)
	if err != nil {
		t.Fatalf("Changes: %v", err)
	}
	if len(changes) != writers*each {
		t.Fatalf("%d concurrent writes produced %d changes", writers*each, len(changes))
	}
	seen := map[string]bool{}
	for i, c := range changes {
		if c.Seq != int64(i+1) {
			t.Fatalf("change %d has seq %d: the feed has a gap or is out of order", i, c.Seq)
		}
		v := c.Type + "/" + c.ID + "/" + c.VersionID
		if seen[v] {
			t.Fatalf("version %s has two changes", v)
		}
		seen[v] = true
	}
	if seq := lastSeq(t, st); seq != writers*each {
		t.Errorf("LastSeq = %d, want %d", seq, writers*each)
	}
}

func (s *suite) testConcurrentIfMatch(t *testing.T) {
	if s.opts.SkipAtomicRaces != "" {
		t.Skip("backend cannot decide concurrent read-modify-write races: " + s.opts.SkipAtomicRaces)
	}
	st := s.store(t)
	ctx := ctxFor(t)
	for round := range 5 {
		res := mustCreate(t, st, patient(t, "Race"))
		const racers = 8
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			winners int
			other   []error
		)
		start := make(chan struct{})
		for i := range racers {
			wg.Go(func() {
				<-start
				_, _, err := st.Update(ctx, res.ID, patient(t, fmt.Sprint("Racer", i)), fhirstore.WriteOptions{IfMatch: "1"})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					winners++
				case !errors.Is(err, fhirstore.ErrVersionConflict):
					other = append(other, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if len(other) > 0 {
			t.Fatalf("round %d: racers failed with %v", round, other)
		}
		if winners != 1 {
			t.Fatalf("round %d: %d updates with If-Match 1 succeeded, want exactly 1", round, winners)
		}
		if cur, err := st.Read(ctx, "Patient", res.ID); err != nil || cur.VersionID != "2" {
			t.Fatalf("round %d: Read = %+v, %v; want version 2", round, cur, err)
		}
	}
}
