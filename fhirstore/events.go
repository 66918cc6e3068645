package fhirstore

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrNoState is returned by EventStore.State for a subscription that has no
// delivery state yet.
var ErrNoState = errors.New("no subscription state")

// Match is one subscription triggered by one change, as the matcher hands
// it to EventStore.Record.
type Match struct {
	// SubscriptionID is the logical id of the Subscription resource.
	SubscriptionID string
	// Topic is the topic canonical URL (topic-based) or "" (classic).
	Topic string
	// Focus names the version that triggered: Type/ID/VersionID; for a
	// delete, the tombstone version.
	Type, ID, VersionID string
	// Interaction is the change's interaction.
	Interaction Interaction
}

// Event is one recorded notification event of one subscription.
type Event struct {
	Match
	// Number is the subscription's event number: 1, 2, 3, … without gaps.
	Number int64
	// ChangeSeq is the change feed seq that produced the event.
	ChangeSeq int64
	// Time is when the change was committed.
	Time time.Time
}

// SubscriptionState is the delivery state of one subscription, kept apart
// from the Subscription resource so that counting events or recording a
// delivery attempt does not create a resource version.
type SubscriptionState struct {
	SubscriptionID string
	// EventCount is the number of the last recorded event (events since
	// subscription start).
	EventCount int64
	// Delivered is the number of the last event acknowledged by the
	// receiver (rest-hook) — delivery resumes after it.
	Delivered int64
	// ConsecutiveFailures counts failed attempts since the last success.
	ConsecutiveFailures int
	// LastError describes the last failure ("" after a success).
	LastError string
	// LastAttempt and LastSuccess are the times of the last delivery
	// attempt and the last successful one (zero when none).
	LastAttempt, LastSuccess time.Time
	// NextAttempt is when the next retry is due (zero: now).
	NextAttempt time.Time
}

// EventStore persists what the subscription pipeline must not lose: the
// matcher's cursor into the change feed, each subscription's event log and
// numbering, and delivery state. Backends implement it next to Store.
// All methods are safe for concurrent use.
type EventStore interface {
	// Cursor returns the last change seq the named consumer has fully
	// processed (0 when it never ran).
	Cursor(ctx context.Context, name string) (int64, error)
	// Record appends one event per match, numbering each subscription's
	// events consecutively, and moves the named cursor to seq — all in one
	// atomic step. It is idempotent: if the cursor is already at or past
	// seq, nothing is written and the events recorded for seq are returned
	// (so re-processing a change after a crash never creates a second
	// event). A consumer must therefore call Record for one cursor in seq
	// order. One change triggers a subscription at most once: a match
	// whose subscription already has an event for seq (listed twice, or
	// recorded under another cursor) gets that event back, not a new one.
	// Matches may be empty (the cursor still moves). at is stored with
	// millisecond precision. Invalid arguments give ErrInvalid (see
	// ValidateRecord).
	Record(ctx context.Context, cursor string, seq int64, at time.Time, matches []Match) ([]Event, error)
	// Events returns the events of a subscription with from <= Number <=
	// to (to = 0: no upper bound), in number order, at most limit (0: all).
	// Pruned events are simply absent; a negative limit gives ErrInvalid.
	Events(ctx context.Context, subscriptionID string, from, to int64, limit int) ([]Event, error)
	// State returns the delivery state, or an error wrapping ErrNoState.
	State(ctx context.Context, subscriptionID string) (SubscriptionState, error)
	// States returns the delivery state of every subscription that has one.
	States(ctx context.Context) ([]SubscriptionState, error)
	// SaveDelivery stores the delivery fields of st (Delivered,
	// ConsecutiveFailures, LastError, LastAttempt, LastSuccess,
	// NextAttempt), creating the state if needed. EventCount is owned by
	// Record and is not changed. Delivered never moves backwards. Times
	// are stored with millisecond precision (the zero time stays zero).
	// Invalid fields give ErrInvalid (see ValidateDelivery).
	SaveDelivery(ctx context.Context, st SubscriptionState) error
	// Prune deletes a subscription's delivered events beyond the newest
	// keep ones (those numbered <= Delivered-keep); undelivered events are
	// kept. Numbering is not affected. A negative keep gives ErrInvalid.
	Prune(ctx context.Context, subscriptionID string, keep int) error
	// DropSubscription deletes the events and state of a subscription; a
	// later Record for the same id numbers from 1 again.
	DropSubscription(ctx context.Context, subscriptionID string) error
}

// Recording is one change's part of a batch of recordings: its seq, its
// commit time and the subscriptions it triggers (see EventStore.Record).
// A backend may offer RecordMany(ctx, cursor, []Recording), recording a
// batch in one atomic step as if Record were called for each in order
// (fhirstore/sqlite does; the subscription pipeline uses it when present).
type Recording struct {
	Seq     int64
	At      time.Time
	Matches []Match
}

// ValidateRecord checks the arguments of EventStore.Record, so that every
// backend refuses the same input: a cursor name, a seq >= 1, and matches
// with a valid subscription id, resource type and id, a version id and a
// known interaction. The error wraps ErrInvalid.
func ValidateRecord(cursor string, seq int64, matches []Match) error {
	if cursor == "" {
		return fmt.Errorf("%w: empty cursor name", ErrInvalid)
	}
	if seq < 1 {
		return fmt.Errorf("%w: change seq %d", ErrInvalid, seq)
	}
	for i, m := range matches {
		switch {
		case !ValidID(m.SubscriptionID):
			return fmt.Errorf("%w: match %d: subscription id %q", ErrInvalid, i, m.SubscriptionID)
		case !ValidType(m.Type):
			return fmt.Errorf("%w: match %d: resource type %q", ErrInvalid, i, m.Type)
		case !ValidID(m.ID):
			return fmt.Errorf("%w: match %d: resource id %q", ErrInvalid, i, m.ID)
		case m.VersionID == "":
			return fmt.Errorf("%w: match %d: empty version id", ErrInvalid, i)
		}
		switch m.Interaction {
		case InteractionCreate, InteractionUpdate, InteractionDelete:
		default:
			return fmt.Errorf("%w: match %d: interaction %q", ErrInvalid, i, m.Interaction)
		}
	}
	return nil
}

// ValidateDelivery checks the argument of EventStore.SaveDelivery: a valid
// subscription id and no negative counter. The error wraps ErrInvalid.
func ValidateDelivery(st SubscriptionState) error {
	switch {
	case !ValidID(st.SubscriptionID):
		return fmt.Errorf("%w: subscription id %q", ErrInvalid, st.SubscriptionID)
	case st.Delivered < 0:
		return fmt.Errorf("%w: delivered %d", ErrInvalid, st.Delivered)
	case st.ConsecutiveFailures < 0:
		return fmt.Errorf("%w: consecutive failures %d", ErrInvalid, st.ConsecutiveFailures)
	}
	return nil
}

// Lease is one term of the lease of a partition of the rest-hook delivery
// work, as a backend that several nodes share stores it: Node delivers
// the subscriptions of Partition until Expires. Terms of one partition are
// numbered 1, 2, 3, …; the holder of the newest unexpired term is the
// owner, and a newer term supersedes every older one.
type Lease struct {
	Partition int
	Term      int64
	Node      string
	Expires   time.Time
}
