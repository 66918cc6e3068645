// Command fhirsub-load is the external load client of fhirsub: it drives
// a running server over loopback HTTP and websockets, the way its users
// do, and prints one line of figures per scenario, each computed from
// what the client was told (201s received, notifications received) and
// from /proc/<pid> of the server (CPU, resident memory).
//
//	fhirsub-load [flags] SCENARIO...   run against -url (server pid -pid)
//	fhirsub-load compare [flags]       start the built binary (and a baseline
//	                                   built from a git ref) and compare them
//
// Every run is bounded in count and time and stops by itself; the client
// refuses a server that is not on a loopback address. `make bench-e2e`
// runs compare; PROFILE.md maps where a create's CPU goes.
//
// # Scenarios and their figures
//
// Latencies are nearest-rank percentiles in ms. "Sent" is the intended
// send time of an open-loop schedule, so a stalled server cannot hide its
// stall by slowing the client (coordinated omission). Server CPU is
// utime+stime of the server process between the first write and the
// moment the server settles after the last one (deferred work included),
// divided by the acknowledged writes.
//
// Backpressure is honoured: a write the server refuses with 503 or 429
// and a Retry-After is retried after that wait (at most 30 s), up to
// -retries times, and then counts as an error. Every scenario's line
// ends with refused=N, the refusals it met (retried ones included), so
// that no scenario passes under backpressure without saying so; a fanout
// step with a refusal does not keep pace.
//
//   - create-open: -concurrency clients POST Observations back to back for
//     -duration after a -warmup: creates/s, cpu/create (µs), cores, POST
//     p50/p99.
//   - create-rate: POSTs at a steady -rate for -duration: POST sent → 201
//     p50/p99/max, cpu/create at that rate.
//   - e2e: -subscribers topic Subscriptions (result-available, filtered by
//     patient), -matching of them per channel following one patient, plus
//     -matching legacy connections per -legacy path; -rate writes per
//     second for that patient. Per channel (resthook, backport,
//     legacy/<path>): POST sent → notification received p50/p99/max, p99
//     from the 201, and lost: notifications of acknowledged writes that
//     did not come within -drain. A legacy path answered 404 is noted.
//   - fanout: -fanout-subs rest-hook Subscriptions of which each write
//     matches -fanout-match, all to a receiver in the client. A step sends
//     a rate for -fanout-step; it keeps pace when every notification
//     arrived within -drain after the last write and the p99 lag stayed
//     within -lag-bound. -fanout-rate tests one rate; without it the rate
//     is doubled from -fanout-start and bisected once. Figures of the
//     highest rate that kept pace: writes/s, deliveries/s, lag, CPU per
//     delivery (writes included); and of the lowest that fell behind.
//   - subs: -subs-count Subscriptions: created/s, cpu/sub and the growth of
//     the server's VmRSS per subscription (after the rest-hook handshakes).
//     When a refusal outlasts -retries, the figures are those of the
//     subscriptions created until then (n says how many).
//   - resthook: -resthook-subs rest-hook Subscriptions with
//     backport-max-count 1, all matching every write, to one receiver in
//     the client: fanout's steps (searched from -resthook-start up to
//     -resthook-max writes/s, or -resthook-rate), so the same figures;
//     deliveries/s and cpu/delivery (µs of server CPU per delivered
//     notification, the writes' own CPU included) are the ones it is for.
//   - starve: -starve-subs rest-hook Subscriptions all matching every
//     write; -burners processes (default one per core: this executable
//     re-run as the hidden "burn" sub-command, each ended when the writes
//     end, when its input closes, and after -starve-duration plus a minute
//     at the latest) keep every core busy while -starve-rate writes per
//     second are sent for -starve-duration. Figures: accepted writes,
//     refused (503/429 with Retry-After), post p50/p99/max, lag
//     p50/p99/max (POST sent → notification received at the receiver;
//     lag.p99-from-201 leaves out the waits of refused writes), lost, and
//     server-lag.<channel>.max, the highest
//     fhirsub_notification_lag_seconds /metrics showed (read every
//     200 ms) during the writes and the drain. A server that neither
//     refuses nor slows writes while lag grows seconds is falling behind
//     silently; the figures show which it does.
//
// compare starts a fresh server (fresh data directory, authentication
// off, rest-hooks to 127.0.0.1 allowed, all through FHIRSUB_* environment
// variables, so flags may differ between the binaries) for every
// scenario and binary, alternates which binary goes first, and with
// -runs N shows the median of N runs of each figure and the ratio
// current/base.
package main
