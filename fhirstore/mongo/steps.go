package mongo

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// current reads the state of typ/id from the versions collection, which
// is the authority for version numbers.
func (d *DB) current(ctx context.Context, typ, id string) (state, error) {
	filter := bson.D{{Key: "type", Value: typ}, {Key: "id", Value: id}}
	opts := options.FindOne().
		SetSort(bson.D{{Key: "vid", Value: -1}}).
		SetProjection(bson.D{{Key: "body", Value: 0}})
	var top versionDoc
	if err := d.versions.FindOne(ctx, filter, opts).Decode(&top); err != nil {
		if errors.Is(err, mongo.ErrNoDocuments) {
			return state{}, nil
		}
		return state{}, fmt.Errorf("read current version: %w", err)
	}
	st := state{top: top.Vid}
	cur := top
	if top.Aborted {
		filter = append(filter, bson.E{Key: "aborted", Value: false})
		cur = versionDoc{}
		if err := d.versions.FindOne(ctx, filter, opts).Decode(&cur); err != nil {
			if errors.Is(err, mongo.ErrNoDocuments) {
				return st, nil
			}
			return state{}, fmt.Errorf("read current version: %w", err)
		}
	}
	st.exists, st.vid, st.deleted, st.lastUpdated = true, cur.Vid, cur.Deleted, cur.LastUpdated
	return st, nil
}

// currentFast reads the state of typ/id from its resources document: one
// lookup by _id. The document can lag behind the versions (a write in
// flight, or one that died before updating it, or a placeholder), but a
// writer that trusts a lagging state then tries to insert a version number
// that is taken, gets a duplicate key and starts again with current.
func (d *DB) currentFast(ctx context.Context, typ, id string) (state, error) {
	opts := options.FindOne().SetProjection(bson.D{{Key: "body", Value: 0}, {Key: "keys", Value: 0}})
	var r resourceDoc
	if err := d.resources.FindOne(ctx, bson.D{{Key: "_id", Value: resourceKey(typ, id)}}, opts).Decode(&r); err != nil {
		if errors.Is(err, mongo.ErrNoDocuments) {
			return state{}, nil
		}
		return state{}, fmt.Errorf("read current resource: %w", err)
	}
	return state{exists: true, vid: r.Vid, deleted: r.Deleted, lastUpdated: r.LastUpdated, top: r.Vid}, nil
}

// reserve inserts c as the next change and returns its seq. The unique _id
// decides between concurrent writers; the loser tries the next number.
// A number is only tried once the one below it exists (the hint is one
// past this process's last reservation, the fallback one past the
// highest), so the feed never has a seq that stays missing.
func (d *DB) reserve(ctx context.Context, c *changeDoc) (int64, error) {
	// One reservation at a time in this process: collisions then only
	// happen with other processes.
	d.reserveMu.Lock()
	defer d.reserveMu.Unlock()
	seq := d.seqHint.Load()
	collisions := 0
	for range maxAttempts * 4 {
		if seq <= 0 {
			last, err := d.maxSeq(ctx)
			if err != nil {
				return 0, err
			}
			seq = last + 1
		}
		c.Seq = seq
		_, err := d.changes.InsertOne(ctx, c)
		if err == nil {
			d.seqHint.Store(seq + 1)
			return seq, nil
		}
		if !isDup(err) {
			return 0, dbErr("reserve change", err)
		}
		// seq exists, so seq+1 is the next candidate; after many
		// collisions ask the database where the end is.
		if collisions++; collisions%16 == 0 {
			seq = 0
		} else {
			seq++
		}
	}
	return 0, errors.New("reserve change: gave up after repeated collisions")
}

// maxSeq returns the highest seq in the changes collection, whatever its
// state (0 when empty).
func (d *DB) maxSeq(ctx context.Context) (int64, error) {
	opts := options.FindOne().
		SetSort(bson.D{{Key: "_id", Value: -1}}).
		SetProjection(bson.D{{Key: "_id", Value: 1}})
	var c struct {
		Seq int64 `bson:"_id"`
	}
	if err := d.changes.FindOne(ctx, bson.D{}, opts).Decode(&c); err != nil {
		if errors.Is(err, mongo.ErrNoDocuments) {
			return 0, nil
		}
		return 0, fmt.Errorf("read last seq: %w", err)
	}
	return c.Seq, nil
}

// putCurrent points the resources document at r unless it already shows
// a newer version; the upsert of an existing _id that shows a newer
// version fails with a duplicate key, which is the expected outcome.
func (d *DB) putCurrent(ctx context.Context, r *resourceDoc) error {
	filter := bson.D{{Key: "_id", Value: r.Key}, {Key: "vid", Value: bson.D{{Key: "$lt", Value: r.Vid}}}}
	_, err := d.resources.ReplaceOne(ctx, filter, r, options.Replace().SetUpsert(true))
	if err != nil && !isDup(err) {
		return dbErr("put resource", err)
	}
	return nil
}

// setState moves a pending change to committed or aborted. A change that
// is no longer pending is left alone: whoever settled it decided the same
// outcome (see doc.go).
func (d *DB) setState(ctx context.Context, seq int64, to string) error {
	filter := bson.D{{Key: "_id", Value: seq}, {Key: "state", Value: statePending}}
	update := bson.D{{Key: "$set", Value: bson.D{{Key: "state", Value: to}}}}
	if _, err := d.changes.UpdateOne(ctx, filter, update); err != nil {
		return dbErr("mark change "+to, err)
	}
	return nil
}
