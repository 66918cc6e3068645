package mongo

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fhirsub/fhirsub/conformance/search"
	"github.com/fhirsub/fhirsub/fhirstore"
)

// Read returns the current version of typ/id: fhirstore.ErrNotFound when it
// never existed, the tombstone and fhirstore.ErrGone when it is deleted.
func (d *DB) Read(ctx context.Context, typ, id string) (*fhirstore.Resource, error) {
	if d.closed() {
		return nil, fhirstore.ErrClosed
	}
	opts := options.FindOne().SetProjection(bson.D{{Key: "keys", Value: 0}})
	var r resourceDoc
	err := d.resources.FindOne(ctx, bson.D{{Key: "_id", Value: resourceKey(typ, id)}}, opts).Decode(&r)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("%w: %s/%s", fhirstore.ErrNotFound, typ, id)
	}
	if err != nil {
		return nil, dbErr("read", err)
	}
	if r.Deleted {
		return r.resource(), fmt.Errorf("%w: %s/%s", fhirstore.ErrGone, typ, id)
	}
	return r.resource(), nil
}

// VRead returns version versionID of typ/id (a tombstone has Deleted set),
// or fhirstore.ErrNotFound.
func (d *DB) VRead(ctx context.Context, typ, id, versionID string) (*fhirstore.Resource, error) {
	if d.closed() {
		return nil, fhirstore.ErrClosed
	}
	filter := bson.D{
		{Key: "_id", Value: typ + "/" + id + "/" + versionID},
		{Key: "aborted", Value: false},
	}
	var v versionDoc
	err := d.versions.FindOne(ctx, filter).Decode(&v)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("%w: %s/%s/_history/%s", fhirstore.ErrNotFound, typ, id, versionID)
	}
	if err != nil {
		return nil, dbErr("vread", err)
	}
	return v.resource(), nil
}

// History returns the versions req selects, newest (highest seq) first.
func (d *DB) History(ctx context.Context, req fhirstore.HistoryRequest) (*fhirstore.Page, error) {
	if d.closed() {
		return nil, fhirstore.ErrClosed
	}
	if req.ID != "" && req.Type == "" {
		return nil, fmt.Errorf("%w: history of id %q without a type", fhirstore.ErrInvalid, req.ID)
	}
	filter := bson.D{{Key: "aborted", Value: false}}
	if req.Type != "" {
		filter = append(filter, bson.E{Key: "type", Value: req.Type})
	}
	if req.ID != "" {
		filter = append(filter, bson.E{Key: "id", Value: req.ID})
	}
	if !req.Since.IsZero() {
		filter = append(filter, bson.E{Key: "lastUpdated", Value: bson.D{{Key: "$gte", Value: req.Since.UTC()}}})
	}
	total, err := d.versions.CountDocuments(ctx, filter)
	if err != nil {
		return nil, dbErr("count history", err)
	}
	if total == 0 && req.ID != "" {
		if err := d.mustHaveVersions(ctx, req.Type, req.ID); err != nil {
			return nil, err
		}
	}
	page := &fhirstore.Page{Total: int(total), Resources: []*fhirstore.Resource{}}
	lo, hi := fhirstore.PageBounds(int(total), req.Count, req.Offset)
	if hi <= lo {
		return page, nil
	}
	opts := options.Find().
		SetSort(bson.D{{Key: "seq", Value: -1}}).
		SetSkip(int64(lo)).
		SetLimit(int64(hi - lo))
	docs, err := findAll[versionDoc](ctx, d.versions, "history", filter, opts)
	if err != nil {
		return nil, err
	}
	interactions, err := d.interactions(ctx, docs)
	if err != nil {
		return nil, err
	}
	for i := range docs {
		r := docs[i].resource()
		r.Interaction = interactions[docs[i].Seq]
		page.Resources = append(page.Resources, r)
	}
	return page, nil
}

// interactions returns the interaction of the change that made each of
// docs, by seq (one query for the page).
func (d *DB) interactions(ctx context.Context, docs []versionDoc) (map[int64]fhirstore.Interaction, error) {
	seqs := make([]int64, len(docs))
	for i := range docs {
		seqs[i] = docs[i].Seq
	}
	filter := bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: seqs}}}}
	opts := options.Find().SetProjection(bson.D{{Key: "interaction", Value: 1}})
	changes, err := findAll[changeDoc](ctx, d.changes, "history", filter, opts)
	if err != nil {
		return nil, err
	}
	out := make(map[int64]fhirstore.Interaction, len(changes))
	for _, c := range changes {
		out[c.Seq] = fhirstore.Interaction(c.Interaction)
	}
	return out, nil
}

// mustHaveVersions returns fhirstore.ErrNotFound when typ/id has no
// version at all.
func (d *DB) mustHaveVersions(ctx context.Context, typ, id string) error {
	filter := bson.D{{Key: "type", Value: typ}, {Key: "id", Value: id}, {Key: "aborted", Value: false}}
	n, err := d.versions.CountDocuments(ctx, filter, options.Count().SetLimit(1))
	if err != nil {
		return dbErr("history", err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %s/%s", fhirstore.ErrNotFound, typ, id)
	}
	return nil
}

// Search returns the live resources of q.Type that q matches. The
// database selects the candidates that have, for every group of
// q.Narrow(), one of the group's keys; fhirstore.SearchPage decodes them,
// lets q.Match decide, sorts and pages.
func (d *DB) Search(ctx context.Context, q *search.Query) (*fhirstore.Page, error) {
	if d.closed() {
		return nil, fhirstore.ErrClosed
	}
	filter := narrowFilter(q.Type, q.Narrow())
	opts := options.Find().SetProjection(bson.D{{Key: "keys", Value: 0}})
	docs, err := findAll[resourceDoc](ctx, d.resources, "search", filter, opts)
	if err != nil {
		return nil, err
	}
	candidates := make([]*fhirstore.Resource, len(docs))
	for i := range docs {
		candidates[i] = docs[i].resource()
	}
	return fhirstore.SearchPage(q, candidates)
}

// narrowFilter is the filter of the live resources of typ that have, for
// each group, at least one of its keys: an AND of $in on the plain keys
// array (no $elemMatch, which FerretDB gets wrong).
func narrowFilter(typ string, groups [][]search.Key) bson.D {
	filter := bson.D{{Key: "type", Value: typ}, {Key: "deleted", Value: false}}
	var and bson.A
	for _, g := range groups {
		if len(g) == 0 {
			continue
		}
		in := make(bson.A, 0, len(g))
		for _, k := range g {
			in = append(in, flattenKey(k))
		}
		and = append(and, bson.D{{Key: "keys", Value: bson.D{{Key: "$in", Value: in}}}})
	}
	if len(and) > 0 {
		filter = append(filter, bson.E{Key: "$and", Value: and})
	}
	return filter
}
