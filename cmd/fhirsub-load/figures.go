package main

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// figure is one number a scenario computed from what the client was told:
// acknowledged writes, received notifications, /proc readings of the
// server process.
type figure struct {
	Name  string  // e.g. "creates/s", "resthook.p99"
	Value float64 // in Unit
	Unit  string  // "ms", "µs", "KB", "/s" or "" for counts
	// Better is +1 when a larger value is better, -1 when a smaller one
	// is, 0 for counts (lost, errors) whose ratio means nothing.
	Better int
}

// result is the outcome of one scenario run: its figures in print order
// and notes that qualify them (e.g. why a figure is missing).
type result struct {
	Scenario string
	Figures  []figure
	Notes    []string
}

func (r *result) add(name string, v float64, unit string, better int) {
	r.Figures = append(r.Figures, figure{Name: name, Value: v, Unit: unit, Better: better})
}

func (r *result) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// get returns the value of the named figure.
func (r *result) get(name string) (float64, bool) {
	for _, f := range r.Figures {
		if f.Name == name {
			return f.Value, true
		}
	}
	return 0, false
}

// String is the scenario's one figure line.
func (r *result) String() string {
	var b strings.Builder
	b.WriteString(r.Scenario)
	b.WriteString(":")
	for _, f := range r.Figures {
		fmt.Fprintf(&b, " %s=%s%s", f.Name, num(f.Value), f.Unit)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, " [%s]", n)
	}
	return b.String()
}

// num prints a figure with about three significant digits and no
// exponent.
func num(v float64) string {
	a := math.Abs(v)
	switch {
	case v == math.Trunc(v) && a < 1e15:
		return fmt.Sprintf("%.0f", v)
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

// ms converts a duration to milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// latencies summarises a sample of durations: nearest-rank percentiles.
type latencies struct {
	N             int
	P50, P99, Max time.Duration
}

func summarize(d []time.Duration) latencies {
	if len(d) == 0 {
		return latencies{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	rank := func(p float64) time.Duration {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return latencies{N: len(s), P50: rank(0.50), P99: rank(0.99), Max: s[len(s)-1]}
}

// addLatency adds prefix.p50, prefix.p99 and prefix.max in ms; with no
// sample it adds nothing and notes why.
func (r *result) addLatency(prefix string, l latencies) {
	if l.N == 0 {
		r.note("%s: no sample", prefix)
		return
	}
	r.add(prefix+".p50", ms(l.P50), "ms", -1)
	r.add(prefix+".p99", ms(l.P99), "ms", -1)
	r.add(prefix+".max", ms(l.Max), "ms", -1)
}

// addRefused adds how many times the server refused a write of c with
// 503 or 429 and Retry-After (backpressure). Every scenario adds it, even
// when it fails, so that a scenario cannot pass under backpressure
// without saying so: scenarios call it deferred, right after making c.
func (r *result) addRefused(c *client) {
	r.add("refused", float64(c.refusals()), "", 0)
}

// addWrites adds the tally of a scenario's writes (n acknowledged, errors)
// and notes the first error; it returns an error when no write was
// acknowledged, since no figure of the scenario then means anything.
func (r *result) addWrites(acked, failed int, firstErr error) error {
	r.add("n", float64(acked), "", 0)
	r.add("errors", float64(failed), "", 0)
	if firstErr != nil {
		r.note("first error: %v", firstErr)
	}
	if acked == 0 {
		return errors.Join(fmt.Errorf("%s: no write acknowledged", r.Scenario), firstErr)
	}
	return nil
}
