package mongo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fhirsub/fhirsub/fhirstore"
)

// DefaultDatabase is the database name used when Config.Database is empty.
const DefaultDatabase = "fhirsub"

// Collection names.
const (
	collResources = "resources"
	collVersions  = "versions"
	collChanges   = "changes"
	collCursors   = "cursors"
	collEvents    = "events"
	collStates    = "states"
	collClaims    = "claims"
)

// Config configures Open. The zero value of every field but URI means its
// default.
type Config struct {
	// URI is the MongoDB connection string, e.g. "mongodb://host:27017/".
	URI string
	// Database is the database name (default DefaultDatabase).
	Database string
	// Logger receives lifecycle messages and warnings about abandoned
	// writes; nil discards them.
	Logger *slog.Logger
	// PollInterval is how often Wait looks for commits made by other
	// processes (default 250 ms).
	PollInterval time.Duration
	// CommitTimeout is how long a reserved but unconfirmed change may stay
	// pending before a reader settles it (default 5 s); see the package
	// documentation.
	CommitTimeout time.Duration
	// ConnectTimeout bounds the connection check, server detection and
	// index creation of Open (default 20 s).
	ConnectTimeout time.Duration
}

// DB is a fhirstore.Store on one MongoDB database. Create it with Open and
// release it with Close. Safe for concurrent use.
type DB struct {
	cfg       Config
	log       *slog.Logger
	client    *mongo.Client
	resources *mongo.Collection
	versions  *mongo.Collection
	changes   *mongo.Collection
	cursors   *mongo.Collection // EventStore: one document per consumer
	events    *mongo.Collection // EventStore: one document per event
	states    *mongo.Collection // EventStore: one document per subscription
	claims    *mongo.Collection // conditional-write claims, _id = key

	// noLocalLocks (tests only) turns the in-process write locks off so
	// that the database decides every race.
	noLocalLocks bool
	// recordHook (tests only) is called by Record after each of its
	// writes; an error returned stops Record there, as a crash would.
	recordHook func(step string) error

	locks     [64]sync.Mutex // in-process write locks, striped by Type/id
	notify    *fhirstore.Notifier
	reserveMu sync.Mutex   // one seq reservation at a time in this process
	seqHint   atomic.Int64 // next seq to try to reserve (0 = ask the database)

	quit      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

var _ fhirstore.Store = (*DB)(nil)

// Open connects to cfg.URI and creates the collections' indexes if they are
// missing. Every deployment (standalone, replica set, sharded cluster,
// FerretDB) gets the same write protocol: no multi-document transactions.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	if cfg.URI == "" {
		return nil, errors.New("open mongo store: URI required")
	}
	if cfg.Database == "" {
		cfg.Database = DefaultDatabase
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 250 * time.Millisecond
	}
	if cfg.CommitTimeout <= 0 {
		cfg.CommitTimeout = 5 * time.Second
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 20 * time.Second
	}
	client, err := mongo.Connect(options.Client().ApplyURI(cfg.URI))
	if err != nil {
		return nil, fmt.Errorf("open mongo store: %s", err)
	}
	db := client.Database(cfg.Database)
	d := &DB{
		cfg:       cfg,
		log:       cfg.Logger.With("store", "mongo", "database", cfg.Database),
		client:    client,
		resources: db.Collection(collResources),
		versions:  db.Collection(collVersions),
		changes:   db.Collection(collChanges),
		cursors:   db.Collection(collCursors),
		events:    db.Collection(collEvents),
		states:    db.Collection(collStates),
		claims:    db.Collection(collClaims),
		notify:    fhirstore.NewNotifier(),
		quit:      make(chan struct{}),
	}
	octx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	if err := d.setUp(octx); err != nil {
		_ = client.Disconnect(context.Background())
		return nil, fmt.Errorf("open mongo store %s: %w", cfg.Database, err)
	}
	d.log.Info("mongo store opened", "commit_timeout", cfg.CommitTimeout)
	return d, nil
}

func (d *DB) setUp(ctx context.Context) error {
	if err := d.client.Ping(ctx, nil); err != nil {
		return dbErr("ping", err)
	}
	return d.ensureIndexes(ctx)
}

// ensureIndexes creates the secondary indexes; creating an index that
// exists with the same definition is a no-op, so this is idempotent.
func (d *DB) ensureIndexes(ctx context.Context) error {
	asc := func(keys ...string) bson.D {
		doc := bson.D{}
		for _, k := range keys {
			dir := 1
			if k[0] == '-' {
				k, dir = k[1:], -1
			}
			doc = append(doc, bson.E{Key: k, Value: dir})
		}
		return doc
	}
	idx := []struct {
		coll   *mongo.Collection
		name   string
		keys   bson.D
		unique bool
	}{
		{d.resources, "type_keys", asc("type", "keys"), false},
		{d.resources, "type_lastUpdated", asc("type", "-lastUpdated"), false},
		{d.versions, "type_id_vid", asc("type", "id", "-vid"), false},
		{d.versions, "type_seq", asc("type", "-seq"), false},
		{d.versions, "seq", asc("-seq"), false},
		{d.changes, "state_seq", asc("state", "_id"), false},
		// One event per (change, subscription); also serves replays by seq.
		{d.events, "seq_sub", asc("seq", "sub"), true},
		{d.events, "sub_number", asc("sub", "number"), false},
	}
	for _, ix := range idx {
		o := options.Index().SetName(ix.name)
		if ix.unique {
			o.SetUnique(true)
		}
		model := mongo.IndexModel{Keys: ix.keys, Options: o}
		if _, err := ix.coll.Indexes().CreateOne(ctx, model); err != nil {
			return dbErr("create index "+ix.coll.Name()+"."+ix.name, err)
		}
	}
	return nil
}

// Ping reports whether the server answers.
func (d *DB) Ping(ctx context.Context) error {
	if d.closed() {
		return fhirstore.ErrClosed
	}
	if err := d.client.Ping(ctx, nil); err != nil {
		return dbErr("ping", err)
	}
	return nil
}

// Close wakes blocked Wait calls with fhirstore.ErrClosed and disconnects
// from the server. The DB starts no goroutines of its own. Calling it
// again returns the first result.
func (d *DB) Close() error {
	d.closeOnce.Do(func() {
		close(d.quit)
		// Take every write lock so that no write in this process is cut
		// between its steps by the disconnect.
		for i := range d.locks {
			d.locks[i].Lock()
		}
		defer func() {
			for i := range d.locks {
				d.locks[i].Unlock()
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := d.client.Disconnect(ctx); err != nil {
			d.closeErr = dbErr("disconnect", err)
		}
		d.log.Info("mongo store closed")
	})
	return d.closeErr
}

func (d *DB) closed() bool {
	select {
	case <-d.quit:
		return true
	default:
		return false
	}
}

// isDup reports whether err is a duplicate key error: the loser of a race
// decided by a unique _id.
func isDup(err error) bool { return err != nil && mongo.IsDuplicateKeyError(err) }

// storeError is a translated driver error: its message is kept, the
// driver's types are not, except that context cancellation stays visible
// to errors.Is through Unwrap.
type storeError struct {
	msg   string
	cause error // context.Canceled, context.DeadlineExceeded or nil
}

func (e *storeError) Error() string { return e.msg }
func (e *storeError) Unwrap() error { return e.cause }

// dbErr translates a driver error at the package boundary.
func dbErr(op string, err error) error {
	return export(fmt.Errorf("mongo %s: %w", op, err))
}

// findAll runs a find on coll and decodes every document it returns into
// a T; an error of either step is translated by dbErr under op.
func findAll[T any](ctx context.Context, coll *mongo.Collection, op string, filter any, opts *options.FindOptionsBuilder) ([]T, error) {
	cur, err := coll.Find(ctx, filter, opts)
	if err != nil {
		return nil, dbErr(op, err)
	}
	var docs []T
	if err := cur.All(ctx, &docs); err != nil {
		return nil, dbErr(op, err)
	}
	return docs, nil
}

// export translates an error leaving the package: the store contract's
// sentinels pass as they are (they never wrap driver errors), an OpError
// has its entry's error translated, anything else becomes a storeError.
func export(err error) error {
	if err == nil || isSentinel(err) {
		return err
	}
	var se *storeError
	if errors.As(err, &se) && se.Error() == err.Error() {
		return err
	}
	var oe *fhirstore.OpError
	if errors.As(err, &oe) {
		return &fhirstore.OpError{Index: oe.Index, Err: export(oe.Err)}
	}
	out := &storeError{msg: err.Error()}
	switch {
	case errors.Is(err, context.Canceled):
		out.cause = context.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		out.cause = context.DeadlineExceeded
	}
	return out
}

// isSentinel reports whether err is one of the store contract's errors.
func isSentinel(err error) bool {
	for _, s := range []error{fhirstore.ErrNotFound, fhirstore.ErrGone, fhirstore.ErrVersionConflict, fhirstore.ErrInvalid, fhirstore.ErrClosed, fhirstore.ErrNoState} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}
