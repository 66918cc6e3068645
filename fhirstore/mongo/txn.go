package mongo

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fhirsub/fhirsub/fhirstore"
)

// writeTxn applies entries in one multi-document transaction, running it
// again when a unique _id says another writer came first.
func (d *DB) writeTxn(ctx context.Context, entries []*entry) ([]fhirstore.OpResult, error) {
	sess, err := d.client.StartSession()
	if err != nil {
		return nil, dbErr("start session", err)
	}
	defer sess.EndSession(context.WithoutCancel(ctx))
	for attempt := range maxAttempts {
		results := make([]fhirstore.OpResult, len(entries))
		wrote := false
		_, err := sess.WithTransaction(ctx, func(sc context.Context) (any, error) {
			wrote = false
			for i, e := range entries {
				res, w, err := d.applyInTxn(sc, e, attempt > 0)
				if err != nil {
					return nil, &fhirstore.OpError{Index: i, Err: err}
				}
				results[i], wrote = res, wrote || w
			}
			return nil, nil
		})
		if errors.Is(err, errRetry) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if wrote {
			d.notify.Notify()
		}
		return results, nil
	}
	return nil, fmt.Errorf("transaction: gave up after %d lost races", maxAttempts)
}

// applyInTxn writes one entry inside a transaction; the change is inserted
// committed with seq = highest seq + 1 (a concurrent transaction taking
// the same seq makes one of the two retry). It reports whether it wrote.
// Inside a transaction the resources document agrees with the versions,
// but placeholders left by a time without transactions are only seen by
// current, which a run after a lost race (authoritative) uses.
func (d *DB) applyInTxn(sc context.Context, e *entry, authoritative bool) (fhirstore.OpResult, bool, error) {
	read := d.currentFast
	if authoritative {
		read = d.current
	}
	cur, err := read(sc, e.typ, e.id)
	if err != nil {
		return fhirstore.OpResult{}, false, err
	}
	p, err := decide(e, cur)
	if err != nil {
		return fhirstore.OpResult{}, false, err
	}
	if p.noop {
		return e.tombstone(cur), false, nil
	}
	v, r, err := e.build(p)
	if err != nil {
		return fhirstore.OpResult{}, false, err
	}
	last, err := d.maxSeq(sc)
	if err != nil {
		return fhirstore.OpResult{}, false, err
	}
	c := e.change(p, stateCommitted)
	c.Seq, v.Seq, r.Seq = last+1, last+1, last+1
	if _, err := d.changes.InsertOne(sc, c); err != nil {
		return fhirstore.OpResult{}, false, txnErr("insert change", err)
	}
	if _, err := d.versions.InsertOne(sc, v); err != nil {
		return fhirstore.OpResult{}, false, txnErr("insert version", err)
	}
	opts := options.Replace().SetUpsert(true)
	if _, err := d.resources.ReplaceOne(sc, bson.D{{Key: "_id", Value: r.Key}}, r, opts); err != nil {
		return fhirstore.OpResult{}, false, txnErr("put resource", err)
	}
	return fhirstore.OpResult{Resource: v.resource(), Created: p.created}, true, nil
}

// txnErr turns a duplicate key inside a transaction into errRetry and
// passes other driver errors through untranslated, so that
// WithTransaction still sees their transient-error labels.
func txnErr(op string, err error) error {
	if isDup(err) {
		return errRetry
	}
	return fmt.Errorf("%s: %w", op, err)
}
