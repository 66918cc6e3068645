package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// starve: o.StarveSubs rest-hook Subscriptions all matching every write;
// then o.Burners processes (default one per core) keep every core busy
// while writes are sent at a steady o.StarveRate for o.StarveDuration.
// Under starvation the server must signal (refuse writes with Retry-After,
// or slow them) rather than fall seconds behind silently. Figures: writes
// accepted and refused, POST latency, notification lag at the receiver
// (POST sent → notification received) and lost, and the highest
// fhirsub_notification_lag_seconds the server's /metrics showed during
// the run, per channel.
func starve(ctx context.Context, t target, o options) (*result, error) {
	r := &result{Scenario: "starve"}
	c := o.client(t, max(o.Workers, o.Concurrency))
	defer c.close()
	defer r.addRefused(c)
	h, err := startHooks(ctx, c, o, fanSpec{name: "starve", subs: o.StarveSubs, match: o.StarveSubs})
	if h != nil {
		defer h.rcv.close()
	}
	if err != nil {
		return r, err
	}
	n := o.Burners
	if n <= 0 {
		n = runtime.NumCPU()
	}
	r.add("subs", float64(o.StarveSubs), "", 0)
	r.add("burners", float64(n), "", 0)
	r.add("rate", o.StarveRate, "/s", 0)
	tr := newTracker("starve", h.match)
	h.rcv.track(tr)

	pollCtx, stopPoll := context.WithCancel(ctx)
	lagMax := make(map[string]float64)
	var pollErr error
	var pollWG sync.WaitGroup
	pollWG.Add(1)
	go func() {
		defer pollWG.Done()
		pollErr = pollLag(pollCtx, c, lagMax)
	}()

	// the burners live for the writes plus a margin, and are stopped as
	// soon as the writes end
	b, err := startBurners(n, o.StarveDuration+time.Minute)
	if err != nil {
		stopPoll()
		pollWG.Wait()
		return r, err
	}
	ws := openLoop(ctx, c, "Observation", o.StarveRate, o.StarveDuration, o.Workers, func(i int) []byte {
		return observation(patientOf(h.run, 0, h.patients), i)
	})
	b.stop()
	acked, failed, firstErr := tally(ws)
	tr.waitComplete(ctx, ws, o.Drain)
	stopPoll()
	pollWG.Wait()

	oc := tr.outcome(ws)
	r.add("accepted", float64(acked), "", 0)
	r.addLatency("post", postLatency(ws))
	r.addLatency("lag", oc.FromSend)
	if oc.FromAck.N > 0 {
		// without the waits of refused writes: the server's own delay
		r.add("lag.p99-from-201", ms(oc.FromAck.P99), "ms", -1)
	}
	r.add("lost", float64(oc.Lost), "", 0)
	if len(lagMax) == 0 {
		r.note("no fhirsub_notification_lag_seconds on /metrics: %v", pollErr)
	}
	var all float64
	for _, ch := range []string{"matcher", "rest-hook", "websocket"} {
		if v, ok := lagMax[ch]; ok {
			r.add("server-lag."+ch+".max", v*1000, "ms", -1)
			all = max(all, v)
		}
	}
	if len(lagMax) > 0 {
		r.add("server-lag.max", all*1000, "ms", -1)
	}
	return r, r.addWrites(acked, failed, firstErr)
}

// lagMetric is the gauge starve reads from /metrics.
const lagMetric = "fhirsub_notification_lag_seconds"

// pollLag reads the server's /metrics every 200 ms until ctx ends and
// keeps the highest value of each channel's notification lag in lagMax
// (seconds). It returns the last error of a scrape, if any.
func pollLag(ctx context.Context, c *client, lagMax map[string]float64) error {
	var last error
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := scrapeLag(ctx, c, lagMax); err != nil && ctx.Err() == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return last
		case <-tick.C:
		}
	}
}

// scrapeLag reads /metrics once into lagMax.
func scrapeLag(ctx context.Context, c *client, lagMax map[string]float64) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/metrics", nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /metrics: status %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		ch, v, ok := parseLagLine(sc.Text())
		if ok {
			lagMax[ch] = max(lagMax[ch], v)
		}
	}
	return sc.Err()
}

// parseLagLine reads one line of the text exposition format such as
// fhirsub_notification_lag_seconds{channel="matcher"} 0.25.
func parseLagLine(line string) (channel string, v float64, ok bool) {
	rest, found := strings.CutPrefix(line, lagMetric+`{channel="`)
	if !found {
		return "", 0, false
	}
	channel, rest, found = strings.Cut(rest, `"} `)
	if !found {
		return "", 0, false
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
	if err != nil {
		return "", 0, false
	}
	return channel, v, true
}
