// Package legacy feeds the legacy browser websocket channel
// (channels.Legacy) from the store's ordered change feed.
//
// A Feed does not tail the change feed: it is a tap of the subscription
// matcher (subscriptions.Tap), which reads each change and its versions
// once for both. Start finds the end of the change feed (Store.LastSeq)
// and tells the sink; from then on the matcher hands every later change to
// Change, in seq order, after commit, so a write never waits for a socket.
// When a legacy client holds a subscription (channels.Legacy.PublishLazy
// decides, under its publishing lock) the feed takes the new version and
// the previous one from the matcher, derives the patient ids from the
// Patient compartment (conformance/search.PatientIDs; for a deletion, from
// the last live version), encodes the update message once
// (channels.NewLegacyUpdate), evaluates the topics that have an event type
// (the built-in clinical topics by default) and encodes one clinical_event
// per topic fired, then hands them to the sink with the change's seq. With
// no subscriber nothing is read or built and only the sink's head moves,
// so the head always equals the last change handed.
//
// Feed.Replay (channels.LegacyReplayer) reads past messages back: from an
// in-memory cache of the last CacheSize changes built when it covers the
// range, otherwise from the durable change feed, so replays survive
// restarts and changes nobody was subscribed to when they happened.
//
// Positions (channels.LegacyPositions) keeps, per caller and
// subscription_id, how far the original dialect's messages were written,
// as named cursors of the event store (fhirstore.EventStore): a
// re-subscribed subscription_id replays from there, across restarts and
// nodes.
//
// A store error while a change's versions are read makes the matcher retry
// the change (see subscriptions.Tap); a version that no longer exists is
// skipped with a warning. Shutdown stops publishing; the feed runs no
// goroutine of its own.
package legacy
