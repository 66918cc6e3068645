package legacy_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/fhirsub/fhirsub/channels"
	"github.com/fhirsub/fhirsub/fhirstore"
)

// countingReads counts the version reads of the pipeline.
type countingReads struct {
	fhirstore.Store
	reads atomic.Int64
}

func (c *countingReads) VRead(ctx context.Context, typ, id, version string) (*fhirstore.Resource, error) {
	c.reads.Add(1)
	return c.Store.VRead(ctx, typ, id, version)
}

// TestNoLegacyWorkWithoutSubscribers: with no legacy client subscribed and
// no Subscription interested, a change costs no version read (the matcher
// and the feed share one tail, and the feed builds nothing for nobody);
// the head still moves, and a client that subscribes afterwards gets the
// next change and can replay the earlier ones from the store.
func TestNoLegacyWorkWithoutSubscribers(t *testing.T) {
	checkGoroutines(t)
	var counter *countingReads
	s := mustStartReading(t, "", channels.Config{}, channels.LegacyConfig{}, func(st fhirstore.Store) fhirstore.Store {
		counter = &countingReads{Store: st}
		return counter
	})
	ctx := context.Background()
	mustDial(t, s.url) // connected, not subscribed
	start := s.proto.Head()
	// the built-in topics the pipeline stored at start are read once matched
	eventually(t, "the matcher to reach the start", func() bool { return s.mgr.Stats().ChangesProcessed >= start })
	before := counter.reads.Load()
	const n = 20
	for range n {
		if _, err := s.store.Create(ctx, resource(t, observationJSON)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the head to pass the writes", func() bool { return s.proto.Head() == start+n })
	reads := counter.reads.Load() - before
	t.Logf("%d changes with no legacy subscriber: %d version reads", n, reads)
	if reads != 0 {
		t.Errorf("%d version reads for %d changes nobody listens to, want 0", reads, n)
	}

	ws := mustDial(t, s.url)
	subscribe(t, ws, "s", []string{"Observation"}, nil)
	marker, err := s.store.Create(ctx, resource(t, observationJSON))
	if err != nil {
		t.Fatal(err)
	}
	if m := recvType(t, ws, "update"); m.Data["resource_id"] != marker.ID || *m.Seq != start+n+1 {
		t.Fatalf("after subscribing: %s, want the marker %s at %d", m.raw, marker.ID, start+n+1)
	}
	events, err := s.feed.Replay(ctx, start, start+n)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("replay of the %d unheard changes: %d events", n, len(events))
	if len(events) < n {
		t.Fatalf("replay gave %d events, want at least %d (one update each)", len(events), n)
	}
	seen := map[int64]bool{}
	for _, ev := range events {
		if ev.ResourceType != "Observation" {
			t.Errorf("replayed event of seq %d is a %s, want an Observation", ev.Seq, ev.ResourceType)
		}
		seen[ev.Seq] = true
	}
	for seq := start + 1; seq <= start+n; seq++ {
		if !seen[seq] {
			t.Errorf("replay misses change %d", seq)
		}
	}
}
