package fhirstore

import (
	"context"
	"errors"
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
	// seq, nothing is written and the events recorded then are returned
	// (so re-processing a change after a crash never creates a second
	// event). Matches may be empty (the cursor still moves).
	Record(ctx context.Context, cursor string, seq int64, at time.Time, matches []Match) ([]Event, error)
	// Events returns the events of a subscription with from <= Number <=
	// to (to = 0: no upper bound), in number order, at most limit (0: all).
	Events(ctx context.Context, subscriptionID string, from, to int64, limit int) ([]Event, error)
	// State returns the delivery state, or ErrNoState.
	State(ctx context.Context, subscriptionID string) (SubscriptionState, error)
	// States returns the delivery state of every subscription that has one.
	States(ctx context.Context) ([]SubscriptionState, error)
	// SaveDelivery stores the delivery fields of st (Delivered,
	// ConsecutiveFailures, LastError, LastAttempt, LastSuccess,
	// NextAttempt), creating the state if needed. EventCount is owned by
	// Record and is not changed. Delivered never moves backwards.
	SaveDelivery(ctx context.Context, st SubscriptionState) error
	// Prune deletes a subscription's delivered events beyond the newest
	// keep ones; undelivered events are kept.
	Prune(ctx context.Context, subscriptionID string, keep int) error
	// DropSubscription deletes the events and state of a subscription.
	DropSubscription(ctx context.Context, subscriptionID string) error
}
