package main

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	rtmetrics "runtime/metrics"
	"testing"
	"time"
)

func TestGCFloorPercent(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		floor, base uint64
		want        int
	}{
		{128 * mib, 0, 100},           // no collection yet
		{128 * mib, 1 * mib, 3200},    // Go's 4 MiB minimum, not 1 MiB
		{128 * mib, 16 * mib, 800},    // 16 + 128 MiB
		{128 * mib, 64 * mib, 200},    // 64 + 128 MiB
		{128 * mib, 100 * mib, 128},   // 100 + 128 MiB
		{128 * mib, 200 * mib, 100},   // Go's default: 200 + 200 MiB
		{0, 16 * mib, 100},            // no floor
		{128*mib + 1, 3 * mib, 3200},  // rounded down
		{10 * mib, 3 * mib, 250},      // 4 + 10 MiB
		{100 * mib, 30 * mib, 333},    // 30 + 100 MiB, rounded down
		{100 * mib, 30*mib + 1, 333},  // 30 MiB and a byte
		{100 * mib, 101 * mib, 100},   // a floor under the live heap
		{100 * mib, 1 << 40, 100},     // a terabyte live
		{1 << 40, 1 << 30, 102_400},   // a terabyte of floor
		{1 << 62, 4 * mib, 1_000_000}, // bounded
		{5 * mib, 4 * mib, 125},       // 4 + 5 MiB
		{4 * mib, 4 * mib, 100},       // exactly Go's default
	} {
		if got := gcFloorPercent(tc.floor, tc.base); got != tc.want {
			t.Errorf("gcFloorPercent(%d, %d) = %d, want %d", tc.floor, tc.base, got, tc.want)
		}
	}
}

// gogc reads the GOGC in force.
func gogc() int {
	s := []rtmetrics.Sample{{Name: "/gc/gogc:percent"}}
	rtmetrics.Read(s)
	return int(s[0].Value.Uint64())
}

// collectUntil runs collections until cond holds (the floor's goroutine
// sets GOGC a moment after a collection ends) and reports whether it did
// within 10s.
func collectUntil(cond func() bool) bool {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		runtime.GC()
		for range 50 {
			if cond() {
				return true
			}
			time.Sleep(time.Millisecond)
		}
	}
	return cond()
}

// TestGCFloorFollowsTheLiveHeap: after each collection GOGC is set for the
// live heap found (above 100 while it is small, 100 once it is larger
// than the floor), and stop restores what was set before.
func TestGCFloorFollowsTheLiveHeap(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	const floor = 64 << 20
	before := gogc() // 100 unless GOGC is set for the test
	stop := startGCFloor(floor>>20, "", log)
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()

	if !collectUntil(func() bool { return gogc() > 100 && gogc() == gcFloorPercent(floor, gcBase()) }) {
		t.Fatalf("GOGC %d with a base of %d bytes, want %d", gogc(), gcBase(), gcFloorPercent(floor, gcBase()))
	}
	// A second floor in the same process does nothing, and its stop
	// neither.
	small := gogc()
	startGCFloor(16, "", log)()
	if got := gogc(); got != small {
		t.Errorf("a second floor changed GOGC from %d to %d", small, got)
	}

	// A live heap larger than the floor: Go's default.
	big := make([]*[1 << 20]byte, 96)
	for i := range big {
		big[i] = new([1 << 20]byte)
	}
	if !collectUntil(func() bool { return gogc() == 100 }) {
		t.Errorf("GOGC %d with %d bytes live, want 100", gogc(), gcBase())
	}
	runtime.KeepAlive(big)
	big = nil
	if !collectUntil(func() bool { return gogc() > 100 }) {
		t.Errorf("GOGC %d after the large heap was dropped, want more than 100", gogc())
	}

	stop()
	stopped = true
	if got := gogc(); got != before {
		t.Errorf("GOGC %d after stop, want %d again", got, before)
	}
	runtime.GC()
	if got := gogc(); got != before {
		t.Errorf("GOGC %d after a collection with the floor stopped, want %d", got, before)
	}
}

// TestGCFloorOffWhenGOGCIsSet: an operator's GOGC (or a floor of 0) leaves
// GOGC alone.
func TestGCFloorOffWhenGOGCIsSet(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	before := gogc()
	for _, tc := range []struct {
		floorMiB int
		gogc     string
	}{{64, "200"}, {64, "off"}, {0, ""}} {
		stop := startGCFloor(tc.floorMiB, tc.gogc, log)
		runtime.GC()
		if got := gogc(); got != before {
			t.Errorf("floor %d MiB, GOGC=%q: GOGC became %d", tc.floorMiB, tc.gogc, got)
		}
		stop()
	}
}

// TestGCFloorInTheBinary: the server as shipped raises GOGC over 100 once
// it has collected (its live heap is far below the default floor of 128
// MiB), and with --gc-floor-mb 0 GOGC is still 100 after collections made
// while it served.
func TestGCFloorInTheBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the fhirsub binary (skipped under -short)")
	}
	const cycles = "go_gc_duration_seconds_count"
	for _, tc := range []struct {
		args []string
		done func(m map[string]float64, start float64) bool
		says string
	}{
		{[]string{"--log-level", "error"},
			func(m map[string]float64, _ float64) bool { return m["go_gc_gogc_percent"] > 100 },
			"more than 100"},
		{[]string{"--log-level", "error", "--gc-floor-mb", "0"},
			func(m map[string]float64, start float64) bool {
				return m[cycles] > start && m["go_gc_gogc_percent"] == 100
			}, "100 after a collection"},
	} {
		srv := startServerProc(t, tc.args...)
		start := scrapeURL(t, srv.base+"/metrics")[cycles]
		var m map[string]float64
		deadline := time.Now().Add(60 * time.Second)
		for i := 0; ; i++ {
			m = scrapeURL(t, srv.base+"/metrics")
			if tc.done(m, start) || time.Now().After(deadline) {
				break
			}
			// writes make garbage, and so collections
			for j := range 20 {
				mustFHIR(t, http.StatusCreated, "POST", srv.base+"/Observation",
					criticalObservation(fmt.Sprintf("gc-%d", j%10), loincPotassium, "gc"))
			}
		}
		t.Logf("%v: %.0f collections (%.0f when first read), GOGC %.0f", tc.args, m[cycles], start, m["go_gc_gogc_percent"])
		if !tc.done(m, start) {
			t.Errorf("%v: GOGC %.0f after %.0f collections (%.0f when first read), want %s",
				tc.args, m["go_gc_gogc_percent"], m[cycles], start, tc.says)
		}
		srv.stop()
	}
}
