// Package channels holds fhirsub's notification transports. This file set
// is the websocket side: a protocol-agnostic Hub and the legacy MedGenEMR
// JSON protocol (Legacy). The R4 `bind` and Backport `bind-with-token`
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
// # Legacy protocol (path /ws)
//
// Client messages:
//
//	{"type":"subscribe","data":{"subscription_id":"sub_123","resource_types":["Observation"],"patient_ids":["patient-123"]}}
//	{"type":"unsubscribe","data":{"subscription_id":"sub_123"}}
//	{"type":"ping"}
//	{"type":"resume","data":{"since":41}}
//
// resource_types is required; ["*"] means every type. patient_ids absent
// or [] means every patient the caller may see (LegacyConfig.Authorize);
// "Patient/123" is accepted for "123". Subscribing again with the same
// subscription_id replaces that subscription. Answers:
//
//	{"type":"subscribed","seq":H,"data":{"subscription_id":"sub_123"}}
//	{"type":"unsubscribed","seq":H,"data":{"subscription_id":"sub_123"}}
//	{"type":"pong"}
//	{"type":"resumed","seq":H,"data":{"since":41,"replayed":3,"truncated":false}}
//
// where H is the seq of the last change published when the answer was made.
// Server messages (encoded once per change and shared by every receiver):
//
//	{"type":"update","seq":N,"data":{"action":"created|updated|deleted","resource_type":"Observation","resource_id":"obs-123","patient_id":"patient-123","resource":{...}},"timestamp":"2024-01-01T12:00:00Z"}
//	{"type":"clinical_event","seq":N,"data":{"event_type":"critical_result","details":{...}},"timestamp":"..."}
//	{"type":"error","data":{"code":"invalid_json","message":"..."}}
//
// seq is the change feed sequence number of the change; a clinical event
// carries the seq of the change that fired it (so one seq may carry an
// update and clinical events). resource is null for a deletion and
// patient_id is then that of the last live version. patient_id is null when
// the resource is in no Patient compartment; when it is in several, a
// subscription matches on any of them and patient_id is the one it matched
// (the first in compartment order when it has no patient filter). A
// connection receives each message at most once, even when several of its
// subscriptions match; clinical events are filtered like updates, on the
// type and patients of the resource that fired the topic. A resource in no
// Patient compartment only reaches callers that may see every patient,
// through subscriptions without patient_ids.
//
// Errors (the connection stays open): invalid_json, missing_field,
// invalid_field, unknown_type, too_many_subscriptions (MaxSubscriptions),
// rate_limited (MessageRate/MessageBurst; the message is ignored),
// not_subscribed (unsubscribe of an unknown id, resume before subscribe),
// forbidden (a patient outside the caller's access), replay_unavailable and
// replay_failed.
//
// # Replay and client_id
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
// a Conn's mu.
package channels
