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

// Changes returns up to limit committed changes with Seq > after, in Seq
// order. It walks the seqs one by one from after+1 and stops at the first
// seq that is missing or still pending, so a change that commits later is
// never skipped; aborted seqs are passed over. A seq pending for longer
// than Config.CommitTimeout is settled first (see doc.go).
func (d *DB) Changes(ctx context.Context, after int64, limit int) ([]fhirstore.Change, error) {
	if d.closed() {
		return nil, fhirstore.ErrClosed
	}
	if limit <= 0 {
		return []fhirstore.Change{}, nil
	}
	out := make([]fhirstore.Change, 0, min(limit, 1024))
	next := after + 1
	for len(out) < limit {
		batch := int64(limit - len(out) + 16)
		opts := options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(batch)
		docs, err := findAll[changeDoc](ctx, d.changes, "read changes", bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: next}}}}, opts)
		if err != nil {
			return nil, err
		}
		for i := range docs {
			c := &docs[i]
			if c.Seq != next {
				return out, nil // not reserved yet
			}
			if c.State == statePending {
				state, err := d.settleIfStale(ctx, c)
				if err != nil {
					return nil, export(err)
				}
				if state == statePending {
					return out, nil
				}
				c.State = state
			}
			if c.State == stateCommitted {
				out = append(out, c.change())
				if len(out) == limit {
					return out, nil
				}
			}
			next++
		}
		if int64(len(docs)) < batch {
			return out, nil
		}
	}
	return out, nil
}

// LastSeq returns the highest committed seq below the first pending one
// (0 when there is none): the position Changes can read up to now.
func (d *DB) LastSeq(ctx context.Context) (int64, error) {
	if d.closed() {
		return 0, fhirstore.ErrClosed
	}
	last, err := d.lastSeq(ctx)
	return last, export(err)
}

func (d *DB) lastSeq(ctx context.Context) (int64, error) {
	desc := options.FindOne().SetSort(bson.D{{Key: "_id", Value: -1}}).SetProjection(bson.D{{Key: "_id", Value: 1}})
	top, err := d.findSeq(ctx, bson.D{{Key: "state", Value: stateCommitted}}, desc)
	if err != nil || top == 0 {
		return top, err
	}
	// A pending seq below top must not be jumped: look for the lowest.
	// New reservations are above top, so none can appear below it
	// between the two reads.
	for {
		var p changeDoc
		opts := options.FindOne().SetSort(bson.D{{Key: "_id", Value: 1}})
		filter := bson.D{{Key: "state", Value: statePending}, {Key: "_id", Value: bson.D{{Key: "$lt", Value: top}}}}
		err := d.changes.FindOne(ctx, filter, opts).Decode(&p)
		if errors.Is(err, mongo.ErrNoDocuments) {
			return top, nil
		}
		if err != nil {
			return 0, fmt.Errorf("read pending changes: %w", err)
		}
		state, err := d.settleIfStale(ctx, &p)
		if err != nil {
			return 0, err
		}
		if state == statePending {
			filter := bson.D{{Key: "state", Value: stateCommitted}, {Key: "_id", Value: bson.D{{Key: "$lt", Value: p.Seq}}}}
			return d.findSeq(ctx, filter, desc)
		}
	}
}

// findSeq returns the _id of the change filter and opts select, 0 if none.
func (d *DB) findSeq(ctx context.Context, filter bson.D, opts *options.FindOneOptionsBuilder) (int64, error) {
	var c struct {
		Seq int64 `bson:"_id"`
	}
	if err := d.changes.FindOne(ctx, filter, opts).Decode(&c); err != nil {
		if errors.Is(err, mongo.ErrNoDocuments) {
			return 0, nil
		}
		return 0, fmt.Errorf("read committed seq: %w", err)
	}
	return c.Seq, nil
}

// Wait blocks until LastSeq is above after, ctx is done (ctx.Err()) or the
// store is closed (fhirstore.ErrClosed). Writes in this process wake it at
// once; writes by other processes are seen by polling every
// Config.PollInterval.
func (d *DB) Wait(ctx context.Context, after int64) error {
	// Go 1.23 timer semantics: Reset and Stop discard a pending tick.
	timer := time.NewTimer(d.cfg.PollInterval)
	defer timer.Stop()
	for {
		woken := d.notify.C()
		last, err := d.LastSeq(ctx)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case d.closed():
			return fhirstore.ErrClosed
		case err != nil:
			return err
		case last > after:
			return nil
		}
		timer.Reset(d.cfg.PollInterval)
		select {
		case <-woken:
		case <-timer.C:
		case <-ctx.Done():
			return ctx.Err()
		case <-d.quit:
			return fhirstore.ErrClosed
		}
	}
}

// settleIfStale returns c's state, settling it first when it has been
// pending for longer than the commit timeout: a version written with c's
// seq commits it (the reader finishes the writer's work), otherwise the
// reader takes the version number with an aborted placeholder, so that
// the writer's late insert fails, and aborts the seq.
func (d *DB) settleIfStale(ctx context.Context, c *changeDoc) (string, error) {
	if c.State != statePending || time.Since(c.Reserved) < d.cfg.CommitTimeout {
		return c.State, nil
	}
	key := versionKey(c.Type, c.ID, c.Vid)
	var v versionDoc
	err := d.versions.FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&v)
	if errors.Is(err, mongo.ErrNoDocuments) {
		placeholder := &versionDoc{
			Key: key, Type: c.Type, ID: c.ID, Vid: c.Vid, Seq: c.Seq,
			Aborted: true, LastUpdated: time.Now().UTC(),
		}
		_, err = d.versions.InsertOne(ctx, placeholder)
		if err == nil {
			d.log.Warn("change abandoned by its writer: aborted", "seq", c.Seq, "resource", resourceKey(c.Type, c.ID), "version", c.Vid)
			return stateAborted, d.setState(ctx, c.Seq, stateAborted)
		}
		if !isDup(err) {
			return "", fmt.Errorf("settle change %d: %w", c.Seq, err)
		}
		// The writer's version arrived first.
		err = d.versions.FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&v)
	}
	if err != nil {
		return "", fmt.Errorf("settle change %d: %w", c.Seq, err)
	}
	if v.Seq != c.Seq || v.Aborted {
		// The writer lost the version number to another writer, or a
		// reader already placed a placeholder.
		return stateAborted, d.setState(ctx, c.Seq, stateAborted)
	}
	r, err := currentFromVersion(&v)
	if err != nil {
		return "", fmt.Errorf("settle change %d: %w", c.Seq, err)
	}
	if err := d.putCurrent(ctx, r); err != nil {
		return "", err
	}
	if err := d.setState(ctx, c.Seq, stateCommitted); err != nil {
		return "", err
	}
	d.log.Warn("change left pending by its writer: committed", "seq", c.Seq, "resource", resourceKey(c.Type, c.ID), "version", c.Vid)
	d.notify.Notify()
	return stateCommitted, nil
}

// TypeChanges returns up to limit committed changes of resources of type
// typ with Seq > after, in Seq order. It finds their seqs in versions
// (index type_seq), skipping the placeholders of aborted seqs, and then
// reads those changes, keeping the committed ones: a change still pending
// is left out of this call.
func (d *DB) TypeChanges(ctx context.Context, typ string, after int64, limit int) ([]fhirstore.Change, error) {
	if d.closed() {
		return nil, fhirstore.ErrClosed
	}
	if limit <= 0 {
		return []fhirstore.Change{}, nil
	}
	out := make([]fhirstore.Change, 0, min(limit, 1024))
	for len(out) < limit {
		batch := int64(limit - len(out))
		opts := options.Find().SetSort(bson.D{{Key: "seq", Value: 1}}).SetLimit(batch).
			SetProjection(bson.D{{Key: "seq", Value: 1}, {Key: "aborted", Value: 1}})
		filter := bson.D{{Key: "type", Value: typ}, {Key: "seq", Value: bson.D{{Key: "$gt", Value: after}}}}
		vs, err := findAll[struct {
			Seq     int64 `bson:"seq"`
			Aborted bool  `bson:"aborted"`
		}](ctx, d.versions, "read versions by type", filter, opts)
		if err != nil {
			return nil, err
		}
		if len(vs) == 0 {
			return out, nil
		}
		seqs := make([]int64, 0, len(vs))
		for _, v := range vs {
			if !v.Aborted {
				seqs = append(seqs, v.Seq)
			}
		}
		after = vs[len(vs)-1].Seq
		if len(seqs) > 0 {
			docs, err := findAll[changeDoc](ctx, d.changes, "read changes by type", bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: seqs}}},
				{Key: "state", Value: stateCommitted}}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
			if err != nil {
				return nil, err
			}
			for i := range docs {
				out = append(out, docs[i].change())
			}
		}
		if int64(len(vs)) < batch {
			return out, nil
		}
	}
	return out, nil
}
