package mongo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fhirsub/fhirsub/fhirstore"
)

// stateDoc is one document of the states collection: the delivery state
// of one subscription, _id its id. Record owns eventCount (raised with
// $max); SaveDelivery owns the other fields (delivered raised with $max).
// Times are unix milliseconds, 0 for the zero time.
type stateDoc struct {
	Sub         string `bson:"_id"`
	EventCount  int64  `bson:"eventCount"`
	Delivered   int64  `bson:"delivered"`
	Failures    int64  `bson:"failures"`
	LastError   string `bson:"lastError"`
	LastAttempt int64  `bson:"lastAttempt"`
	LastSuccess int64  `bson:"lastSuccess"`
	NextAttempt int64  `bson:"nextAttempt"`
}

func (s *stateDoc) state() fhirstore.SubscriptionState {
	return fhirstore.SubscriptionState{
		SubscriptionID: s.Sub, EventCount: s.EventCount, Delivered: s.Delivered,
		ConsecutiveFailures: int(s.Failures), LastError: s.LastError,
		LastAttempt: fromMillis(s.LastAttempt), LastSuccess: fromMillis(s.LastSuccess),
		NextAttempt: fromMillis(s.NextAttempt),
	}
}

// toMillis stores a time as unix milliseconds, the zero time as 0.
func toMillis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// readState reads a subscription's state document; ok is false when it
// has none.
func (d *DB) readState(ctx context.Context, sub string) (st stateDoc, ok bool, err error) {
	err = d.states.FindOne(ctx, bson.D{{Key: "_id", Value: sub}}).Decode(&st)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return stateDoc{}, false, nil
	}
	if err != nil {
		return stateDoc{}, false, fmt.Errorf("read state of %s: %w", sub, err)
	}
	return st, true, nil
}

// State returns the delivery state of a subscription, or an error
// wrapping fhirstore.ErrNoState.
func (d *DB) State(ctx context.Context, subscriptionID string) (fhirstore.SubscriptionState, error) {
	if d.closed() {
		return fhirstore.SubscriptionState{}, fhirstore.ErrClosed
	}
	st, ok, err := d.readState(ctx, subscriptionID)
	if err != nil {
		return fhirstore.SubscriptionState{}, export(err)
	}
	if !ok {
		return fhirstore.SubscriptionState{}, fmt.Errorf("%w: %s", fhirstore.ErrNoState, subscriptionID)
	}
	return st.state(), nil
}

// States returns the delivery state of every subscription that has one,
// ordered by subscription id.
func (d *DB) States(ctx context.Context) ([]fhirstore.SubscriptionState, error) {
	if d.closed() {
		return nil, fhirstore.ErrClosed
	}
	docs, err := findAll[stateDoc](ctx, d.states, "read states", bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, err
	}
	out := make([]fhirstore.SubscriptionState, len(docs))
	for i := range docs {
		out[i] = docs[i].state()
	}
	return out, nil
}

// SaveDelivery stores the delivery fields of st, creating the state if
// needed. EventCount is left alone and Delivered never moves backwards
// ($max).
func (d *DB) SaveDelivery(ctx context.Context, st fhirstore.SubscriptionState) error {
	if err := fhirstore.ValidateDelivery(st); err != nil {
		return err
	}
	unlock := d.lockKeys([]string{subLockKey(st.SubscriptionID)})
	defer unlock()
	if d.closed() {
		return fhirstore.ErrClosed
	}
	update := bson.D{
		{Key: "$max", Value: bson.D{{Key: "delivered", Value: st.Delivered}}},
		{Key: "$set", Value: bson.D{
			{Key: "failures", Value: int64(st.ConsecutiveFailures)}, {Key: "lastError", Value: st.LastError},
			{Key: "lastAttempt", Value: toMillis(st.LastAttempt)}, {Key: "lastSuccess", Value: toMillis(st.LastSuccess)},
			{Key: "nextAttempt", Value: toMillis(st.NextAttempt)},
		}},
		{Key: "$setOnInsert", Value: bson.D{{Key: "eventCount", Value: int64(0)}}},
	}
	return export(d.upsert(ctx, d.states, st.SubscriptionID, update, "save delivery state of "+st.SubscriptionID))
}

// Prune deletes the subscription's delivered events beyond the newest keep
// ones; undelivered events are never deleted, nor any past EventCount
// (numbering starts above the count, see recordOne).
func (d *DB) Prune(ctx context.Context, subscriptionID string, keep int) error {
	if keep < 0 {
		return fmt.Errorf("%w: prune keep %d", fhirstore.ErrInvalid, keep)
	}
	unlock := d.lockKeys([]string{subLockKey(subscriptionID)})
	defer unlock()
	if d.closed() {
		return fhirstore.ErrClosed
	}
	st, ok, err := d.readState(ctx, subscriptionID)
	if err != nil || !ok {
		return export(err)
	}
	limit := min(st.Delivered-int64(keep), st.EventCount)
	if limit < 1 {
		return nil
	}
	filter := bson.D{
		{Key: "sub", Value: subscriptionID},
		{Key: "number", Value: bson.D{{Key: "$lte", Value: limit}}},
	}
	if _, err := d.events.DeleteMany(ctx, filter); err != nil {
		return dbErr("prune events of "+subscriptionID, err)
	}
	return nil
}

// DropSubscription deletes the events and then the state of a
// subscription; a failure between the two leaves the state, and calling it
// again finishes the job.
func (d *DB) DropSubscription(ctx context.Context, subscriptionID string) error {
	unlock := d.lockKeys([]string{subLockKey(subscriptionID)})
	defer unlock()
	if d.closed() {
		return fhirstore.ErrClosed
	}
	drop := func(ctx context.Context) error {
		if _, err := d.events.DeleteMany(ctx, bson.D{{Key: "sub", Value: subscriptionID}}); err != nil {
			return fmt.Errorf("delete events: %w", err)
		}
		if _, err := d.states.DeleteOne(ctx, bson.D{{Key: "_id", Value: subscriptionID}}); err != nil {
			return fmt.Errorf("delete state: %w", err)
		}
		return nil
	}
	if err := drop(ctx); err != nil {
		return export(fmt.Errorf("drop subscription %s: %w", subscriptionID, err))
	}
	return nil
}
