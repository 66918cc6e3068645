// Package storetest is the behavioural contract of fhirstore.Store: one
// suite, Run, that every backend runs from its own tests against a real
// database. It covers create/read/vread, update and delete semantics,
// history, search (against conformance/search's in-memory matcher,
// including a randomised property test), transactions, the change feed,
// Wait, and concurrent writers.
package storetest
