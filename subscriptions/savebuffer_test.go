package subscriptions

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/fhirstore"
	"github.com/fhirsub/fhirsub/fhirstore/sqlite"
)

// failingEvents is an event store whose saves fail while down.
type failingEvents struct {
	fhirstore.EventStore
	down bool
}

func (f *failingEvents) SaveDelivery(ctx context.Context, st fhirstore.SubscriptionState) error {
	if f.down {
		return errors.New("store down")
	}
	return f.EventStore.SaveDelivery(ctx, st)
}

func bufferOn(t *testing.T) (*stateBuffer, *failingEvents) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "fhir.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	ev := &failingEvents{EventStore: db}
	return newStateBuffer(ev, discardLog), ev
}

func stored(t *testing.T, ev fhirstore.EventStore, id string) fhirstore.SubscriptionState {
	t.Helper()
	st, err := ev.State(context.Background(), id)
	if err != nil && !errors.Is(err, fhirstore.ErrNoState) {
		t.Fatal(err)
	}
	return st
}

// TestStateBufferSavesBehind: a state saved behind is seen through
// overlay at once and stored by the next flush; a state stored at once
// replaces the buffered one; a dropped subscription's buffered state is
// never stored; a failed flush keeps the states for the next.
func TestStateBufferSavesBehind(t *testing.T) {
	ctx := context.Background()
	b, ev := bufferOn(t)

	b.later(fhirstore.SubscriptionState{SubscriptionID: "a", Delivered: 5})
	b.later(fhirstore.SubscriptionState{SubscriptionID: "a", Delivered: 6}) // the newer wins
	b.later(fhirstore.SubscriptionState{SubscriptionID: "b", Delivered: 2})
	if got := stored(t, ev, "a").Delivered; got != 0 {
		t.Fatalf("stored before a flush: delivered %d", got)
	}
	st := fhirstore.SubscriptionState{SubscriptionID: "a", EventCount: 9, Delivered: 1}
	b.overlay(&st)
	if st.Delivered != 6 || st.EventCount != 9 {
		t.Errorf("overlay: %+v, want delivered 6 and the stored event count 9", st)
	}
	if !b.holds(func(id string) bool { return id == "b" }) {
		t.Error("holds: b is buffered")
	}

	// a state stored at once supersedes the buffered one
	if err := b.now(ctx, fhirstore.SubscriptionState{SubscriptionID: "b", Delivered: 3, ConsecutiveFailures: 1}); err != nil {
		t.Fatal(err)
	}
	// a dropped subscription's buffered state is not stored
	b.later(fhirstore.SubscriptionState{SubscriptionID: "gone", Delivered: 4})
	if err := b.drop(ctx, "gone"); err != nil {
		t.Fatal(err)
	}

	ev.down = true
	if err := b.flush(ctx); err == nil {
		t.Fatal("flush with the store down: no error")
	}
	if !b.holds(func(id string) bool { return id == "a" }) {
		t.Fatal("a failed flush lost the buffered state")
	}
	ev.down = false
	if err := b.flush(ctx); err != nil {
		t.Fatal(err)
	}
	if b.holds(func(string) bool { return true }) {
		t.Error("states left after a flush")
	}
	if got := stored(t, ev, "a"); got.Delivered != 6 {
		t.Errorf("a after flush: %+v, want delivered 6", got)
	}
	if got := stored(t, ev, "b"); got.Delivered != 3 || got.ConsecutiveFailures != 1 {
		t.Errorf("b: %+v, want the state stored at once (delivered 3, 1 failure)", got)
	}
	if _, err := ev.State(ctx, "gone"); !errors.Is(err, fhirstore.ErrNoState) {
		t.Errorf("a dropped subscription's state came back: %v", err)
	}
}

// TestStateBufferRunStoresWhatWaits: the run loop stores a state that
// starts waiting (no flush called), again after it idled, and returns
// when its context ends.
func TestStateBufferRunStoresWhatWaits(t *testing.T) {
	b, ev := bufferOn(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.run(ctx)
	}()
	for round, delivered := range []int64{3, 7} {
		b.later(fhirstore.SubscriptionState{SubscriptionID: "a", Delivered: delivered})
		deadline := time.Now().Add(5 * time.Second)
		for stored(t, ev, "a").Delivered != delivered {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: delivered %d not stored within 5 s", round, delivered)
			}
			time.Sleep(time.Millisecond)
		}
	}
	cancel()
	<-done
}

// discardLog is a logger that writes nothing.
var discardLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// deliveredTwo opens a store in which subscription a has delivered 2.
func deliveredTwo(t *testing.T) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "fhir.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.SaveDelivery(context.Background(), fhirstore.SubscriptionState{SubscriptionID: "a", Delivered: 2}); err != nil {
		t.Fatal(err)
	}
	return db
}

// gatedEvents is an event store whose saves wait until released.
type gatedEvents struct {
	fhirstore.EventStore
	entered chan struct{} // a save started
	release chan struct{} // closed: saves go on
}

func (g *gatedEvents) SaveDelivery(ctx context.Context, st fhirstore.SubscriptionState) error {
	g.entered <- struct{}{}
	<-g.release
	return g.EventStore.SaveDelivery(ctx, st)
}

// TestStateBufferHoldsWhileStoring: a state a flush is writing is still
// buffered until the store has it. holds says so (a partition is not
// handed over before) and state returns it (not the older stored one).
// Both failed when the flush emptied the buffer before writing: the
// multinode test then saw the next holder of a partition send an event
// again.
func TestStateBufferHoldsWhileStoring(t *testing.T) {
	ctx := context.Background()
	db := deliveredTwo(t)
	g := &gatedEvents{EventStore: db, entered: make(chan struct{}, 1), release: make(chan struct{})}
	b := newStateBuffer(g, discardLog)
	b.later(fhirstore.SubscriptionState{SubscriptionID: "a", Delivered: 6})
	flushed := make(chan error, 1)
	go func() { flushed <- b.flush(ctx) }()
	<-g.entered // the flush is writing
	if !b.holds(func(id string) bool { return id == "a" }) {
		t.Error("holds: false while the flush writes a's state")
	}
	if st, err := b.state(ctx, "a"); err != nil || st.Delivered != 6 {
		t.Errorf("state while the flush writes: %+v, %v; want delivered 6", st, err)
	}
	close(g.release)
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	if b.holds(func(string) bool { return true }) {
		t.Error("holds: true after the flush")
	}
	if st, err := b.state(ctx, "a"); err != nil || st.Delivered != 6 {
		t.Errorf("state after the flush: %+v, %v; want delivered 6", st, err)
	}
}

// slowReads is an event store whose State reads the stored state, then
// waits until released before answering.
type slowReads struct {
	fhirstore.EventStore
	read    chan struct{} // a State read the store
	release chan struct{}
}

func (s *slowReads) State(ctx context.Context, id string) (fhirstore.SubscriptionState, error) {
	st, err := s.EventStore.State(ctx, id)
	s.read <- struct{}{}
	<-s.release
	return st, err
}

// TestStateBufferReadRacesFlush: a flush that stores a buffered state
// while state is reading the older stored one does not make state answer
// the older one.
func TestStateBufferReadRacesFlush(t *testing.T) {
	ctx := context.Background()
	db := deliveredTwo(t)
	s := &slowReads{EventStore: db, read: make(chan struct{}, 1), release: make(chan struct{})}
	b := newStateBuffer(s, discardLog)
	b.later(fhirstore.SubscriptionState{SubscriptionID: "a", Delivered: 6})
	type answer struct {
		st  fhirstore.SubscriptionState
		err error
	}
	got := make(chan answer, 1)
	go func() {
		st, err := b.state(ctx, "a")
		got <- answer{st, err}
	}()
	<-s.read // the read found delivered 2
	if err := b.flush(ctx); err != nil {
		t.Fatal(err)
	}
	close(s.release)
	if a := <-got; a.err != nil || a.st.Delivered != 6 {
		t.Errorf("state read across a flush: %+v, %v; want delivered 6", a.st, a.err)
	}
}
