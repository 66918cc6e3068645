package main

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// subs: o.SubsCount topic Subscriptions created by o.Concurrency
// clients, each for its own patient: created per second, and the growth
// of the server's resident memory per subscription (VmRSS after all
// rest-hook handshakes arrived, minus VmRSS before the first create).
// When creating stops early (a write refused beyond -retries), the
// figures are those of the subscriptions created so far.
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
	var rss0, anon0 int64
	if t.PID > 0 {
		var err error
		if rss0, err = rssBytes(t.PID); err != nil {
			return r, err
		}
		anon0, _ = statusBytes(t.PID, "RssAnon") // 0 where the kernel does not say
	}
	cpu := startCPU(t.PID)
	start := time.Now()
	ids, err := createMany(ctx, c, "Subscription", o.SubsCount, o.Concurrency, func(i int) []byte {
		return topicSubscription(endpoint, patientOf(run, i, o.SubsCount))
	})
	elapsed := time.Since(start)
	// the figures of what was created, also when creating stopped early
	// (a refusal that outlasted -retries): how far it got is the finding
	created := 0
	for _, id := range ids {
		if id != "" {
			created++
		}
	}
	r.add("n", float64(created), "", 0)
	r.add("created/s", float64(created)/elapsed.Seconds(), "", +1)
	cpu.addPer(r, "cpu/sub", created)
	if rcv != nil && err == nil {
		got := rcv.waitHandshakes(ctx, created, o.Drain+time.Duration(created)*time.Millisecond)
		if got < created {
			err = fmt.Errorf("%d of %d rest-hook handshakes arrived within %v", got, created, o.Drain+time.Duration(created)*time.Millisecond)
		}
	}
	if t.PID > 0 {
		rss1, rerr := rssBytes(t.PID)
		if rerr != nil {
			return r, errors.Join(err, rerr)
		}
		if created > 0 {
			r.add("rss/sub", float64(rss1-rss0)/float64(created)/1024, "KB", -1)
		}
		r.add("rss", float64(rss1)/(1<<20), "MB", -1)
		// of which anonymous memory (heap, stacks); the rest is mapped
		// files, the database's memory mapping above all
		if anon1, aerr := statusBytes(t.PID, "RssAnon"); aerr == nil && anon0 > 0 && created > 0 {
			r.add("rss.anon/sub", float64(anon1-anon0)/float64(created)/1024, "KB", -1)
		}
	} else {
		r.note("no -pid: server memory not measured")
	}
	return r, err
}
