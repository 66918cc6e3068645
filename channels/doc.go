// Package channels holds fhirsub's notification transports. This file set
// is the websocket side: a protocol-agnostic Hub and the legacy MedGenEMR
// JSON protocol (Legacy, in two dialects). The R4 `bind` and Backport `bind-with-token`
// protocols plug into the same Hub as further Protocol implementations.
//
// # Hub
//
// Hub.Handler(p) upgrades GET requests (gorilla/websocket) after p.Accept
// has authorized them. Each connection has exactly two goroutines: a reader,
// which calls the protocol's Session (Open, Message per text frame, Closed)
// in order, and a writer, the only goroutine that writes to the socket. The
// request goroutine returns right after the upgrade.
//
//   - Frames larger than Config.ReadLimit close the connection with 1009;
//     binary frames are answered with close 1003.
//   - Every write has a deadline (WriteTimeout). One hub-wide ticker asks
//     every writer to ping each PingInterval; a connection from which
//     nothing (not even a pong) arrives for PongTimeout is closed.
//   - Each connection has a bounded send queue (SendQueue frames,
//     SendQueueBytes bytes), grown lazily so an idle connection holds none.
//     Conn.Send never blocks: when the queue is full the connection is a
//     slow consumer: its queued frames are dropped, a write stuck on the
//     stalled socket is aborted at once, and it is closed with 1013 "slow
//     consumer" (the close frame itself reaches the peer only if its socket
//     still takes it). Nobody else waits. Conn.SendWait is the
//     flow-controlled variant used by replays on the connection's own
//     reader goroutine.
//   - Hub.NotificationLag is the age of the oldest notification frame
//     (a binding's Bundles, an R4 ping, a legacy event) queued on any
//     connection and not yet written to its socket: a gauge for operators,
//     not a reason to refuse writes (a slow consumer is cut off instead).
//   - Shutdown refuses new upgrades (503), sends close 1001 "server
//     shutting down" to every connection, gives each peer up to a second to
//     answer, and waits until every connection goroutine has ended (a peer
//     that stopped reading delays it by at most WriteTimeout).
//     http.Server.Shutdown does not close hijacked connections: call
//     Hub.Shutdown as well.
//
// Memory per idle connection is two parked goroutines, a ReadBufferSize
// read buffer and small structs; write buffers are pooled and held only
// while writing (see BenchmarkIdleConnections).
//
// # Legacy protocol: two dialects
//
// One implementation (Legacy) serves two dialects that differ only by the
// dialects table (legacy_dialect.go): the extended dialect (Legacy itself
// as a Protocol, mounted on /ws, for web/client) and the original
// MedGenEMR dialect (Legacy.Original, mounted on /api/ws and
// /api/ws/{client_id}), which the original browser client speaks
// unchanged. Subscriptions, filters, access rules and replays are shared.
//
// Client messages:
//
//	{"type":"subscribe","data":{"subscription_id":"sub_123","resource_types":["Observation"],"patient_ids":["patient-123"]}}
//	{"type":"unsubscribe","data":{"subscription_id":"sub_123"}}
//	{"type":"ping"}
//	{"type":"pong"}                          (answer to the original dialect's heartbeat; ignored)
//	{"type":"resume","data":{"since":41}}    (extended dialect only)
//
// resource_types missing, [] or containing "*" means every type.
// patient_ids missing, [] or containing "*" means every patient the
// caller may see (LegacyConfig.Authorize, or the token); "Patient/123" is
// accepted for "123". Subscribing again with the same subscription_id
// replaces that subscription; a subscribe identical to the one held is
// acknowledged without counting towards the message rate (the original
// client's hooks re-subscribe on every render). In the original dialect,
// a subscription_id subscribed with the filter of one unsubscribed a
// moment before (its hooks unsubscribe and subscribe under a new id on
// every render) first replays the messages that fell between the two.
//
// Extended dialect answers:
//
//	{"type":"subscribed","seq":H,"data":{"subscription_id":"sub_123"}}
//	{"type":"unsubscribed","seq":H,"data":{"subscription_id":"sub_123"}}
//	{"type":"pong"}
//	{"type":"resumed","seq":H,"data":{"since":41,"replayed":3,"truncated":false}}
//
// where H is the seq of the last change published when the answer was made.
// Extended server messages (encoded once per change and dialect and shared
// by every receiver):
//
//	{"type":"update","seq":N,"data":{"action":"created|updated|deleted","resource_type":"Observation","resource_id":"obs-123","patient_id":"patient-123","resource":{...}},"timestamp":"2024-01-01T12:00:00Z"}
//	{"type":"clinical_event","seq":N,"data":{"event_type":"critical_result","details":{...}},"timestamp":"..."}
//	{"type":"error","data":{"code":"invalid_json","message":"..."}}
//
// The original dialect, exactly as the original service spoke it:
//
//	{"type":"welcome","data":{"client_id":"<uuid>","user":<token claims|null>}}   (+ "reconnected":true on /api/ws/{client_id})
//	{"type":"subscription","data":{"action":"created","subscription_id":…,"resource_types":[…],"patient_ids":[…]}}
//	{"type":"subscription","data":{"action":"removed","subscription_id":…}}     (unknown ids too)
//	{"type":"update","data":{"action":"created|updated|deleted","resource_type":…,"resource_id":…,"patient_id":…,"resource":{...}},"timestamp":"…","message_id":null}
//	{"type":"update","data":{"action":"clinical_event","resource_type":…,"resource_id":…,"patient_id":…,"resource":{"event_type":"critical_result","details":{...}}},"timestamp":"…","message_id":null}
//	{"type":"ping","data":null,"timestamp":"…","message_id":null}                 (every LegacyConfig.Heartbeat, default 30 s)
//
// The welcome is the first message. A deletion has resource null and, in
// the original dialect, patient_id null (its hooks read the resource of any
// message that names a patient). Unknown message types are ignored; a
// client over the message rate is slowed down (its messages wait) instead
// of being answered rate_limited. Bad messages (invalid JSON, a bad type
// name or patient id, a forbidden patient) still get an error message.
//
// seq is the change feed sequence number of the change; a clinical event
// carries the seq of the change that fired it (so one seq may carry an
// update and clinical events). In the extended dialect, resource is null
// for a deletion and patient_id is then that of the last live version.
// patient_id is null when the resource is in no Patient compartment; when
// it is in several, a subscription matches on any of them and patient_id is
// the one it matched (the first in compartment order when it has no
// patient filter). A connection receives each message at most once, even
// when several of its subscriptions match; clinical events are filtered
// like updates, on the type and patients of the resource that fired the
// topic. A resource in no Patient compartment only reaches callers that
// may see every patient, through subscriptions without patient_ids.
//
// Errors (the connection stays open): invalid_json, missing_field,
// invalid_field, unknown_type (extended only), too_many_subscriptions
// (MaxSubscriptions), rate_limited (extended only:
// MessageRate/MessageBurst; the message is ignored), not_subscribed
// (extended only: unsubscribe of an unknown id, resume before subscribe),
// forbidden (a patient outside the caller's access), replay_unavailable
// and replay_failed.
//
// # Authentication
//
// With a LegacyConfig.Verifier, a connection presents its bearer token as
// the access_token or token query parameter (the original client sends
// ?token=), an Authorization header, or in its first message:
// {"type":"auth","data":{"token":"…"}} or, as the original client sends it,
// {"type":"authenticate","token":"…"}. The original dialect then sends its
// welcome (user: the token's claims); the extended one answers
// "authenticated". A refused token closes an original-dialect socket with
// 4001 "Unauthorized" (browsers cannot read the HTTP status of a refused
// upgrade); in the extended dialect a bad token in the URL refuses the
// upgrade with 401 and a bad auth message closes with 1008. Every socket is
// closed (1008 "token-expired") when its token expires.
//
// # Original dialect: re-subscribe replays what was missed
//
// The original client reconnects to /api/ws under a new client id and, on
// welcome, re-sends every subscription it holds. When a connection closes,
// the position of each of its subscriptions (LegacyPosition: every message
// up to a change written to the socket, and how many of the next change's)
// is saved per caller and subscription_id (LegacyConfig.Positions, durable:
// the store's cursors in cmd/fhirsub). When the same caller subscribes
// that subscription_id on a later connection, even after a restart, the
// ack is followed by the messages it missed, from the durable change feed,
// in order, then by live messages; messages another subscription of the
// connection already delivered are not sent twice. A replay reads back
// window after window of ReplayLimit changes until it has at least the
// last 100 messages (at most 20 windows). What a socket wrote just before
// the network broke may not have reached the browser; a socket the server
// has not yet seen close saves its position only when it does.
//
// # Extended dialect: replay and client_id
//
// resume replays, in seq order, the messages of the changes with
// since < seq <= H that match the connection's current subscriptions, then
// goes live with no gap and no duplicate (live messages arriving during the
// replay are held and sent after it). A replay goes back at most ReplayLimit
// changes (default 1000); when since is older, truncated is true and the
// client should refetch. Replays read the durable change feed (the
// LegacyReplayer, recent changes from its memory cache), so an explicit
// resume works across server restarts.
//
// The client_id query parameter (ws://host/ws?client_id=abc) names a browser
// across reconnects. When a connection with a client_id closes, the server
// remembers in memory, for ClientTTL (default 10 min, at most MaxClients
// ids), its subscriptions and its position: the highest seq P such that
// every matching message up to P was written to the socket (messages queued
// but never written, or dropped by a slow-consumer cut, lower P). On a
// reconnect with the same client_id:
//
//   - if its subscriptions are remembered, they are restored at once (a
//     subscribed message with "restored":true for each) and the messages
//     after P are replayed immediately;
//   - otherwise the first subscribe replays the messages after P that match
//     it.
//
// Re-sending subscribe for a restored subscription just replaces it. An
// explicit resume overrides the remembered position. The memory is lost on
// restart (use resume), and what was written to a socket that then broke
// may not have reached the browser: clients that need exactness resume from
// the last seq they processed. Two tabs sharing a client_id share one record
// (the last to close wins).
//
// # Concurrency
//
// Hub, Conn, Legacy and LegacyEvent are safe for concurrent use.
// Legacy.Publish is called by one goroutine (the feed) in seq order and never
// blocks on a socket. Lock order: Legacy.pubMu, Legacy.mu, a session's mu,
// a Conn's mu. Subscribe, unsubscribe, the start of a replay and the
// restore of a client_id switch the subscription set and queue their ack
// under pubMu, so no live message precedes an ack and none is missed.
package channels
