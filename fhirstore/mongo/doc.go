// Package mongo is the MongoDB backend of fhirstore, through the official
// driver (go.mongodb.org/mongo-driver/v2). It is selected with MONGODB_URI
// and is the backend for deployments with several fhirsub nodes.
//
// # Collections
//
//   - versions: one document per version, _id "Type/id/vid", with the
//     body (canonical JSON as a string; none for a tombstone), the seq of
//     the change that wrote it and aborted=false. It is the authority for
//     version numbers: inserting "Type/id/vid" is how a writer claims vid.
//   - resources: the current version of each resource, _id "Type/id", with
//     its search keys flattened to "param|value" strings in the plain array
//     field keys. Search narrows with {type, deleted:false, $and: [{keys:
//     {$in: group}}…]} built from search.Query.Narrow — no $elemMatch — and
//     fhirstore.SearchPage lets the in-memory matcher decide.
//   - changes: the change feed, _id = seq (int64), state pending,
//     committed or aborted.
//   - cursors, events, states: the fhirstore.EventStore (see Events).
//   - leases, nodes: the partition leases of rest-hook delivery between
//     nodes (leases.go): a term of partition k is the document "k/term",
//     inserted once by its acquirer (the unique _id picks the one
//     holder), renewed only by its holder (which then checks that no
//     newer term exists) and deleted by the next term's holder; each node
//     upserts only its own heartbeat document in nodes.
//
// Indexes, created by Open when missing (creating an existing index is a
// no-op): resources type_keys {type, keys} and type_lastUpdated {type,
// lastUpdated: -1}; versions type_id_vid {type, id, vid: -1}, type_seq
// {type, seq: -1} (history by type, and TypeChanges) and seq {seq: -1};
// changes state_seq {state, _id}; events seq_sub {seq, sub} (unique) and
// sub_number {sub, number}. The _id indexes serve reads by id, the feed,
// cursors and states.
//
// # Races
//
// Every race is decided by inserting a document with a unique _id, which is
// atomic on a standalone server, a replica set and a sharded cluster alike,
// and also on FerretDB (whose conditional updates are not atomic): a
// version number by inserting the version, a seq by inserting the change.
// Within one process, writers of the same resource are also serialised by
// striped mutexes, and seq reservations by one mutex, so that only writers
// in different processes ever collide on the database.
//
// # Writes: one protocol on every deployment
//
// The package uses no multi-document transactions, on a standalone server,
// a replica set, a sharded cluster or FerretDB alike: the protocol below
// is the only one, and the FerretDB tests (protocol_test.go, the storetest
// contract with the in-process locks off, cmd/fhirsub's several-nodes
// test) run it. A transaction path that no test on these machines could
// run (no replica set can be started here; FerretDB has no transactions)
// was removed rather than shipped untested.
//
// One write is four steps:
//
//  1. Decide: read the state (the resources document first; the versions
//     after a lost race) and apply If-Match and the create/update/delete
//     rules.
//  2. Reserve: insert the change {_id: seq, state: pending, type, id, vid,
//     prev, interaction, time, reserved}. On a duplicate key try seq+1.
//     A seq is tried only when the one below exists, so no seq is ever
//     missing below an existing one.
//  3. Claim: insert the version "Type/id/vid" carrying seq. A duplicate
//     key means another writer (or a reader, below) took vid: set the
//     change aborted and start again at 1.
//  4. Publish: point the resources document at the version unless it shows
//     a newer one (replace with filter vid < new, upsert), set the change
//     committed, wake this process's waiters.
//
// Readers of the feed (Changes, LastSeq, Wait) walk seqs in order and stop
// at the first seq that is pending, so a change that commits later is
// never skipped; aborted seqs are passed over (the feed's numbers then skip
// them: that happens only when writers on different nodes race on the same
// resource, or a writer dies). A seq pending for longer than
// Config.CommitTimeout (5 s) is settled by the reader that meets it, with
// the same unique-_id rule: if the version "Type/id/vid" exists with this
// seq, the writer got past step 3 and the reader finishes step 4 (rolls
// forward); if it does not exist, the reader inserts it as an aborted
// placeholder — if that insert wins, the writer's late step 3 fails and the
// writer starts again with a new seq; if it loses, the version arrived and
// the reader rolls forward. Every party that sets a seq's final state sets
// the same one. A placeholder takes a version number, so the resource's
// next real version skips it; VRead and History never show placeholders.
// The reserved time is the writer's clock: node clocks should agree to well
// within the timeout (a fast clock only makes a slow writer start again).
//
// What having no transaction means beyond that: a Store.Transaction checks every
// entry's preconditions before writing anything (so a failing entry writes
// nothing), but a database failure between two entries leaves the earlier
// ones applied; Read and Search may show a version a few milliseconds
// before its change commits; on FerretDB the resources document can show
// an older version than the newest if two nodes publish versions of one
// resource at the same instant (FerretDB's conditional replace is not
// atomic), until that resource's next write.
//
// # Events
//
// The event store keeps three collections:
//
//   - cursors: _id the consumer's name, seq the last change it processed.
//   - events: _id "sub/number", with sub, number, seq (the change), topic,
//     focus (type, id, vid), interaction and time. The _id decides which
//     Record gets a number; the unique index seq_sub decides that a change
//     triggers a subscription once, and serves replays by seq.
//   - states: _id the subscription id, with eventCount (owned by Record)
//     and the delivery fields (owned by SaveDelivery).
//
// Record(cursor, seq, matches) writes in this order:
//
//  1. Read the cursor; at or past seq it is a replay: return the events
//     whose seq is seq, by subscription id, and write nothing.
//  2. For each match: insert the event numbered eventCount+1. A duplicate
//     key means either that the subscription has an event for seq already
//     (seq_sub: a duplicate match, another cursor, or an earlier attempt
//     of this Record) — that event is returned — or that the number is
//     taken (a concurrent Record, or an earlier attempt that died before
//     step 3), and the next try is one past the subscription's newest
//     event. Then raise eventCount to the number ($max, upsert).
//  3. Move the cursor to seq ($max, upsert), last.
//
// Why a Record cut short anywhere converges when it runs again: the cursor
// moves only after every event of seq exists, so a consumer that died
// re-runs the same seq; each of its events is found again through seq_sub
// instead of being numbered twice, and its count is raised again (a no-op
// if it was). eventCount is only ever raised to a number that exists, so
// every number up to it has been used and numbering starting above it
// never reuses one, even after Prune (which deletes only events numbered
// at most min(Delivered-keep, eventCount)); numbers above a lagging count
// are skipped by the duplicate key. Numbers stay gap-free because a number
// is tried only when the one below it is used. The cursor and Delivered
// never move backwards ($max). DropSubscription deletes the events, then
// the state; if it fails between the two, calling it again completes it.
//
// Within one process, Record,
// SaveDelivery, Prune and DropSubscription of one subscription (and
// Records of one cursor) are serialised by the striped locks.
//
// On FerretDB the unique _id and the unique index seq_sub hold (both are
// enforced when the document is inserted), but an update reads the
// document, applies the operators in Go and writes the whole document
// back, so $max is not atomic and an update can undo a concurrent update
// of another field of the same document: between nodes, eventCount can then
// end below the last number (State under-reports it; numbering stays
// correct through the duplicate key, unless a Prune ran between the two
// writes), a stale SaveDelivery can lower Delivered, and Record and
// SaveDelivery on one subscription can undo each other's fields. In one
// process the locks prevent all of this; FerretDB is a test server.
//
// # Errors
//
// Driver types never leave the package: missing documents become
// fhirstore.ErrNotFound, lost If-Match races fhirstore.ErrVersionConflict,
// other driver errors plain errors with the driver's message, still
// matching context.Canceled and context.DeadlineExceeded with errors.Is.
//
// # Concurrency
//
// A DB is safe for concurrent use. It starts no goroutines: Wait is woken
// at once by this process's commits (fhirstore.Notifier) and otherwise
// polls LastSeq every Config.PollInterval to see other nodes' commits.
// Close wakes waiters with fhirstore.ErrClosed and disconnects after the
// writes in flight in this process have finished.
package mongo
