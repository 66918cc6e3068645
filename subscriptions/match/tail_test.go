package match

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/fhirstore"
)

// memFeed is a change feed in memory; Ping fails while down is set.
type memFeed struct {
	mu      sync.Mutex
	changes []fhirstore.Change
	down    bool
}

func (f *memFeed) Changes(_ context.Context, after int64, limit int) ([]fhirstore.Change, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fhirstore.Change
	for _, c := range f.changes {
		if c.Seq > after && len(out) < limit {
			out = append(out, c)
		}
	}
	return out, nil
}

func (f *memFeed) Wait(ctx context.Context, _ int64) error {
	<-ctx.Done()
	return ctx.Err()
}

func (f *memFeed) Ping(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errors.New("store down")
	}
	return nil
}

// recorder is a Handler that stores the cursor for the changes in store,
// fails the changes in fail, and reports what it saw on done once it has
// seen the change last.
type recorder struct {
	mu       sync.Mutex
	store    map[int64]bool
	fail     map[int64]bool
	handled  []int64
	aside    []int64
	cursor   int64
	attempts map[int64]int
	last     int64
	done     chan struct{}
}

func (r *recorder) Handle(_ context.Context, c fhirstore.Change) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts[c.Seq]++
	if r.fail[c.Seq] {
		return false, errors.New("cannot decode")
	}
	r.handled = append(r.handled, c.Seq)
	if r.store[c.Seq] {
		r.cursor = c.Seq
	}
	if c.Seq == r.last {
		close(r.done)
	}
	return r.store[c.Seq], nil
}

func (r *recorder) SetAside(_ context.Context, c fhirstore.Change, _ int, _ error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.aside = append(r.aside, c.Seq)
	r.cursor = c.Seq
	return nil
}

func (r *recorder) SaveCursor(_ context.Context, c fhirstore.Change) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cursor = c.Seq
	return nil
}

func (r *recorder) Reading(time.Time) {}

func newRecorder(last int64) *recorder {
	return &recorder{store: map[int64]bool{}, fail: map[int64]bool{}, attempts: map[int64]int{}, last: last,
		done: make(chan struct{})}
}

func feedOf(n int) *memFeed {
	f := &memFeed{}
	for i := 1; i <= n; i++ {
		f.changes = append(f.changes, fhirstore.Change{Seq: int64(i), Type: "Observation", ID: "o", VersionID: "1"})
	}
	return f
}

// run runs a Tail until the recorder saw its last change, then stops it
// (the Tail saves its cursor as it stops).
func run(t *testing.T, f *memFeed, r *recorder, cfg TailConfig) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		NewTail(f, r, cfg).Run(ctx, 0)
	}()
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		t.Error("the tail did not reach the last change in 30 s")
	}
	cancel()
	<-stopped
}

// TestTailHandsEveryChangeOnceAndSavesTheCursorLazily: every change is
// handed once, in order; a change that stores nothing leaves the cursor to
// be saved later, and it is saved when the Tail stops.
func TestTailHandsEveryChangeOnceAndSavesTheCursorLazily(t *testing.T) {
	f := feedOf(10)
	r := newRecorder(10)
	r.store[4] = true
	run(t, f, r, TailConfig{BatchSize: 3, CursorEvery: time.Hour})
	t.Logf("handled=%v cursor=%d", r.handled, r.cursor)
	if len(r.handled) != 10 {
		t.Fatalf("handled %v, want 1..10 once each", r.handled)
	}
	for i, seq := range r.handled {
		if seq != int64(i+1) {
			t.Fatalf("handled %v, want 1..10 in order", r.handled)
		}
	}
	if r.cursor != 10 {
		t.Errorf("cursor %d after stop, want 10 (saved as the tail stops)", r.cursor)
	}
}

// TestTailSetsAsideOnlyWhileTheStoreAnswers: a change that keeps failing
// is set aside after MaxAttempts and the feed goes on; while Ping fails it
// is retried, never set aside.
func TestTailSetsAsideOnlyWhileTheStoreAnswers(t *testing.T) {
	f := feedOf(5)
	r := newRecorder(5)
	r.fail[3] = true
	run(t, f, r, TailConfig{MaxAttempts: 2})
	t.Logf("aside=%v attempts of 3=%d handled=%v", r.aside, r.attempts[3], r.handled)
	if len(r.aside) != 1 || r.aside[0] != 3 || r.attempts[3] != 2 {
		t.Errorf("aside %v after %d attempts, want [3] after 2", r.aside, r.attempts[3])
	}
	if len(r.handled) != 4 {
		t.Errorf("handled %v, want 1, 2, 4, 5", r.handled)
	}

	down := feedOf(2)
	down.down = true
	r2 := newRecorder(2)
	r2.fail[1] = true
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		NewTail(down, r2, TailConfig{MaxAttempts: 2}).Run(ctx, 0)
	}()
	// Wait until the change was tried more often than MaxAttempts: with
	// the store down it must still not be set aside.
	deadline := time.Now().Add(30 * time.Second)
	for {
		r2.mu.Lock()
		n := r2.attempts[1]
		r2.mu.Unlock()
		if n >= 4 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-stopped
	t.Logf("store down: attempts=%d aside=%v", r2.attempts[1], r2.aside)
	if r2.attempts[1] < 4 {
		t.Errorf("change 1 tried %d times in 30 s, want ≥ 4", r2.attempts[1])
	}
	if len(r2.aside) != 0 || len(r2.handled) != 0 {
		t.Errorf("with the store down: aside %v, handled %v; want nothing (an outage skips nothing)", r2.aside, r2.handled)
	}
}

// batcher is a recorder that also takes changes in batches of up to 3,
// stopping before a failing change, and storing the cursor only when a
// batch holds a change in store.
type batcher struct {
	*recorder
	batches [][]int64
}

func (b *batcher) HandleBatch(ctx context.Context, changes []fhirstore.Change) (int, bool, error) {
	b.mu.Lock()
	fails := b.fail[changes[0].Seq]
	b.mu.Unlock()
	if fails {
		b.mu.Lock()
		b.attempts[changes[0].Seq]++
		b.mu.Unlock()
		return 0, false, errors.New("cannot decode")
	}
	var seqs []int64
	stored := false
	for _, c := range changes[:min(len(changes), 3)] {
		b.mu.Lock()
		f := b.fail[c.Seq]
		b.mu.Unlock()
		if f {
			break
		}
		s, _ := b.Handle(ctx, c)
		stored = stored || s
		seqs = append(seqs, c.Seq)
	}
	b.mu.Lock()
	b.batches = append(b.batches, seqs)
	b.mu.Unlock()
	return len(seqs), stored, nil
}

// TestTailBatchesAndStillSetsAside: with a BatchHandler the Tail hands
// runs of changes, moves past each run, and a change that fails in a
// batch is retried alone and set aside after MaxAttempts.
func TestTailBatchesAndStillSetsAside(t *testing.T) {
	f2 := feedOf(8)
	b2 := &batcher{recorder: newRecorder(8)}
	b2.fail[4] = true
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		NewTail(f2, b2, TailConfig{MaxAttempts: 2}).Run(ctx, 0)
	}()
	select {
	case <-b2.done:
	case <-time.After(30 * time.Second):
		t.Error("the tail did not reach the last change in 30 s")
	}
	cancel()
	<-stopped
	t.Logf("batches=%v handled=%v aside=%v cursor=%d", b2.batches, b2.handled, b2.aside, b2.cursor)
	if fmt.Sprint(b2.handled) != "[1 2 3 5 6 7 8]" {
		t.Errorf("handled %v, want 1 2 3 5 6 7 8 once each, in order", b2.handled)
	}
	if fmt.Sprint(b2.aside) != "[4]" {
		t.Errorf("aside %v, want [4]", b2.aside)
	}
	if len(b2.batches) < 2 || fmt.Sprint(b2.batches[0]) != "[1 2 3]" {
		t.Errorf("batches %v, want [1 2 3] first", b2.batches)
	}
	if b2.cursor != 8 {
		t.Errorf("cursor %d after stop, want 8", b2.cursor)
	}
}
