package mongo

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fhirsub/fhirsub/fhirstore"
)

// Collections of the leases that partition rest-hook delivery between the
// nodes sharing one database.
const (
	collLeases = "leases" // _id "partition/term": one document per term
	collNodes  = "nodes"  // _id the node id: its heartbeat
)

// leaseDoc is one term of a partition's lease. Only acquiring inserts one
// (so the unique _id decides the single holder of a term, also on
// FerretDB, whose updates are not atomic); only the holder updates it
// (renew, release), and the next term's holder deletes it.
type leaseDoc struct {
	ID        string `bson:"_id"`
	Partition int64  `bson:"partition"`
	Term      int64  `bson:"term"`
	Node      string `bson:"node"`
	Expires   int64  `bson:"expires"` // unix milliseconds
}

func (l *leaseDoc) lease() fhirstore.Lease {
	return fhirstore.Lease{Partition: int(l.Partition), Term: l.Term, Node: l.Node, Expires: time.UnixMilli(l.Expires).UTC()}
}

func leaseID(partition int, term int64) string { return fmt.Sprintf("%d/%d", partition, term) }

func (d *DB) leases() *mongo.Collection { return d.resources.Database().Collection(collLeases) }
func (d *DB) nodes() *mongo.Collection  { return d.resources.Database().Collection(collNodes) }

// Heartbeat records that node is alive until now+ttl and returns the
// number of nodes whose heartbeat has not expired, this one included.
// Each node writes only its own document, so the non-atomic updates of
// FerretDB cannot mix two nodes' writes. Documents of nodes dead for more
// than ten ttl are deleted.
func (d *DB) Heartbeat(ctx context.Context, node string, ttl time.Duration) (int, error) {
	if d.closed() {
		return 0, fhirstore.ErrClosed
	}
	now := time.Now()
	update := bson.D{{Key: "$set", Value: bson.D{{Key: "expires", Value: now.Add(ttl).UnixMilli()}}}}
	if err := d.upsert(ctx, d.nodes(), node, update, "heartbeat of node "+node); err != nil {
		return 0, export(err)
	}
	stale := bson.D{{Key: "expires", Value: bson.D{{Key: "$lt", Value: now.Add(-10 * ttl).UnixMilli()}}}}
	if _, err := d.nodes().DeleteMany(ctx, stale); err != nil {
		return 0, dbErr("delete dead nodes", err)
	}
	live := bson.D{{Key: "expires", Value: bson.D{{Key: "$gt", Value: now.UnixMilli()}}}}
	n, err := d.nodes().CountDocuments(ctx, live)
	if err != nil {
		return 0, dbErr("count live nodes", err)
	}
	return max(int(n), 1), nil
}

// Leases returns the newest term of every partition that has one, in
// partition order.
func (d *DB) Leases(ctx context.Context) ([]fhirstore.Lease, error) {
	if d.closed() {
		return nil, fhirstore.ErrClosed
	}
	docs, err := findAll[leaseDoc](ctx, d.leases(), "read leases", bson.D{}, options.Find().SetSort(bson.D{{Key: "partition", Value: 1}, {Key: "term", Value: 1}}))
	if err != nil {
		return nil, err
	}
	var out []fhirstore.Lease
	for i := range docs {
		if i+1 < len(docs) && docs[i+1].Partition == docs[i].Partition {
			continue // an older term
		}
		out = append(out, docs[i].lease())
	}
	return out, nil
}

// AcquireLease makes node the holder of term after+1 of partition until
// now+ttl, where after is the newest term the caller saw (0: none) and
// found expired; ok is false when another node got that term first (the
// unique _id decides) or a newer term exists already. The winner deletes
// the older terms.
func (d *DB) AcquireLease(ctx context.Context, partition int, after int64, node string, ttl time.Duration) (fhirstore.Lease, bool, error) {
	if d.closed() {
		return fhirstore.Lease{}, false, fhirstore.ErrClosed
	}
	doc := leaseDoc{ID: leaseID(partition, after+1), Partition: int64(partition), Term: after + 1, Node: node,
		Expires: time.Now().Add(ttl).UnixMilli()}
	if _, err := d.leases().InsertOne(ctx, doc); isDup(err) {
		return fhirstore.Lease{}, false, nil
	} else if err != nil {
		return fhirstore.Lease{}, false, dbErr("acquire lease "+doc.ID, err)
	}
	// A stale caller may have inserted a term that its successor had
	// already deleted: a newer term wins, and this one is withdrawn.
	newer, err := d.newerTerm(ctx, partition, doc.Term)
	if err != nil || newer {
		if _, derr := d.leases().DeleteOne(ctx, bson.D{{Key: "_id", Value: doc.ID}}); derr != nil && err == nil {
			err = dbErr("withdraw lease "+doc.ID, derr)
		}
		return fhirstore.Lease{}, false, err
	}
	older := bson.D{{Key: "partition", Value: int64(partition)}, {Key: "term", Value: bson.D{{Key: "$lt", Value: doc.Term}}}}
	if _, err := d.leases().DeleteMany(ctx, older); err != nil {
		d.log.Warn("delete old lease terms", "partition", partition, "err", err)
	}
	return doc.lease(), true, nil
}

// RenewLease extends a held lease to now+ttl. It updates the term's own
// document and then checks that no newer term exists (an update is not
// atomic on FerretDB, an insert is): ok is false when the lease was
// superseded or deleted.
func (d *DB) RenewLease(ctx context.Context, l fhirstore.Lease, ttl time.Duration) (fhirstore.Lease, bool, error) {
	if d.closed() {
		return fhirstore.Lease{}, false, fhirstore.ErrClosed
	}
	expires := time.Now().Add(ttl)
	filter := bson.D{{Key: "_id", Value: leaseID(l.Partition, l.Term)}, {Key: "node", Value: l.Node}}
	res, err := d.leases().UpdateOne(ctx, filter, bson.D{{Key: "$set", Value: bson.D{{Key: "expires", Value: expires.UnixMilli()}}}})
	if err != nil {
		return fhirstore.Lease{}, false, dbErr("renew lease "+leaseID(l.Partition, l.Term), err)
	}
	if res.MatchedCount == 0 {
		return fhirstore.Lease{}, false, nil
	}
	newer, err := d.newerTerm(ctx, l.Partition, l.Term)
	if err != nil || newer {
		return fhirstore.Lease{}, false, err
	}
	l.Expires = time.UnixMilli(expires.UnixMilli()).UTC()
	return l, true, nil
}

// ReleaseLease ends a held lease at once (it expires now), so that any
// node may take the partition with the next term.
func (d *DB) ReleaseLease(ctx context.Context, l fhirstore.Lease) error {
	if d.closed() {
		return fhirstore.ErrClosed
	}
	filter := bson.D{{Key: "_id", Value: leaseID(l.Partition, l.Term)}, {Key: "node", Value: l.Node}}
	if _, err := d.leases().UpdateOne(ctx, filter, bson.D{{Key: "$set", Value: bson.D{{Key: "expires", Value: int64(0)}}}}); err != nil {
		return dbErr("release lease "+leaseID(l.Partition, l.Term), err)
	}
	return nil
}

// newerTerm reports whether partition has a term above term.
func (d *DB) newerTerm(ctx context.Context, partition int, term int64) (bool, error) {
	filter := bson.D{{Key: "partition", Value: int64(partition)}, {Key: "term", Value: bson.D{{Key: "$gt", Value: term}}}}
	n, err := d.leases().CountDocuments(ctx, filter, options.Count().SetLimit(1))
	if err != nil {
		return false, dbErr("read lease terms", err)
	}
	return n > 0, nil
}
