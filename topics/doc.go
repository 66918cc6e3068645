// Package topics implements FHIR SubscriptionTopics for fhirsub: parsing a
// topic (R4B/R5 SubscriptionTopic shape, or the R4 Basic-wrapped form of the
// Subscriptions Backport IG 1.2.0), deciding whether a resource change
// triggers it, parsing a subscription's filter criteria against the topic's
// canFilterBy, and the built-in clinical topics.
//
// The package is pure: no I/O, no clock, no logging. It imports only the
// conformance packages (definitions, fhirpath, search).
//
// # Trigger semantics
//
// Topic.Triggered follows the Backport IG matching rules (fhir-candle's
// reading of them). A change is tested against every resourceTrigger of its
// resource type that lists its interaction (an empty supportedInteraction
// list means create, update and delete); the topic fires when any one of them
// passes. A trigger passes when:
//
//   - it has neither queryCriteria nor fhirPathCriteria (interaction-only);
//   - its fhirPathCriteria, evaluated on the current version (the previous
//     one for a delete) with %current and %previous bound, is true;
//   - its queryCriteria pass: previous and current are tested as search
//     queries against the previous and current versions; on create the
//     previous result is resultForCreate, on delete the current result is
//     resultForDelete; requireBoth decides between AND and OR.
//
// When a trigger has both fhirPathCriteria and queryCriteria, both must pass.
// When the version a query test needs does not exist (the previous version
// of a create, the current one of a delete), resultForCreate or
// resultForDelete stands for the test, and an absent result code means the
// test fails (as in fhir-candle). A test the topic does not give at all (no
// previous, or no current) is neutral, so that it never decides on its own:
// passed when requireBoth is true, failed otherwise. An update whose
// previous version is unknown (Change.Previous nil) is tested like a create.
//
// # Filters
//
// A subscription filter ("Encounter?patient=Patient/123",
// "Encounter.patient=Patient/123" or "patient=Patient/123") constrains the
// resources of its own type only: Filter.Match is true for a focus of any
// other type, so a subscription on a topic with several resource types can
// give one filter per type and the filters are AND-ed (MatchAll). Every
// parameter must be allowed by the topic's canFilterBy, modifier and
// comparator included; an absent modifier (comparator) list allows none
// (only plain equality).
//
// # Concurrency
//
// A parsed Topic and a parsed Filter are immutable and safe for concurrent
// use. Registry is safe for concurrent use.
package topics
