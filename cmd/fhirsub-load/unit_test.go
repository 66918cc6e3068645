package main

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	l := summarize(d)
	t.Logf("%+v", l)
	if l.N != 100 || l.P50 != 50*time.Millisecond || l.P99 != 99*time.Millisecond || l.Max != 100*time.Millisecond {
		t.Errorf("summarize 1..100 ms: %+v", l)
	}
	if l := summarize(nil); l.N != 0 {
		t.Errorf("empty sample: %+v", l)
	}
	for v, want := range map[float64]string{1486.26: "1486", 36.62: "36.6", 1.234: "1.23", 0.1234: "0.123", 0: "0", 12: "12"} {
		if got := num(v); got != want {
			t.Errorf("num(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestParseNotice(t *testing.T) {
	raw, err := os.ReadFile("../../subscriptions/testdata/event-id-only.golden.json")
	if err != nil {
		t.Fatal(err)
	}
	n, err := parseNotice(raw)
	t.Logf("%+v %v", n, err)
	if err != nil || n.Sub != "s1" || n.Type != "event-notification" || len(n.IDs) != 1 || n.IDs[0] != "o1" {
		t.Errorf("parseNotice: %+v, %v; want s1 event-notification [o1]", n, err)
	}
	for _, bad := range []string{``, `{}`, `{"resourceType":"Bundle","entry":[]}`, `[1]`,
		`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Parameters","parameter":[]}}]}`} {
		if _, err := parseNotice([]byte(bad)); err == nil {
			t.Errorf("parseNotice(%q) accepted", bad)
		}
	}
}

func TestProcReadings(t *testing.T) {
	pid := os.Getpid()
	c0, err := cpuTime(pid)
	if err != nil {
		t.Skipf("no /proc/<pid>/stat on this system: %v", err)
	}
	// spin until 50 ms of CPU show (a loaded machine gives less than the wall time)
	start := time.Now()
	c1 := c0
	for c1-c0 < 50*time.Millisecond && time.Since(start) < 20*time.Second && err == nil {
		for s := time.Now(); time.Since(s) < 10*time.Millisecond; {
		}
		c1, err = cpuTime(pid)
	}
	rss, rerr := rssBytes(pid)
	t.Logf("clock ticks %v/s, CPU %v → %v in %v, RSS %d", clockTicks, c0, c1, time.Since(start), rss)
	if err != nil || rerr != nil || c1-c0 < 50*time.Millisecond || c1-c0 > time.Since(start)*4 || rss < 1<<20 {
		t.Errorf("spinning for %v read as %v of CPU (%v); RSS %d (%v)", time.Since(start), c1-c0, err, rss, rerr)
	}
	if _, err := cpuTime(-1); err == nil {
		t.Error("cpuTime of no process: no error")
	}
}

func TestCheckLoopback(t *testing.T) {
	for _, ok := range []string{"http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:80/", "http://127.0.0.2:9"} {
		if err := checkLoopback(ok); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"http://10.0.0.1:8080", "http://example.org", "https://127.0.0.1", "127.0.0.1:80", ""} {
		if err := checkLoopback(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestTracker(t *testing.T) {
	t0 := time.Now()
	ws := []write{
		{ID: "a", Intended: t0, Acked: t0.Add(time.Millisecond)},
		{ID: "b", Intended: t0, Acked: t0.Add(time.Millisecond)},
		{Intended: t0, Status: 500}, // not acknowledged: expects nothing
	}
	tr := newTracker("x", 2)
	tr.arrive("a", t0.Add(3*time.Millisecond))
	tr.arrive("zz", t0) // stray
	if tr.waitComplete(context.Background(), ws, 10*time.Millisecond) {
		t.Fatal("complete with one notification of two for a and none for b")
	}
	tr.arrive("a", t0.Add(5*time.Millisecond))
	tr.arrive("a", t0.Add(6*time.Millisecond)) // duplicate
	tr.arrive("b", t0.Add(4*time.Millisecond))
	o := tr.outcome(ws)
	t.Logf("%+v", o)
	if o.Expected != 4 || o.Lost != 1 || o.Dups != 1 || o.Stray != 1 || o.FromSend.N != 3 || o.FromSend.Max != 5*time.Millisecond {
		t.Errorf("outcome %+v: want 4 expected, 1 lost, 1 dup, 1 stray, 3 samples, max 5ms", o)
	}
	tr.arrive("b", t0.Add(7*time.Millisecond))
	if !tr.waitComplete(context.Background(), ws, time.Second) {
		t.Error("not complete with two notifications each")
	}
}

func TestFlagsAndScenarioNames(t *testing.T) {
	if _, err := pick([]string{"e2e,subs", "all"}); err != nil {
		t.Error(err)
	}
	for _, bad := range [][]string{nil, {"nope"}, {"e2e,"}} {
		if _, err := pick(bad); err == nil {
			t.Errorf("pick(%q) accepted", bad)
		}
	}
	for _, args := range [][]string{{"-url", "http://192.0.2.1:8080", "e2e"}, {"-rate", "0", "e2e"},
		{"-subs-channel", "email", "subs"}, {"-legacy", "ws", "e2e"}, {"nope"}} {
		err := run(context.Background(), args, io.Discard, io.Discard)
		t.Logf("%q: %v", args, err)
		if err == nil || strings.Contains(err.Error(), "connection refused") {
			t.Errorf("%q: want a flag error before any connection, got %v", args, err)
		}
	}
	fs := newFlagSet()
	o := registerOptions(fs)
	if err := fs.Parse([]string{"-quick", "-rate", "77"}); err != nil {
		t.Fatal(err)
	}
	if err := o.finish(fs, io.Discard); err != nil {
		t.Fatal(err)
	}
	if o.Rate != 77 || o.Duration != 2*time.Second || o.SubsCount != 1000 || len(o.LegacyPaths) != 2 {
		t.Errorf("-quick -rate 77: %+v", o)
	}
}

func TestMedianResult(t *testing.T) {
	mk := func(v float64, extra bool) *result {
		r := &result{Scenario: "x"}
		r.add("a", v, "ms", -1)
		if extra {
			r.add("b", v*2, "", +1)
			r.note("only here")
		}
		return r
	}
	m := medianResult([]*result{mk(3, false), mk(1, true), mk(2, true)})
	t.Logf("%s", m)
	if a, _ := m.get("a"); a != 2 {
		t.Errorf("median of a over 3, 1, 2: %v, want 2", a)
	}
	if b, ok := m.get("b"); !ok || b != 2 { // values 2 and 4: the lower middle
		t.Errorf("median of b over 2, 4: %v %v, want 2", b, ok)
	}
	if len(m.Notes) != 1 {
		t.Errorf("notes %q, want the one note once", m.Notes)
	}
}
