package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/fhirstore"
	"github.com/fhirsub/fhirsub/fhirstore/sqlite"
	"github.com/fhirsub/fhirsub/fhirstore/storetest"
)

func TestEventContract(t *testing.T) {
	storetest.RunEvents(t, func(t *testing.T) fhirstore.Store {
		db, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "fhir.db")})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return db
	}, storetest.RunOptions{Name: "sqlite (modernc.org/sqlite, file in t.TempDir)"})
}

func obsMatch(sub string, seq int64) fhirstore.Match {
	return fhirstore.Match{SubscriptionID: sub, Type: "Observation", ID: fmt.Sprint("o", seq),
		VersionID: "1", Interaction: fhirstore.InteractionCreate}
}

func TestEventsDurableAcrossReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fhir.db")
	at := time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	db := mustOpen(t, path)
	for seq := int64(1); seq <= 3; seq++ {
		if _, err := db.Record(ctx, "matcher", seq, at, []fhirstore.Match{obsMatch("a", seq), obsMatch("b", seq)}); err != nil {
			t.Fatal(err)
		}
	}
	saved := fhirstore.SubscriptionState{SubscriptionID: "a", Delivered: 2, ConsecutiveFailures: 1,
		LastError: "HTTP 502", LastAttempt: at, LastSuccess: at.Add(-time.Minute), NextAttempt: at.Add(time.Minute)}
	if err := db.SaveDelivery(ctx, saved); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := db.Record(ctx, "matcher", 4, at, nil); !errors.Is(err, fhirstore.ErrClosed) {
		t.Fatalf("Record after Close: %v, want ErrClosed", err)
	}
	if _, err := db.Events(ctx, "a", 1, 0, 0); !errors.Is(err, fhirstore.ErrClosed) {
		t.Fatalf("Events after Close: %v, want ErrClosed", err)
	}

	db = mustOpen(t, path)
	if c, err := db.Cursor(ctx, "matcher"); err != nil || c != 3 {
		t.Fatalf("cursor after reopen = %d, %v; want 3", c, err)
	}
	st, err := db.State(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	saved.EventCount = 3
	if st != saved {
		t.Fatalf("state after reopen = %+v\nwant %+v", st, saved)
	}
	// The matcher restarts from its cursor; re-processing seq 3 (as after
	// a crash right after Record committed) gives the same events back.
	evs, err := db.Record(ctx, "matcher", 3, at.Add(time.Hour), []fhirstore.Match{obsMatch("a", 3), obsMatch("b", 3)})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].Number != 3 || evs[1].Number != 3 || !evs[0].Time.Equal(at) {
		t.Fatalf("replay after reopen = %+v", evs)
	}
	evs, err = db.Record(ctx, "matcher", 4, at, []fhirstore.Match{obsMatch("b", 4)})
	if err != nil || len(evs) != 1 || evs[0].Number != 4 {
		t.Fatalf("Record after reopen = %+v, %v; want b#4", evs, err)
	}
	all, err := db.Events(ctx, "b", 1, 0, 0)
	if err != nil || len(all) != 4 {
		t.Fatalf("events of b after reopen = %d, %v; want 4", len(all), err)
	}
}

// TestEventsWithResourceWrites records events while resources are being
// written: both share the writer connection and lock.
func TestEventsWithResourceWrites(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, filepath.Join(t.TempDir(), "fhir.db"))
	const writers, perWriter = 4, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers+1)
	for range writers {
		wg.Go(func() {
			for i := range perWriter {
				if _, err := db.Create(ctx, patient(t, fmt.Sprint("W", i))); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Go(func() {
		// A matcher following the feed as it grows.
		var cursor int64
		for cursor < writers*perWriter {
			if err := db.Wait(ctx, cursor); err != nil {
				errs <- err
				return
			}
			changes, err := db.Changes(ctx, cursor, 50)
			if err != nil {
				errs <- err
				return
			}
			for _, c := range changes {
				m := fhirstore.Match{SubscriptionID: "all", Type: c.Type, ID: c.ID, VersionID: c.VersionID, Interaction: c.Interaction}
				if _, err := db.Record(ctx, "matcher", c.Seq, c.Time, []fhirstore.Match{m}); err != nil {
					errs <- err
					return
				}
				cursor = c.Seq
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	evs, err := db.Events(ctx, "all", 1, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != writers*perWriter {
		t.Fatalf("%d events, want %d", len(evs), writers*perWriter)
	}
	for i, e := range evs {
		if e.Number != int64(i+1) || e.ChangeSeq != int64(i+1) {
			t.Fatalf("event %d = #%d for seq %d", i, e.Number, e.ChangeSeq)
		}
	}
}

// BenchmarkRecord records one change matching 4 subscriptions (of 64) per
// op and reports events recorded per second.
func BenchmarkRecord(b *testing.B) {
	ctx := context.Background()
	db := mustOpen(b, filepath.Join(b.TempDir(), "fhir.db"))
	at := time.Now()
	const perChange = 4
	matches := make([]fhirstore.Match, perChange)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var seq int64
	for b.Loop() {
		seq++
		for k := range matches {
			matches[k] = obsMatch(fmt.Sprint("sub-", (seq*perChange+int64(k))%64), seq)
		}
		if _, err := db.Record(ctx, "matcher", seq, at, matches); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(seq*perChange)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkRecordFanout records one change matching 10 or 100
// subscriptions (of 10,000) per op, as fhirsub-load's fanout and resthook
// scenarios make the matcher do, and reports the time per event. The
// DB is Exclusive, as the server opens it.
func BenchmarkRecordFanout(b *testing.B) {
	for _, perChange := range []int{10, 100} {
		b.Run(fmt.Sprint(perChange), func(b *testing.B) {
			ctx := context.Background()
			db, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(b.TempDir(), "fhir.db"), Exclusive: true})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = db.Close() })
			at := time.Now()
			matches := make([]fhirstore.Match, perChange)
			var seq int64
			for b.Loop() {
				seq++
				for k := range matches {
					matches[k] = obsMatch(fmt.Sprintf("sub-%05d", (seq*int64(perChange)+int64(k))%10_000), seq)
				}
				if _, err := db.Record(ctx, "matcher", seq, at, matches); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(seq*int64(perChange)), "ns/event")
		})
	}
}

// TestRecordManyIsRecordInOrder: a batch numbers events, moves the cursor
// and replays exactly as the same Record calls one by one would, and is
// refused whole when out of seq order.
func TestRecordManyIsRecordInOrder(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	one := mustOpen(t, filepath.Join(t.TempDir(), "one.db"))
	many := mustOpen(t, filepath.Join(t.TempDir(), "many.db"))
	defer one.Close()
	defer many.Close()
	recs := []fhirstore.Recording{
		{Seq: 1, At: at, Matches: []fhirstore.Match{obsMatch("a", 1)}},
		{Seq: 2, At: at},
		{Seq: 4, At: at, Matches: []fhirstore.Match{obsMatch("a", 4), obsMatch("b", 4)}},
	}
	var want [][]fhirstore.Event
	for _, r := range recs {
		evs, err := one.Record(ctx, "matcher", r.Seq, r.At, r.Matches)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, evs)
	}
	got, err := many.RecordMany(ctx, "matcher", recs)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("RecordMany = %v, want what Record one by one gave: %v", got, want)
	}
	if cur, err := many.Cursor(ctx, "matcher"); err != nil || cur != 4 {
		t.Fatalf("cursor after the batch = %d, %v; want 4", cur, err)
	}
	again, err := many.RecordMany(ctx, "matcher", recs[2:])
	if err != nil || fmt.Sprint(again[0]) != fmt.Sprint(want[2]) {
		t.Fatalf("replayed batch = %v, %v; want the events recorded first %v", again, err, want[2])
	}
	if st, err := many.State(ctx, "a"); err != nil || st.EventCount != 2 {
		t.Fatalf("subscription a counts %d events (%v), want 2", st.EventCount, err)
	}
	bad := []fhirstore.Recording{{Seq: 6, At: at}, {Seq: 5, At: at}}
	if _, err := many.RecordMany(ctx, "matcher", bad); !errors.Is(err, fhirstore.ErrInvalid) {
		t.Fatalf("out-of-order batch: %v, want ErrInvalid", err)
	}
	if cur, _ := many.Cursor(ctx, "matcher"); cur != 4 {
		t.Fatalf("cursor after a refused batch = %d, want 4", cur)
	}
}

// TestSaveDeliveriesIsSaveDelivery: several states saved in one call read
// back as if each was saved alone (Delivered never moves backwards, the
// event count is not touched), and one invalid state writes nothing.
func TestSaveDeliveriesIsSaveDelivery(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, filepath.Join(t.TempDir(), "fhir.db"))
	defer db.Close()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for seq := int64(1); seq <= 3; seq++ {
		if _, err := db.Record(ctx, "matcher", seq, at, []fhirstore.Match{obsMatch("a", seq), obsMatch("b", seq)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.SaveDelivery(ctx, fhirstore.SubscriptionState{SubscriptionID: "b", Delivered: 3}); err != nil {
		t.Fatal(err)
	}
	states := []fhirstore.SubscriptionState{
		{SubscriptionID: "a", Delivered: 2, LastAttempt: at, LastSuccess: at},
		{SubscriptionID: "b", Delivered: 1, ConsecutiveFailures: 2, LastError: "HTTP 502", NextAttempt: at},
		{SubscriptionID: "c", Delivered: 0, LastAttempt: at},
	}
	if err := db.SaveDeliveries(ctx, states); err != nil {
		t.Fatal(err)
	}
	want := map[string]fhirstore.SubscriptionState{
		"a": {SubscriptionID: "a", EventCount: 3, Delivered: 2, LastAttempt: at, LastSuccess: at},
		"b": {SubscriptionID: "b", EventCount: 3, Delivered: 3, ConsecutiveFailures: 2, LastError: "HTTP 502", NextAttempt: at},
		"c": {SubscriptionID: "c", LastAttempt: at},
	}
	for id, w := range want {
		got, err := db.State(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !got.LastAttempt.Equal(w.LastAttempt) || !got.LastSuccess.Equal(w.LastSuccess) || !got.NextAttempt.Equal(w.NextAttempt) {
			t.Errorf("%s: times %v/%v/%v, want %v/%v/%v", id, got.LastAttempt, got.LastSuccess, got.NextAttempt,
				w.LastAttempt, w.LastSuccess, w.NextAttempt)
		}
		got.LastAttempt, got.LastSuccess, got.NextAttempt = w.LastAttempt, w.LastSuccess, w.NextAttempt
		if got != w {
			t.Errorf("%s: %+v, want %+v", id, got, w)
		}
	}
	bad := []fhirstore.SubscriptionState{{SubscriptionID: "a", Delivered: 3}, {SubscriptionID: "b", Delivered: -1}}
	if err := db.SaveDeliveries(ctx, bad); !errors.Is(err, fhirstore.ErrInvalid) {
		t.Fatalf("an invalid state: %v, want ErrInvalid", err)
	}
	if got, _ := db.State(ctx, "a"); got.Delivered != 2 {
		t.Errorf("a call with an invalid state wrote: a delivered %d, want 2", got.Delivered)
	}
}

// TestEventContractExclusive runs the event contract on a DB opened as
// the server opens it: Exclusive, numbers counted in memory.
func TestEventContractExclusive(t *testing.T) {
	storetest.RunEvents(t, func(t *testing.T) fhirstore.Store {
		db, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "fhir.db"), Exclusive: true})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return db
	}, storetest.RunOptions{Name: "sqlite, Exclusive"})
}
