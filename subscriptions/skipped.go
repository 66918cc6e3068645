package subscriptions

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fhirsub/fhirsub/fhirstore"
)

// A change the matcher cannot process (a version that cannot be read or
// decoded, a Record the store refuses) is retried MaxChangeAttempts times
// while the store answers; then it is set aside so that the feed goes on:
// logged with its seq, counted (Stats.ChangesSkipped), listed
// (Stats.Skipped, /readyz), and remembered in the event store as a
// delivery state whose id is skippedID(cursor, seq) — the one list every
// node and every restart can read without a schema of its own. At every
// start (Run) the remembered changes are processed again, each under a
// cursor of its own; one that succeeds is forgotten, one that still fails
// stays set aside. So an operator fixes the cause and restarts the node.
// Recording is idempotent per (subscription, seq), so a change that
// another node recorded meanwhile is not recorded twice.

// skippedPrefix starts the delivery-state ids of set-aside changes. Two
// dots make it an id no server-assigned subscription id has.
const skippedPrefix = "..skipped."

// SkippedChange is a change of the feed the matcher set aside.
type SkippedChange struct {
	// Seq is the change's position in the feed.
	Seq int64 `json:"seq"`
	// Resource is Type/id/_history/version of the change.
	Resource string `json:"resource,omitempty"`
	// Error is the last error processing it.
	Error string `json:"error"`
}

// skippedSet is the set-aside changes known to this node.
type skippedSet struct {
	mu sync.Mutex
	m  map[int64]SkippedChange
}

func (s *skippedSet) put(c SkippedChange) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[int64]SkippedChange{}
	}
	s.m[c.Seq] = c
}

func (s *skippedSet) list() []SkippedChange {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SkippedChange, 0, len(s.m))
	for _, c := range s.m {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b SkippedChange) int { return int(a.Seq - b.Seq) })
	return out
}

func skippedID(cursor string, seq int64) string {
	return skippedPrefix + cursor + "." + strconv.FormatInt(seq, 10)
}

// skippedSeq returns the seq of the change a delivery state id remembers
// as set aside under the matcher's cursor (ok false for any other id).
func (mt *matcher) skippedSeq(id string) (seq int64, ok bool) {
	prefix := skippedID(mt.cursor, 0)
	prefix = prefix[:len(prefix)-1]
	if !strings.HasPrefix(id, prefix) {
		return 0, false
	}
	seq, err := strconv.ParseInt(strings.TrimPrefix(id, prefix), 10, 64)
	return seq, err == nil && seq >= 1
}

// isSkippedState reports whether a delivery state id remembers a
// set-aside change (and is no subscription's).
func isSkippedState(id string) bool { return strings.HasPrefix(id, skippedPrefix) }

func describe(c fhirstore.Change) string {
	return c.Type + "/" + c.ID + "/_history/" + c.VersionID
}

// SetAside implements match.Handler: change c is remembered as failed
// after attempts attempts, then the cursor moves past it (no events).
func (mt *matcher) SetAside(ctx context.Context, c fhirstore.Change, attempts int, cause error) error {
	msg := cause.Error()
	if len(msg) > 500 {
		msg = msg[:500]
	}
	st := fhirstore.SubscriptionState{SubscriptionID: skippedID(mt.cursor, c.Seq), ConsecutiveFailures: attempts,
		LastError: msg, LastAttempt: mt.now().UTC().Truncate(time.Millisecond)}
	if err := mt.events.SaveDelivery(ctx, st); err != nil {
		return fmt.Errorf("remember skipped change %d: %w", c.Seq, err)
	}
	if _, err := mt.events.Record(ctx, mt.cursor, c.Seq, c.Time, nil); err != nil {
		return fmt.Errorf("move the cursor past skipped change %d: %w", c.Seq, err)
	}
	mt.skipped.put(SkippedChange{Seq: c.Seq, Resource: describe(c), Error: msg})
	mt.stats.skippedChanges.Add(1)
	mt.log.Error("matcher: change set aside after repeated failures; the feed goes on (it is retried at the next start)",
		"seq", c.Seq, "resource", describe(c), "attempts", attempts, "err", cause)
	return nil
}

// reprocessSkipped processes again every remembered set-aside change
// (see skip); those that succeed are forgotten.
func (mt *matcher) reprocessSkipped(ctx context.Context, states []fhirstore.SubscriptionState) error {
	for _, st := range states {
		seq, ok := mt.skippedSeq(st.SubscriptionID)
		if !ok {
			continue
		}
		changes, err := mt.store.Changes(ctx, seq-1, 1)
		if err != nil {
			return fmt.Errorf("read skipped change %d: %w", seq, err)
		}
		if len(changes) == 0 || changes[0].Seq != seq {
			mt.log.Warn("skipped change no longer in the feed; forgotten", "seq", seq)
			_ = mt.events.DropSubscription(ctx, st.SubscriptionID)
			continue
		}
		c := changes[0]
		// A cursor of its own: the matcher's is past seq, so Record under
		// it would write nothing.
		if _, err := mt.process(ctx, c, fmt.Sprintf("%s.retry.%d", mt.cursor, seq), false); err != nil {
			if errors.Is(err, context.Canceled) {
				return err
			}
			msg := err.Error()
			mt.skipped.put(SkippedChange{Seq: seq, Resource: describe(c), Error: msg})
			mt.stats.skippedChanges.Add(1)
			mt.log.Error("matcher: skipped change still fails; it stays set aside", "seq", seq, "resource", describe(c), "err", err)
			continue
		}
		if err := mt.events.DropSubscription(ctx, st.SubscriptionID); err != nil {
			mt.log.Warn("forget reprocessed change", "seq", seq, "err", err)
		}
		mt.log.Info("matcher: skipped change reprocessed", "seq", seq, "resource", describe(c))
	}
	return nil
}
