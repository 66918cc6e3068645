package mongo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/fhirsub/fhirsub/fhirstore"
)

// claimDoc is one conditional-write claim: _id is the normalised
// condition, so the unique _id decides between concurrent claims.
type claimDoc struct {
	Key  string    `bson:"_id"`
	ID   string    `bson:"id"`
	Time time.Time `bson:"time"`
}

// Claim inserts {_id: key, id}; a duplicate key means another claim holds
// key, whose id is returned. A claim released between the failed insert
// and the read is tried again.
func (d *DB) Claim(ctx context.Context, key, id string) (string, error) {
	if key == "" || !fhirstore.ValidID(id) {
		return "", fmt.Errorf("%w: claim %q for id %q", fhirstore.ErrInvalid, key, id)
	}
	if d.closed() {
		return "", fhirstore.ErrClosed
	}
	for range maxAttempts {
		_, err := d.claims.InsertOne(ctx, claimDoc{Key: key, ID: id, Time: time.Now().UTC()})
		if err == nil {
			return id, nil
		}
		if !isDup(err) {
			return "", dbErr("claim", err)
		}
		var held claimDoc
		err = d.claims.FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&held)
		if errors.Is(err, mongo.ErrNoDocuments) {
			continue // released meanwhile
		}
		if err != nil {
			return "", dbErr("read claim", err)
		}
		return held.ID, nil
	}
	return "", export(fmt.Errorf("claim %q: gave up after %d lost races", key, maxAttempts))
}

// Release deletes the claim on key if id holds it.
func (d *DB) Release(ctx context.Context, key, id string) error {
	if d.closed() {
		return fhirstore.ErrClosed
	}
	if _, err := d.claims.DeleteOne(ctx, bson.D{{Key: "_id", Value: key}, {Key: "id", Value: id}}); err != nil {
		return dbErr("release claim", err)
	}
	return nil
}
