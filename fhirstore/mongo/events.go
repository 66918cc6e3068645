package mongo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fhirsub/fhirsub/fhirstore"
)

// The event store: collections cursors, events and states (see doc.go,
// "Events", for the write order and why a Record cut short converges when
// it runs again).

var _ fhirstore.EventStore = (*DB)(nil)

// eventDoc is one document of the events collection. Its _id,
// "sub/number", decides which Record gets a number; the unique index
// seq_sub {seq, sub} decides that a change triggers a subscription once.
type eventDoc struct {
	Key         string    `bson:"_id"`
	Sub         string    `bson:"sub"`
	Number      int64     `bson:"number"`
	Seq         int64     `bson:"seq"`
	Topic       string    `bson:"topic"`
	Type        string    `bson:"type"`
	ID          string    `bson:"id"`
	Vid         string    `bson:"vid"`
	Interaction string    `bson:"interaction"`
	Time        time.Time `bson:"time"`
}

// cursorDoc is one document of the cursors collection: _id is the
// consumer's name.
type cursorDoc struct {
	Name string `bson:"_id"`
	Seq  int64  `bson:"seq"`
}

func eventKey(sub string, number int64) string { return sub + "/" + strconv.FormatInt(number, 10) }

func newEventDoc(m fhirstore.Match, number, seq int64, at time.Time) *eventDoc {
	return &eventDoc{
		Key: eventKey(m.SubscriptionID, number), Sub: m.SubscriptionID, Number: number, Seq: seq,
		Topic: m.Topic, Type: m.Type, ID: m.ID, Vid: m.VersionID, Interaction: string(m.Interaction), Time: at,
	}
}

func (e *eventDoc) event() fhirstore.Event {
	return fhirstore.Event{
		Match: fhirstore.Match{
			SubscriptionID: e.Sub, Topic: e.Topic, Type: e.Type, ID: e.ID, VersionID: e.Vid,
			Interaction: fhirstore.Interaction(e.Interaction),
		},
		Number: e.Number, ChangeSeq: e.Seq, Time: e.Time.UTC(),
	}
}

// subLockKey and cursorLockKey name the in-process locks of a
// subscription's numbering and delivery state and of a cursor.
func subLockKey(sub string) string       { return "subscription-state/" + sub }
func cursorLockKey(cursor string) string { return "cursor/" + cursor }

// Cursor returns the last change seq the named consumer has processed, 0
// when it never ran.
func (d *DB) Cursor(ctx context.Context, name string) (int64, error) {
	if d.closed() {
		return 0, fhirstore.ErrClosed
	}
	seq, err := d.cursorSeq(ctx, name)
	return seq, export(err)
}

func (d *DB) cursorSeq(ctx context.Context, name string) (int64, error) {
	var c cursorDoc
	err := d.cursors.FindOne(ctx, bson.D{{Key: "_id", Value: name}}).Decode(&c)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read cursor %q: %w", name, err)
	}
	return c.Seq, nil
}

// Record appends one event per match and then moves the cursor to seq, in
// an order that a retry after a crash completes (doc.go). A cursor already at or past seq
// makes it a replay: nothing is written and the events recorded for seq
// are returned, ordered by subscription id. A subscription already holding
// an event for seq gets that event back, not a second one.
func (d *DB) Record(ctx context.Context, cursor string, seq int64, at time.Time, matches []fhirstore.Match) ([]fhirstore.Event, error) {
	if err := fhirstore.ValidateRecord(cursor, seq, matches); err != nil {
		return nil, err
	}
	at = time.UnixMilli(at.UnixMilli()).UTC()
	keys := []string{cursorLockKey(cursor)}
	for _, m := range matches {
		keys = append(keys, subLockKey(m.SubscriptionID))
	}
	unlock := d.lockKeys(keys)
	defer unlock()
	if d.closed() {
		return nil, fhirstore.ErrClosed
	}
	evs, err := d.record(ctx, cursor, seq, at, matches)
	if err != nil {
		return nil, export(fmt.Errorf("record events of seq %d: %w", seq, err))
	}
	return evs, nil
}

// record is Record's body.
func (d *DB) record(ctx context.Context, cursor string, seq int64, at time.Time, matches []fhirstore.Match) ([]fhirstore.Event, error) {
	cur, err := d.cursorSeq(ctx, cursor)
	if err != nil {
		return nil, err
	}
	if cur >= seq {
		return d.seqEvents(ctx, seq)
	}
	out := make([]fhirstore.Event, 0, len(matches))
	for _, m := range matches {
		ev, err := d.recordOne(ctx, seq, at, m)
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	if err := d.moveCursor(ctx, cursor, seq); err != nil {
		return nil, err
	}
	return out, d.hook("cursor")
}

// recordOne makes sure that m's subscription has an event for seq and
// returns it: the existing one, or a new one numbered one past the
// subscription's count. Every number up to the count has been used, so the
// first free number lies above it; a number already taken (a concurrent
// Record, or one that died before raising the count) gives a duplicate
// key, and the next try jumps past the subscription's newest event.
func (d *DB) recordOne(ctx context.Context, seq int64, at time.Time, m fhirstore.Match) (fhirstore.Event, error) {
	sub := m.SubscriptionID
	st, _, err := d.readState(ctx, sub)
	if err != nil {
		return fhirstore.Event{}, err
	}
	last := st.EventCount
	for range maxAttempts {
		doc := newEventDoc(m, last+1, seq, at)
		_, err := d.events.InsertOne(ctx, doc)
		if err == nil {
			if err := d.hook("event"); err != nil {
				return fhirstore.Event{}, err
			}
			if err := d.raiseCount(ctx, sub, doc.Number); err != nil {
				return fhirstore.Event{}, err
			}
			return doc.event(), d.hook("count")
		}
		if !isDup(err) {
			return fhirstore.Event{}, fmt.Errorf("insert event %s: %w", doc.Key, err)
		}
		// Either the number is taken, or the subscription has an event
		// for seq already (seq_sub).
		if ev, ok, err := d.existingEvent(ctx, seq, sub); err != nil || ok {
			return ev, err
		}
		top, err := d.topNumber(ctx, sub)
		if err != nil {
			return fhirstore.Event{}, err
		}
		last = max(last+1, top) // last+1 exists
	}
	return fhirstore.Event{}, fmt.Errorf("number event of %s: gave up after %d collisions", sub, maxAttempts)
}

// existingEvent returns the subscription's event for seq if it has one:
// a duplicate match, another cursor's event, or a retry after a crash. The
// count is raised to cover it (a no-op unless a Record died before that).
func (d *DB) existingEvent(ctx context.Context, seq int64, sub string) (fhirstore.Event, bool, error) {
	ev, ok, err := d.findEvent(ctx, seq, sub)
	if err != nil || !ok {
		return ev, ok, err
	}
	return ev, true, d.raiseCount(ctx, sub, ev.Number)
}

// hook calls the test hook, if any, after a write of Record.
func (d *DB) hook(step string) error {
	if d.recordHook == nil {
		return nil
	}
	return d.recordHook(step)
}

func (d *DB) findEvent(ctx context.Context, seq int64, sub string) (fhirstore.Event, bool, error) {
	var e eventDoc
	err := d.events.FindOne(ctx, bson.D{{Key: "seq", Value: seq}, {Key: "sub", Value: sub}}).Decode(&e)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return fhirstore.Event{}, false, nil
	}
	if err != nil {
		return fhirstore.Event{}, false, fmt.Errorf("find event of %s for seq %d: %w", sub, seq, err)
	}
	return e.event(), true, nil
}

// seqEvents returns the events recorded for seq, by subscription id.
func (d *DB) seqEvents(ctx context.Context, seq int64) ([]fhirstore.Event, error) {
	opts := options.Find().SetSort(bson.D{{Key: "sub", Value: 1}})
	evs, err := d.findEvents(ctx, bson.D{{Key: "seq", Value: seq}}, opts)
	if err != nil {
		return nil, fmt.Errorf("replay seq %d: %w", seq, err)
	}
	return evs, nil
}

func (d *DB) findEvents(ctx context.Context, filter bson.D, opts *options.FindOptionsBuilder) ([]fhirstore.Event, error) {
	cur, err := d.events.Find(ctx, filter, opts)
	if err != nil {
		return nil, err
	}
	var docs []eventDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, err
	}
	out := make([]fhirstore.Event, len(docs))
	for i := range docs {
		out[i] = docs[i].event()
	}
	return out, nil
}

// topNumber is the number of the subscription's newest event (0: none).
func (d *DB) topNumber(ctx context.Context, sub string) (int64, error) {
	opts := options.FindOne().
		SetSort(bson.D{{Key: "number", Value: -1}}).
		SetProjection(bson.D{{Key: "number", Value: 1}})
	var top eventDoc
	err := d.events.FindOne(ctx, bson.D{{Key: "sub", Value: sub}}, opts).Decode(&top)
	if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return 0, fmt.Errorf("read last event of %s: %w", sub, err)
	}
	return top.Number, nil
}

// raiseCount sets the subscription's EventCount to at least number,
// creating its state if needed. It is only called once event number
// exists, which is what lets numbering start above the count and Prune
// delete up to it.
func (d *DB) raiseCount(ctx context.Context, sub string, number int64) error {
	update := bson.D{
		{Key: "$max", Value: bson.D{{Key: "eventCount", Value: number}}},
		{Key: "$setOnInsert", Value: bson.D{
			{Key: "delivered", Value: int64(0)}, {Key: "failures", Value: int64(0)}, {Key: "lastError", Value: ""},
			{Key: "lastAttempt", Value: int64(0)}, {Key: "lastSuccess", Value: int64(0)}, {Key: "nextAttempt", Value: int64(0)},
		}},
	}
	return d.upsert(ctx, d.states, sub, update, "raise event count of "+sub)
}

// moveCursor moves the cursor to seq unless it is already further.
func (d *DB) moveCursor(ctx context.Context, name string, seq int64) error {
	update := bson.D{{Key: "$max", Value: bson.D{{Key: "seq", Value: seq}}}}
	return d.upsert(ctx, d.cursors, name, update, "move cursor "+name)
}

// upsert applies update to the document id of coll, creating it if
// needed. Two first upserts of one id can race: the loser's insert gets a
// duplicate key and applies the update to the winner's document.
func (d *DB) upsert(ctx context.Context, coll *mongo.Collection, id string, update bson.D, what string) error {
	filter := bson.D{{Key: "_id", Value: id}}
	for range 2 {
		_, err := coll.UpdateOne(ctx, filter, update, options.UpdateOne().SetUpsert(true))
		if err == nil {
			return nil
		}
		if !isDup(err) {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return fmt.Errorf("%s: duplicate key twice", what)
}

// Events returns the events of a subscription numbered from..to (to = 0:
// no upper bound), in number order, at most limit of them (0: all).
func (d *DB) Events(ctx context.Context, subscriptionID string, from, to int64, limit int) ([]fhirstore.Event, error) {
	if limit < 0 {
		return nil, fmt.Errorf("%w: events limit %d", fhirstore.ErrInvalid, limit)
	}
	if d.closed() {
		return nil, fhirstore.ErrClosed
	}
	rng := bson.D{{Key: "$gte", Value: from}}
	if to > 0 {
		rng = append(rng, bson.E{Key: "$lte", Value: to})
	}
	filter := bson.D{{Key: "sub", Value: subscriptionID}, {Key: "number", Value: rng}}
	opts := options.Find().SetSort(bson.D{{Key: "number", Value: 1}})
	if limit > 0 {
		opts.SetLimit(int64(limit))
	}
	evs, err := d.findEvents(ctx, filter, opts)
	if err != nil {
		return nil, dbErr("read events of "+subscriptionID, err)
	}
	return evs, nil
}
