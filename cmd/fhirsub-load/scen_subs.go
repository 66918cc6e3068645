package main

import (
	"context"
	"fmt"
	"time"
)

// subs: o.SubsCount topic Subscriptions created by o.Concurrency
// clients, each for its own patient: created per second, and the growth
// of the server's resident memory per subscription (VmRSS after all
// rest-hook handshakes arrived, minus VmRSS before the first create).
func subs(ctx context.Context, t target, o options) (*result, error) {
	r := &result{Scenario: "subs"}
	c := o.client(t, o.Concurrency)
	defer c.close()
	defer r.addRefused(c)
	endpoint := ""
	var rcv *receiver
	if o.SubsChannel == "rest-hook" {
		var err error
		if rcv, err = startReceiver(); err != nil {
			return r, err
		}
		defer rcv.close()
		endpoint = rcv.url
	}
	run := runID()
	var rss0 int64
	if t.PID > 0 {
		var err error
		if rss0, err = rssBytes(t.PID); err != nil {
			return r, err
		}
	}
	cpu := startCPU(t.PID)
	start := time.Now()
	ids, err := createMany(ctx, c, "Subscription", o.SubsCount, o.Concurrency, func(i int) []byte {
		return topicSubscription(endpoint, patientOf(run, i, o.SubsCount))
	})
	if err != nil {
		return r, err
	}
	elapsed := time.Since(start)
	r.add("n", float64(len(ids)), "", 0)
	r.add("created/s", float64(len(ids))/elapsed.Seconds(), "", +1)
	cpu.addPer(r, "cpu/sub", len(ids))
	if rcv != nil {
		got := rcv.waitHandshakes(ctx, len(ids), o.Drain+time.Duration(len(ids))*time.Millisecond)
		if got < len(ids) {
			return r, fmt.Errorf("subs: %d of %d rest-hook handshakes arrived", got, len(ids))
		}
	}
	if t.PID > 0 {
		rss1, err := rssBytes(t.PID)
		if err != nil {
			return r, err
		}
		r.add("rss/sub", float64(rss1-rss0)/float64(len(ids))/1024, "KB", -1)
		r.add("rss", float64(rss1)/(1<<20), "MB", -1)
	} else {
		r.note("no -pid: server memory not measured")
	}
	return r, nil
}
