// Package sqlite is the embedded default backend of fhirstore: one SQLite
// file in WAL mode, accessed through the pure-Go driver modernc.org/sqlite.
//
// Layout: table changes is the change feed (seq is its rowid, gap-free
// because writes are serialised and rows are never deleted); versions
// holds every version's body (NULL for a tombstone) keyed by the seq of the
// change that wrote it; resources points at the current version of each
// resource; search_keys holds the index keys (conformance/search.Keys) of
// the live resources, folded (keys.go): a token's two keys are one row, and
// a value a resource has under several parameters is one row, so the index
// narrows a search and the query's match decides. A write inserts the
// change, the version, the resource pointer and the keys in one
// transaction. The schema is created
// and upgraded by the embedded migrations (PRAGMA user_version).
//
// Writes: every Create, Update, Delete and Transaction call is queued and
// committed by a leader (the caller holding the write lock), which takes
// all queued calls and applies them in one SQL transaction, each call in
// its own savepoint so that a failing call rolls back alone (group
// commit). One commit then serves many concurrent writes. Seqs stay
// gap-free: a rolled-back savepoint releases its rowids. The writer and
// the checkpointer open the file through walvfs, which hands the WAL
// frames of a commit to the file in one write call instead of two a page.
//
// Concurrency: a DB is safe for concurrent use. Writes go through one
// connection (BEGIN IMMEDIATE, so writers in other processes are
// serialised too, waiting up to the busy timeout); reads use a separate
// pool and never block on writes (WAL). Wait is woken by commits in this
// process at once and by a poller goroutine, owned by the DB and stopped
// by Close, that notices other processes' commits.
//
// Lock order: DB.wmu (write lock) before DB.qmu (queue); the Notifier's
// own lock is taken last and never held while calling out.
package sqlite
