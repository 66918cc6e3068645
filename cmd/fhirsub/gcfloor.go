package main

import (
	"log/slog"
	"runtime"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"sync"
)

// The garbage collector's heap floor.
//
// With GOGC=100 Go collects whenever the heap has grown by as much as was
// live after the last collection. The server's live heap is small (about
// 25 MB at 1,000 writes/s with 1,000 subscriptions) while it allocates
// tens of MB per second, so it collected several times a second; each
// collection takes CPU from the writes and notifications that wait for
// it on a small machine, and the p99 of the e2e load was mostly those
// waits. The figures are in cmd/fhirsub-load/PROFILE.md.
//
// The floor lets the heap grow by at least floor bytes before the next
// collection: after each collection GOGC is set to floor/base (in
// percent, gcFloorPercent), never below 100. A live heap larger than the
// floor keeps Go's own GOGC=100, so a large server (100,000
// subscriptions) collects as before; a small one holds up to floor bytes
// more of garbage not yet collected.

// gcMinimumBase is the base below which Go's goal does not go: it never
// sets a goal under 4 MiB × GOGC/100 (the runtime's heapMinimum).
const gcMinimumBase = 4 << 20

// gcFloorPercent is the GOGC that lets the heap grow by floor bytes
// before the next collection. Go's goal is the heap marked live plus
// GOGC percent of base (that heap with the goroutine stacks and the
// globals), and at least 4 MiB × GOGC/100, so the percent is floor/base
// with base at least 4 MiB; never below 100 (Go's default) or above
// 1,000,000. A base of 0 (no collection yet) gives 100.
func gcFloorPercent(floor, base uint64) int {
	if base == 0 {
		return 100
	}
	base = max(base, gcMinimumBase)
	p := floor/base*100 + floor%base*100/base
	return int(min(max(p, 100), 1_000_000))
}

// gcFloor keeps GOGC at gcFloorPercent of the live heap, re-set after every
// collection. Its goroutine waits for a collection, not a timer: an idle
// server wakes it only when it collects.
type gcFloor struct {
	floor  uint64
	wake   chan struct{} // a collection ended (buffered 1)
	stop   chan struct{}
	done   chan struct{}
	before int // GOGC when the floor started, restored on stop

	// owned by run once it started
	cleanup runtime.Cleanup // the sentinel's, stopped on stop
	percent int             // the GOGC last set
}

// gcFloorRunning lets one floor run per process: GOGC is the process's.
var gcFloorRunning sync.Mutex

// startGCFloor starts a floor of floorMiB MiB (at most 1 TiB) and returns
// the function that stops it and restores GOGC. It does nothing when
// floorMiB is 0, when gogc (the GOGC environment variable) is set, or
// when a floor already runs in this process.
func startGCFloor(floorMiB int, gogc string, log *slog.Logger) (stop func()) {
	if floorMiB <= 0 || gogc != "" {
		if floorMiB > 0 {
			log.Info("GOGC is set; the garbage collector's heap floor is off", "GOGC", gogc)
		}
		return func() {}
	}
	if !gcFloorRunning.TryLock() {
		return func() {}
	}
	g := &gcFloor{floor: uint64(min(floorMiB, 1<<20)) << 20, wake: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{})}
	g.before = debug.SetGCPercent(100)
	g.percent = 100
	g.adjust()
	g.arm()
	go g.run()
	return func() {
		close(g.stop)
		<-g.done // run has returned: its fields are ours again
		g.cleanup.Stop()
		debug.SetGCPercent(g.before)
		gcFloorRunning.Unlock()
	}
}

// gcSentinel is an object dropped at once so that its cleanup runs after
// the next collection. It is larger than 16 bytes: a tiny allocation may
// share its block with others and never be collected.
type gcSentinel struct{ _ [32]byte }

// arm drops a new sentinel whose cleanup wakes run.
func (g *gcFloor) arm() {
	g.cleanup = runtime.AddCleanup(new(gcSentinel), func(wake chan struct{}) {
		select {
		case wake <- struct{}{}:
		default:
		}
	}, g.wake)
}

func (g *gcFloor) run() {
	defer close(g.done)
	for {
		select {
		case <-g.stop:
			return
		case <-g.wake:
		}
		g.arm()
		g.adjust()
	}
}

// adjust sets GOGC for the live heap the last collection found.
func (g *gcFloor) adjust() {
	p := gcFloorPercent(g.floor, gcBase())
	if p == g.percent {
		return
	}
	debug.SetGCPercent(p)
	g.percent = p
}

// gcBase is the base of the runtime's last goal: the heap marked live, the
// goroutine stacks and the globals; 0 before the first collection.
func gcBase() uint64 {
	s := []rtmetrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}
	rtmetrics.Read(s)
	var base uint64
	for _, v := range s {
		if v.Value.Kind() != rtmetrics.KindUint64 {
			return 0
		}
		base += v.Value.Uint64()
	}
	if s[0].Value.Uint64() == 0 {
		return 0 // no collection yet
	}
	return base
}
