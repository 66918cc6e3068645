// Package subscriptions is fhirsub's subscription pipeline: validation of
// Subscription and SubscriptionTopic writes, the matcher, the per-
// subscription event log, notification Bundles, rest-hook delivery with
// retries and heartbeats, and the $status and $events operations.
//
// # Flavours
//
// A Subscription whose criteria is an http(s) URL is topic-based
// (Subscriptions R5 Backport IG 1.1.0): the URL names a SubscriptionTopic
// of the registry, filters come from _criteria.extension
// [backport-filter-criteria], and notifications are history Bundles whose
// first entry is the backport-subscription-status-r4 Parameters. Any other
// criteria is classic R4 ("Type?params", applied to the new version of
// creates and updates; deletes are not notified): rest-hook sends an empty
// POST to the endpoint without payload, or a PUT of the resource to
// {endpoint}/{Type}/{id} with one.
//
// Validation never fails open: an unknown topic, filter, parameter,
// channel type, MIME type, payload content or any extension the server
// does not understand (cross-version http://hl7.org/fhir/5.0/… ones and
// lookalikes of the Backport URLs included) is refused with a 422
// OperationOutcome naming the element. The only extensions accepted are
// backport-filter-criteria, backport-payload-content,
// backport-heartbeat-period, backport-timeout, backport-max-count, and
// fhirsub's own https://fhirsub.org/StructureDefinition/subscription-hmac-secret
// (valueString, on Subscription.channel): when present, every rest-hook
// request is signed with HMAC-SHA256 of "timestamp.body" under that secret
// (headers X-Fhirsub-Signature "sha256=<hex>" and X-Fhirsub-Timestamp).
//
// An end instant already past when a version is written is ignored (the
// Backport IG's and Inferno's sample subscriptions carry end 2020-12-31);
// an end that passes later turns the subscription off.
//
// # Pipeline
//
// Where each step lives: match.Tail (package match) reads the store's
// change feed from a cursor kept in the EventStore — the only tail of the
// feed — and hands each change to the matcher (matcher.go); the registry
// (registry.go) holds the known subscriptions, topics and index; route.go
// hands recorded events to the rest-hook queue or the listeners; the
// deliverer (delivery.go) sends rest-hook work, with the queue, timers,
// backoff and lease keeper of package delivery. For each change the
// matcher
// loads the new (and, for topics, the previous) version, each read and
// decoded once, hands the change and its versions to the taps
// (Config.Taps: the legacy channel's feed, see tap.go), evaluates the
// topic triggers, then finds
// candidate subscriptions through an index (resource type → the exact
// key of each subscription's most selective equality clause; a residual
// set for subscriptions without one) and verifies the rest of their
// criteria, so the cost per change does not grow with subscriptions that
// cannot match. The matches are recorded with EventStore.Record, atomic
// with the cursor and idempotent, which numbers each subscription's events
// without gaps; a change that matches nothing moves the cursor only in
// memory, stored with the next recorded change or within CursorEvery.
// A subscription is registered with the index in the write hook, before its 201 is answered, and matches the changes committed
// after that point. Subscriptions in status requested, active and error
// match (events of a requested subscription wait for its handshake); off
// does not.
//
// rest-hook delivery runs from the durable event log: a subscription's
// queue is its events after SubscriptionState.Delivered, delivered in
// order by one worker at a time (at least once), backport-max-count
// events per Bundle. A new or re-requested topic-based subscription
// first gets a handshake (requested → active on 2xx, error otherwise).
// Failures are retried with capped exponential backoff and jitter; after
// MaxFailures consecutive failures, or at once for a permanent failure
// (SSRF guard, 4xx), the subscription goes to error with
// Subscription.error set, and back to active on the next success.
// Heartbeats are sent only to subscriptions with backport-heartbeat-period.
// Retry, heartbeat and end times live in a timer heap (schedule.go): a
// scheduler look costs the subscriptions due, not all of them.
// Status changes are written to the Subscription resource (a new
// version); counters and delivery state live in the EventStore.
//
// # Several nodes
//
// Nodes sharing one store each run the whole matcher (Record is
// idempotent across nodes: the first to record a change numbers its
// events, the others get the same events back), so websocket and other
// listeners on every node see every event. rest-hook delivery is
// partitioned (Config.Cluster): a subscription's handshakes, events,
// heartbeats and retries come only from the node holding the lease of its
// partition, and a node that gains a partition resumes each of its
// subscriptions from the persisted delivery state.
//
// # Concurrency
//
// A Manager is safe for concurrent use. Its goroutines (the matcher, the
// scheduler, Config.Workers delivery workers and, with Cluster.Leases,
// the lease keeper) are started by Run and stopped and awaited by
// Shutdown. Lock order: the registry's lock before the topic registry's
// lock and the schedule's; the queue, schedule and listener locks are
// leaves.
//
// The websocket protocols are served by package wsbridge through the
// Manager's exported methods; rest-hook requests go out through the
// Sender interface declared here (cmd/fhirsub adapts channels.RestHook).
package subscriptions
