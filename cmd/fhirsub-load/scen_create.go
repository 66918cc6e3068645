package main

import (
	"context"
	"fmt"
	"time"
)

// target is the server under load: its base URL and, when known, its
// process id (for CPU and memory from /proc).
type target struct {
	Base string
	PID  int
}

// patientOf spreads writes over the given number of patients.
func patientOf(run string, i, patients int) string {
	return fmt.Sprintf("%s-p%d", run, i%max(1, patients))
}

// runID makes the resource keys of one run unique, so that runs against
// the same server do not see each other's notifications.
func runID() string { return fmt.Sprintf("load%x", time.Now().UnixNano()&0xffffffffff) }

// createOpen: Observations POSTed back to back by o.Concurrency clients
// for o.Duration: creates per second and server CPU per create.
func createOpen(ctx context.Context, t target, o options) (*result, error) {
	r := &result{Scenario: "create-open"}
	c := o.client(t, o.Concurrency)
	defer c.close()
	defer r.addRefused(c)
	run := runID()
	body := func(i int) []byte { return observation(patientOf(run, i, o.Patients), i) }
	if err := warmUp(ctx, c, o, body); err != nil {
		return r, err
	}
	cpu := startCPU(t.PID)
	ws, elapsed := closedLoop(ctx, c, "Observation", o.Concurrency, o.Duration, body)
	acked, failed, firstErr := tally(ws)
	r.add("creates/s", float64(acked)/elapsed.Seconds(), "", +1)
	cpu.addPer(r, "cpu/create", acked)
	l := postLatency(ws)
	r.add("post.p50", ms(l.P50), "ms", -1)
	r.add("post.p99", ms(l.P99), "ms", -1)
	return r, r.addWrites(acked, failed, firstErr)
}

// createRate: Observations POSTed at a steady o.Rate per second for
// o.Duration (open loop): POST latency from the intended send time, and
// server CPU per create at that rate.
func createRate(ctx context.Context, t target, o options) (*result, error) {
	r := &result{Scenario: "create-rate"}
	c := o.client(t, o.Workers)
	defer c.close()
	defer r.addRefused(c)
	run := runID()
	body := func(i int) []byte { return observation(patientOf(run, i, o.Patients), i) }
	if err := warmUp(ctx, c, o, body); err != nil {
		return r, err
	}
	cpu := startCPU(t.PID)
	ws := openLoop(ctx, c, "Observation", o.Rate, o.Duration, o.Workers, body)
	acked, failed, firstErr := tally(ws)
	r.add("rate", o.Rate, "/s", 0)
	r.addLatency("post", postLatency(ws))
	cpu.addPer(r, "cpu/create", acked)
	return r, r.addWrites(acked, failed, firstErr)
}

// warmUp writes for o.Warmup before a measurement, so that the
// connections, the server's caches and the store's first pages are not
// part of it.
func warmUp(ctx context.Context, c *client, o options, body func(i int) []byte) error {
	if o.Warmup <= 0 {
		return nil
	}
	ws, _ := closedLoop(ctx, c, "Observation", o.Concurrency, o.Warmup, func(i int) []byte { return body(1<<30 + i) })
	if acked, _, err := tally(ws); acked == 0 {
		return fmt.Errorf("warm-up: no write acknowledged: %v", err)
	}
	return nil
}
