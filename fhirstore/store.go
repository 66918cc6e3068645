package fhirstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fhirsub/fhirsub/conformance/search"
)

// Sentinel errors returned by every Store implementation. Callers match them
// with errors.Is; backends translate their driver errors into these at the
// boundary so that no database type leaks out.
var (
	// ErrNotFound means the resource (or the version) never existed.
	ErrNotFound = errors.New("resource not found")
	// ErrGone means the resource's current version is a deletion tombstone.
	ErrGone = errors.New("resource deleted")
	// ErrVersionConflict means an If-Match precondition did not hold.
	ErrVersionConflict = errors.New("version conflict")
	// ErrInvalid means the caller handed the store something it cannot
	// store: a body without resourceType, an invalid id, a type mismatch.
	ErrInvalid = errors.New("invalid resource")
	// ErrClosed means the store was closed; Wait returns it when Close
	// runs while it is blocked.
	ErrClosed = errors.New("store closed")
)

// Interaction names the kind of write that produced a version and a change.
type Interaction string

// The three interactions recorded in the change feed.
const (
	InteractionCreate Interaction = "create"
	InteractionUpdate Interaction = "update"
	InteractionDelete Interaction = "delete"
)

// Resource is one stored version of a FHIR resource.
type Resource struct {
	// Type is the FHIR resource type, e.g. "Observation".
	Type string
	// ID is the logical id.
	ID string
	// VersionID is the version, "1", "2", … counting tombstones too.
	VersionID string
	// LastUpdated is the commit time of this version (UTC, millisecond precision).
	LastUpdated time.Time
	// Deleted marks a deletion tombstone; Body is nil then.
	Deleted bool
	// Body is the resource JSON as stored, with id, meta.versionId and
	// meta.lastUpdated set by the store.
	Body []byte
	// Interaction is the write that made this version, as its Change
	// records it (an update of a deleted resource is a create). History
	// sets it; the other reads leave it empty.
	Interaction Interaction
}

// Change is one record of the ordered change feed. Every committed write
// produces exactly one Change in the same transaction as the version.
type Change struct {
	// Seq is gap-free and strictly increasing per database, starting at 1.
	Seq int64
	// Type, ID and VersionID name the version this change produced.
	Type      string
	ID        string
	VersionID string
	// PreviousVersionID is the version that was current before the write,
	// or "" when there was no live version (create, or update of a deleted
	// resource, which is recorded as a create).
	PreviousVersionID string
	// Interaction is create, update or delete.
	Interaction Interaction
	// Time is the commit time (equal to the version's LastUpdated).
	Time time.Time
}

// WriteOptions carries the preconditions of an update or delete.
type WriteOptions struct {
	// IfMatch, when not empty, is the version id the current version must
	// have (an ETag already stripped of W/"…"). A mismatch, or a missing
	// resource, gives ErrVersionConflict.
	IfMatch string
}

// HistoryRequest selects versions for instance, type or system history.
type HistoryRequest struct {
	// Type limits to one resource type; "" means system history.
	Type string
	// ID limits to one resource (Type must be set).
	ID string
	// Since, when not zero, keeps versions with LastUpdated >= Since.
	Since time.Time
	// Count is the page size (0 means the backend's default of 50).
	Count int
	// Offset is the number of versions to skip.
	Offset int
}

// Page is one page of a search or history result.
type Page struct {
	// Resources are the versions on this page, in result order.
	Resources []*Resource
	// Total is the number of results across all pages.
	Total int
}

// Method names the operation of one transaction entry.
type Method string

// Methods allowed in a transaction.
const (
	MethodCreate Method = "create"
	MethodUpdate Method = "update"
	MethodDelete Method = "delete"
)

// Op is one entry of an atomic transaction.
type Op struct {
	Method Method
	// Type is the resource type (required for delete; taken from Body
	// otherwise and checked against it when both are set).
	Type string
	// ID is the logical id: required for update and delete; for create it
	// is an optional pre-assigned id (the store generates one when empty).
	ID string
	// Body is the decoded resource for create and update.
	Body map[string]any
	// IfMatch is the version precondition for update and delete.
	IfMatch string
}

// OpResult is the outcome of one transaction entry.
type OpResult struct {
	// Resource is the version written (a tombstone for delete).
	Resource *Resource
	// Created is true when an update created the resource.
	Created bool
}

// OpError reports which transaction entry failed; Err is one of the
// sentinels above or a wrapped backend error.
type OpError struct {
	Index int
	Err   error
}

// Error implements error.
func (e *OpError) Error() string { return fmt.Sprintf("transaction entry %d: %v", e.Index, e.Err) }

// Unwrap lets errors.Is see the sentinel.
func (e *OpError) Unwrap() error { return e.Err }

// Store is the persistence contract shared by the SQLite and MongoDB
// backends. Bodies passed to Create, Update and Transaction are decoded JSON
// objects (numbers as json.Number); the store takes ownership of the map and
// sets id and meta.versionId / meta.lastUpdated on it. All methods are safe
// for concurrent use.
type Store interface {
	// Create stores a new resource with a server-assigned id.
	// Returns ErrInvalid when body has no resourceType.
	Create(ctx context.Context, body map[string]any) (*Resource, error)
	// Update stores a new version of Type/id (the type is body's
	// resourceType). created is true when no live version existed before
	// (update-as-create, or update of a deleted resource).
	// Returns ErrVersionConflict when opt.IfMatch does not hold.
	Update(ctx context.Context, id string, body map[string]any, opt WriteOptions) (res *Resource, created bool, err error)
	// Delete writes a tombstone version and returns it. Deleting a resource
	// that is already deleted returns the existing tombstone and writes
	// nothing. Returns ErrNotFound when the resource never existed and
	// ErrVersionConflict when opt.IfMatch does not hold.
	Delete(ctx context.Context, typ, id string, opt WriteOptions) (*Resource, error)
	// Read returns the current version. Returns ErrNotFound, or ErrGone
	// together with the tombstone when the resource is deleted.
	Read(ctx context.Context, typ, id string) (*Resource, error)
	// VRead returns one version (a tombstone has Deleted set).
	// Returns ErrNotFound when the version does not exist.
	VRead(ctx context.Context, typ, id, versionID string) (*Resource, error)
	// History returns versions, newest first.
	History(ctx context.Context, req HistoryRequest) (*Page, error)
	// Search returns the current, non-deleted resources of q.Type that
	// q matches, in q's sort order (then by id), paged by q.Count/q.Offset.
	// The database narrows candidates with q.Narrow(); q.Match decides.
	Search(ctx context.Context, q *search.Query) (*Page, error)
	// Transaction applies ops atomically: all or none. A failing entry
	// gives an *OpError naming its index.
	Transaction(ctx context.Context, ops []Op) ([]OpResult, error)
	// Changes returns up to limit changes with Seq > after, in Seq order.
	// A reader never sees a gap that is later filled.
	Changes(ctx context.Context, after int64, limit int) ([]Change, error)
	// TypeChanges returns up to limit committed changes of resources of
	// type typ with Seq > after, in Seq order. It reads the feed through
	// an index by type, so its cost follows the changes of typ, not the
	// length of the feed. Unlike Changes it does not wait behind a change
	// still being committed: such a change may be missing from one call
	// and present in a later one.
	TypeChanges(ctx context.Context, typ string, after int64, limit int) ([]Change, error)
	// LastSeq returns the highest committed Seq (0 when empty).
	LastSeq(ctx context.Context) (int64, error)
	// Wait blocks until a change with Seq > after is committed (returns
	// nil at once if one already is) or ctx is done (returns ctx.Err()).
	// Writes in this process wake waiters immediately.
	Wait(ctx context.Context, after int64) error
	// Claim records that the resource with logical id answers the
	// conditional-write key (a normalised search such as
	// "Patient?identifier=a%7Cb"), unless a claim on key exists already.
	// It returns the id holding the claim: id itself when this call made
	// it. Concurrent claims on one key have exactly one winner on every
	// backend (a unique key inserted atomically). Claims outlive their
	// resources: the caller decides whether a holder still answers the key
	// and releases a stale claim with Release.
	Claim(ctx context.Context, key, id string) (holder string, err error)
	// Release removes the claim on key if id holds it; it does nothing
	// otherwise (another caller released or re-claimed it first).
	Release(ctx context.Context, key, id string) error
	// Ping reports whether the database is reachable.
	Ping(ctx context.Context) error
	// Close releases the database; it waits for the store's goroutines.
	Close() error
}
