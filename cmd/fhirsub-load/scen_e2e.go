package main

import (
	"context"
	"fmt"
	"time"
)

// e2e: o.Subscribers Subscriptions, of which o.Matching per channel
// follow one "hot" patient and the rest other patients, plus o.Matching
// legacy connections per legacy path; then o.Rate writes per second for
// the hot patient during o.Duration. For each channel: POST sent →
// notification received (p50/p99/max, and p99 from the 201), and how many
// notifications of acknowledged writes never came within o.Drain.
func e2e(ctx context.Context, t target, o options) (*result, error) {
	r := &result{Scenario: "e2e"}
	c := o.client(t, max(o.Workers, o.Concurrency))
	defer c.close()
	defer r.addRefused(c)
	rcv, err := startReceiver()
	if err != nil {
		return r, err
	}
	defer rcv.close()
	run := runID()
	hot := run + "-hot"
	k := max(1, o.Matching)

	// the subscribers: rest-hook ones that do not match, then those that do
	cold := max(0, o.Subscribers-2*k)
	if _, err := createMany(ctx, c, "Subscription", cold, o.Concurrency, func(i int) []byte {
		return topicSubscription(rcv.url, fmt.Sprintf("%s-cold%d", run, i))
	}); err != nil {
		return r, err
	}
	hook := newTracker("resthook", k)
	rcv.track(hook)
	if _, err := createMany(ctx, c, "Subscription", k, o.Concurrency, func(int) []byte {
		return topicSubscription(rcv.url, hot)
	}); err != nil {
		return r, err
	}
	channels := []*tracker{hook}
	var listeners []*wsListener
	defer func() {
		for _, l := range listeners {
			l.close()
		}
	}()
	bp := newTracker("backport", k)
	wsSubs, err := createMany(ctx, c, "Subscription", k, o.Concurrency, func(int) []byte { return topicSubscription("", hot) })
	if err != nil {
		return r, err
	}
	for _, id := range wsSubs {
		l, err := listenBackport(ctx, c, id, bp)
		if err != nil {
			return r, err
		}
		listeners = append(listeners, l)
	}
	channels = append(channels, bp)
	for _, path := range o.LegacyPaths {
		lt := newTracker("legacy"+path, k)
		var served = true
		for j := range k {
			l, err := listenLegacy(ctx, t.Base, path, fmt.Sprintf("%s-%d", run, j), hot, lt)
			if notServed(err) {
				r.note("legacy %s: not served (404), no figure", path)
				served = false
				break
			}
			if err != nil {
				return r, err
			}
			listeners = append(listeners, l)
		}
		if served {
			channels = append(channels, lt)
		}
	}
	hooks := cold + k
	if got := rcv.waitHandshakes(ctx, hooks, o.Drain+time.Duration(hooks)*time.Millisecond); got < hooks {
		return r, fmt.Errorf("e2e: %d of %d rest-hook handshakes arrived", got, hooks)
	}

	cpu := startCPU(t.PID)
	ws := openLoop(ctx, c, "Observation", o.Rate, o.Duration, o.Workers, func(i int) []byte { return observation(hot, i) })
	acked, failed, firstErr := tally(ws)
	for _, tr := range channels {
		tr.waitComplete(ctx, ws, o.Drain)
	}
	cpu.addPer(r, "cpu/write", acked)
	r.add("subs", float64(cold+2*k), "", 0)
	r.add("rate", o.Rate, "/s", 0)
	r.addLatency("post", postLatency(ws))
	var lost int
	for _, tr := range channels {
		oc := tr.outcome(ws)
		r.addLatency(tr.name, oc.FromSend)
		if oc.FromAck.N > 0 {
			r.add(tr.name+".p99-from-201", ms(oc.FromAck.P99), "ms", -1)
		}
		r.add(tr.name+".lost", float64(oc.Lost), "", 0)
		if oc.Dups+oc.Stray > 0 {
			r.add(tr.name+".dups", float64(oc.Dups+oc.Stray), "", 0)
		}
		lost += oc.Lost
	}
	r.add("lost", float64(lost), "", 0)
	for _, l := range listeners {
		if bad := l.bad.Load(); bad > 0 {
			r.note("%d websocket frames not understood", bad)
			break
		}
	}
	if bad := rcv.bad.Load(); bad > 0 {
		r.note("%d rest-hook requests were not notification Bundles", bad)
	}
	return r, r.addWrites(acked, failed, firstErr)
}
