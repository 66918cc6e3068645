// Package legacy feeds the legacy browser websocket channel
// (channels.Legacy) from the store's ordered change feed.
//
// A Feed owns one goroutine (Run). It starts at the end of the change feed
// (Store.LastSeq), then reads Store.Changes in seq order, blocking in
// Store.Wait when it has caught up, so it runs after commit and a write
// never waits for a socket. For each change it reads the new version and
// the previous one (Change.PreviousVersionID), derives the patient ids from
// the Patient compartment (conformance/search.PatientIDs; for a deletion,
// from the last live version), encodes the update message once
// (channels.NewLegacyUpdate), evaluates the topics that have an event type
// (the built-in clinical topics by default) and encodes one clinical_event
// per topic fired, then hands them to the Sink together with the change's
// seq. Every change is published, even one that yields no message, so the
// sink's head always equals the last change processed.
//
// Feed.Replay (channels.LegacyReplayer) reads past messages back: from an
// in-memory cache of the last CacheSize changes when it covers the range,
// otherwise from the durable change feed, so replays survive restarts.
//
// Positions (channels.LegacyPositions) keeps, per caller and
// subscription_id, how far the original dialect's messages were written,
// as named cursors of the event store (fhirstore.EventStore): a
// re-subscribed subscription_id replays from there, across restarts and
// nodes.
//
// Store errors are logged and retried every RetryInterval without skipping
// a change; a version that no longer exists is skipped with a warning. Run
// returns when its context is cancelled or Shutdown is called; Shutdown
// waits for it.
package legacy
