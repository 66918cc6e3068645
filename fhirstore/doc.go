// Package fhirstore defines the persistence contract of fhirsub (Store)
// together with the value types it exchanges (Resource, Change, Page, Op)
// and the backend-neutral pieces every backend shares: id generation and
// validation (NewID, ValidID), stamping and canonical encoding of resource
// bodies (Stamp, Encode, Decode), the commit broadcaster behind Store.Wait
// (Notifier) and the in-memory half of search (SearchPage).
//
// The backends live in sub-packages: fhirstore/sqlite (embedded, default)
// and fhirstore/mongo. fhirstore/storetest is the behavioural contract both
// must pass.
//
// Concurrency: every Store implementation is safe for concurrent use. The
// helpers of this package are pure functions, except Notifier, which is
// safe for concurrent use as documented on its methods.
package fhirstore
