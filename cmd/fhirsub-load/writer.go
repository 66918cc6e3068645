package main

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// write is one POST the load client made.
type write struct {
	ID       string    // the new resource's id; "" unless acknowledged with 201
	Intended time.Time // when the schedule said to send it
	Acked    time.Time // when the answer arrived
	Status   int
	Err      error
}

// tally counts the acknowledged writes and the failures, keeping the
// first failure for the report.
func tally(ws []write) (acked, failed int, firstErr error) {
	for _, w := range ws {
		switch {
		case w.ID != "":
			acked++
		case w.Intended.IsZero(): // never sent (the run was cut short)
		default:
			failed++
			if firstErr == nil {
				firstErr = w.Err
			}
		}
	}
	return acked, failed, firstErr
}

// openLoop sends rate POSTs per second for d, each at its intended time
// whether or not earlier ones were answered, with up to workers in flight.
// A POST that waits for a free worker still has its latency measured from
// its intended time, so a stalled server cannot hide its stall
// (coordinated omission).
func openLoop(ctx context.Context, c *client, typ string, rate float64, d time.Duration, workers int, body func(i int) []byte) []write {
	n := max(1, int(rate*d.Seconds()))
	out := make([]write, n)
	jobs := make(chan int, n)
	var wg sync.WaitGroup
	for range max(1, workers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if ctx.Err() != nil {
					out[i].Err = ctx.Err()
					continue
				}
				id, st, err := c.create(ctx, typ, body(i))
				out[i].ID, out[i].Status, out[i].Err, out[i].Acked = id, st, err, time.Now()
			}
		}()
	}
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	for i := 0; i < n && ctx.Err() == nil; i++ {
		at := start.Add(time.Duration(i) * interval)
		if wait := time.Until(at); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
			}
		}
		out[i].Intended = at
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return out
}

// closedLoop runs conc clients that each POST back to back for d; it
// returns every write and the time from the first send to the last
// answer.
func closedLoop(ctx context.Context, c *client, typ string, conc int, d time.Duration, body func(i int) []byte) ([]write, time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, d+30*time.Second) // a stuck server cannot hold the run
	defer cancel()
	var mu sync.Mutex
	var all []write
	var seq atomic.Int64
	start := time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	for range max(1, conc) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []write
			for time.Now().Before(end) && ctx.Err() == nil {
				i := int(seq.Add(1)) - 1
				w := write{Intended: time.Now()}
				w.ID, w.Status, w.Err = c.create(ctx, typ, body(i))
				w.Acked = time.Now()
				mine = append(mine, w)
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return all, time.Since(start)
}

// postLatency is intended send → 201 of the acknowledged writes.
func postLatency(ws []write) latencies {
	var d []time.Duration
	for _, w := range ws {
		if w.ID != "" {
			d = append(d, w.Acked.Sub(w.Intended))
		}
	}
	return summarize(d)
}
