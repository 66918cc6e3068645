package main

import (
	"context"
	"fmt"
	"time"
)

// fanSpec is the shape of a fan-out run: subs rest-hook Subscriptions to
// the load client's receiver, each write matching match of them.
type fanSpec struct {
	name     string  // the scenario
	subs     int     // Subscriptions in all
	match    int     // Subscriptions each write matches
	maxCount int     // backport-max-count of every Subscription (0: not given)
	rate     float64 // the write rate to test (0: search from start to max)
	start    float64
	max      float64
}

// fanout: o.FanoutSubs rest-hook Subscriptions spread over patients so
// that every write matches o.FanoutMatch of them (see fanRun).
func fanout(ctx context.Context, t target, o options) (*result, error) {
	return fanRun(ctx, t, o, fanSpec{name: "fanout", subs: o.FanoutSubs, match: o.FanoutMatch,
		rate: o.FanoutRate, start: o.FanoutStart, max: o.FanoutMax})
}

// resthook: o.HookSubs rest-hook Subscriptions with backport-max-count 1,
// all matching every write, so that each write is o.HookSubs deliveries
// of one event to the receiver: the delivery throughput and the server
// CPU per delivery (see fanRun).
func resthook(ctx context.Context, t target, o options) (*result, error) {
	return fanRun(ctx, t, o, fanSpec{name: "resthook", subs: o.HookSubs, match: o.HookSubs, maxCount: 1,
		rate: o.HookRate, start: o.HookStart, max: o.HookMax})
}

// fanRun creates the Subscriptions of f, all delivered to the load
// client's receiver, and sends writes. With f.rate > 0 that write rate is
// tested; otherwise the rate is searched: doubled from f.start while
// deliveries keep pace (up to f.max), then bisected once between the last
// rate that kept pace and the first that did not.
//
// A step keeps pace when every notification of its acknowledged writes
// arrived within o.Drain after the last write, the p99 lag (POST sent
// → notification received) stayed within o.LagBound and the server
// refused no write (backpressure).
func fanRun(ctx context.Context, t target, o options, f fanSpec) (*result, error) {
	r := &result{Scenario: f.name}
	c := o.client(t, max(o.Workers, o.Concurrency))
	defer c.close()
	defer r.addRefused(c)
	h, err := startHooks(ctx, c, o, f)
	if h != nil {
		defer h.rcv.close()
	}
	if err != nil {
		return r, err
	}
	rcv, run, patients, m := h.rcv, h.run, h.patients, h.match
	r.add("subs", float64(patients*m), "", 0)
	r.add("match/write", float64(m), "", 0)

	var best, failed *fanStep
	try := func(rate float64) (*fanStep, error) {
		s, err := fanoutStep(ctx, t, o, f.name, c, rcv, run, patients, m, rate)
		if err != nil {
			return nil, err
		}
		if s.ok {
			best = s
		} else if failed == nil || rate < failed.rate {
			failed = s
		}
		return s, nil
	}
	if f.rate > 0 {
		if _, err := try(f.rate); err != nil {
			return r, err
		}
	} else {
		for rate := f.start; rate <= f.max; rate *= 2 {
			s, err := try(rate)
			if err != nil {
				return r, err
			}
			if !s.ok {
				break
			}
		}
		if best != nil && failed != nil {
			if _, err := try((best.rate + failed.rate) / 2); err != nil {
				return r, err
			}
		}
	}
	if best == nil {
		r.add("kept-pace.writes/s", 0, "", +1)
		r.note("no rate tested kept pace")
	} else {
		r.add("kept-pace.writes/s", best.rate, "", +1)
		r.add("deliveries/s", best.deliveries, "", +1)
		r.addLatency("lag", best.lag)
		r.add("cpu/delivery", best.cpuPerDelivery, "µs", -1)
		r.add("lost", float64(best.lost), "", 0)
	}
	if failed != nil {
		r.add("behind.writes/s", failed.rate, "", 0)
		r.add("behind.deliveries/s", failed.deliveries, "", +1)
		r.add("behind.lag.p99", ms(failed.lag.P99), "ms", -1)
		r.add("behind.refused", float64(failed.refused), "", 0)
	}
	return r, nil
}

// hooks are the rest-hook Subscriptions of a fanSpec, active, and the
// receiver they deliver to. Patient patientOf(run, i, patients) is
// followed by match of them.
type hooks struct {
	rcv      *receiver
	run      string
	patients int
	match    int
}

// startHooks starts the receiver, creates the Subscriptions of f and
// waits for their handshakes. The receiver is returned (to be closed)
// also with an error, once started.
func startHooks(ctx context.Context, c *client, o options, f fanSpec) (*hooks, error) {
	rcv, err := startReceiver()
	if err != nil {
		return nil, err
	}
	m := max(1, f.match)
	h := &hooks{rcv: rcv, run: runID(), patients: max(1, f.subs/m), match: m}
	n := h.patients * m
	if _, err := createMany(ctx, c, "Subscription", n, o.Concurrency, func(i int) []byte {
		return topicSubscriptionMax(rcv.url, patientOf(h.run, i, h.patients), f.maxCount)
	}); err != nil {
		return h, err
	}
	if got := rcv.waitHandshakes(ctx, n, o.Drain+time.Duration(n)*time.Millisecond); got < n {
		return h, fmt.Errorf("%d of %d rest-hook handshakes arrived within %v", got, n, o.Drain+time.Duration(n)*time.Millisecond)
	}
	return h, nil
}

// fanStep is one write rate tried by fanout.
type fanStep struct {
	rate           float64
	ok             bool
	deliveries     float64 // notifications per second, first write → last arrival
	lag            latencies
	lost           int
	refused        int     // writes the server refused with Retry-After during the step
	cpuPerDelivery float64 // µs of server CPU (writes included) per notification
}

func fanoutStep(ctx context.Context, t target, o options, name string, c *client, rcv *receiver, run string, patients, m int, rate float64) (*fanStep, error) {
	tr := newTracker(name, m)
	rcv.track(tr)
	refused0 := c.refusals()
	cpu := startCPU(t.PID)
	ws := openLoop(ctx, c, "Observation", rate, o.FanoutStep, o.Workers, func(i int) []byte {
		return observation(patientOf(run, i, patients), i)
	})
	_, failed, firstErr := tally(ws)
	if failed > 0 {
		return nil, fmt.Errorf("%s at %.0f/s: %d writes failed: %v", name, rate, failed, firstErr)
	}
	complete := tr.waitComplete(ctx, ws, o.Drain)
	cpu.stop()
	oc := tr.outcome(ws)
	s := &fanStep{rate: rate, lag: oc.FromSend, lost: oc.Lost, refused: c.refusals() - refused0}
	if n := oc.Expected - oc.Lost; n > 0 && !oc.Last.IsZero() {
		s.deliveries = float64(n) / oc.Last.Sub(ws[0].Intended).Seconds()
		s.cpuPerDelivery = float64(cpu.Used) / float64(n) / float64(time.Microsecond)
	}
	// a rate the server pushed back on is not one it keeps pace with
	s.ok = complete && oc.Lost == 0 && oc.FromSend.P99 <= o.LagBound && s.refused == 0
	if !complete {
		// let the backlog drain (bounded) so the next step, if any, starts clean
		tr.waitComplete(ctx, ws, 3*o.Drain)
	}
	o.progress("%s step %.0f writes/s: kept pace %v, %.0f deliveries/s, lag p50 %.1f ms p99 %.1f ms, lost %d, refused %d\n",
		name, rate, s.ok, s.deliveries, ms(s.lag.P50), ms(s.lag.P99), s.lost, s.refused)
	return s, nil
}
