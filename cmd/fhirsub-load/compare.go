package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// contender is one fhirsub executable under comparison.
type contender struct {
	name string // "base" or "current"
	path string
	desc string // what it was built from
}

// compareCmd builds or takes the binaries, runs every chosen scenario
// against a fresh server of each (alternating which goes first, so that
// a drift of the machine's load does not always favour the same one) and
// prints each figure for both with the ratio current/base.
func compareCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fhirsub-load compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	current := fs.String("current", "", "the fhirsub binary to measure (default: build ./cmd/fhirsub of the working tree)")
	baseRef := fs.String("base-ref", "", "git ref to build the baseline binary from (git archive into a temp dir)")
	baseBin := fs.String("base-bin", "", "a baseline binary already built (instead of -base-ref)")
	repeat := fs.Int("runs", 1, "runs of each scenario per binary (alternating which goes first); the table shows the median")
	o := registerOptions(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: fhirsub-load compare [flags] [SCENARIO...]   (default all)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if err := o.finish(fs, stderr); err != nil {
		return err
	}
	if !set["subs-count"] && !o.Quick {
		o.SubsCount = 20000 // a few minutes in all; -subs-count 100000 for the figure
	}
	if *repeat < 1 {
		return errors.New("-runs must be at least 1")
	}
	if *baseRef != "" && *baseBin != "" {
		return errors.New("give -base-ref or -base-bin, not both")
	}
	names := fs.Args()
	if len(names) == 0 {
		names = []string{"all"}
	}
	list, err := pick(names)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	tmp, err := os.MkdirTemp("", "fhirsub-bench-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(tmp) }()

	var bins []contender
	switch {
	case *baseRef != "":
		sha, err := buildRef(ctx, *baseRef, filepath.Join(tmp, "fhirsub-base"), stderr)
		if err != nil {
			return err
		}
		bins = append(bins, contender{"base", filepath.Join(tmp, "fhirsub-base"), *baseRef + " " + sha[:min(12, len(sha))]})
	case *baseBin != "":
		bins = append(bins, contender{"base", *baseBin, *baseBin})
	}
	cur := contender{"current", *current, *current}
	if cur.path == "" {
		cur.path, cur.desc = filepath.Join(tmp, "fhirsub-current"), "working tree"
		if err := goBuild(ctx, ".", cur.path, stderr); err != nil {
			return err
		}
	}
	bins = append(bins, cur)

	fmt.Fprintf(stdout, "fhirsub-load compare %s: %d CPUs, load average %s, %d run(s) per scenario and binary (table: median)\n",
		time.Now().UTC().Format(time.RFC3339), runtime.NumCPU(), loadAvg(), *repeat)
	for _, b := range bins {
		fmt.Fprintf(stdout, "  %-8s %s\n", b.name, b.desc)
	}
	runs := map[string]map[string][]*result{} // binary → scenario → one result per run
	var errs []error
	for i, s := range list {
		for k := range *repeat {
			order := bins
			if (i+k)%2 == 1 && len(bins) == 2 {
				order = []contender{bins[1], bins[0]}
			}
			for _, b := range order {
				r, err := runOn(ctx, s, b, filepath.Join(tmp, fmt.Sprintf("%s-%d-%d", b.name, i, k)), *o)
				if r != nil {
					fmt.Fprintf(stdout, "%-8s %s\n", b.name, r)
					if runs[b.name] == nil {
						runs[b.name] = map[string][]*result{}
					}
					runs[b.name][s.name] = append(runs[b.name][s.name], r)
				}
				if err != nil {
					err = fmt.Errorf("%s on %s: %w", s.name, b.name, err)
					fmt.Fprintln(stderr, err)
					errs = append(errs, err)
				}
			}
		}
	}
	results := map[string]map[string]*result{} // binary → scenario → median of the runs
	for b, byScenario := range runs {
		results[b] = map[string]*result{}
		for s, rs := range byScenario {
			results[b][s] = medianResult(rs)
		}
	}
	fmt.Fprintf(stdout, "load average after: %s\n", loadAvg())
	printTable(stdout, list, bins, results)
	return errors.Join(errs...)
}

// runOn starts a fresh server of b, runs s against it and stops it.
func runOn(ctx context.Context, s scenario, b contender, dir string, o options) (*result, error) {
	srv, err := startServer(ctx, b.path, dir)
	if err != nil {
		return nil, err
	}
	r, err := s.run(ctx, target{Base: srv.base, PID: srv.pid()}, o)
	if serr := srv.stop(); serr != nil && err == nil {
		err = serr
	}
	if err != nil {
		err = fmt.Errorf("%w\nserver log (tail):\n%s", err, srv.logTail(15))
	}
	return r, err
}

// medianResult is the median of each figure over the runs of one
// scenario on one binary (the lower middle value for an even count).
func medianResult(rs []*result) *result {
	if len(rs) == 1 {
		return rs[0]
	}
	m := &result{Scenario: rs[0].Scenario}
	var figs []figure
	for _, r := range rs {
		figs = figureNames(&result{Figures: figs}, r)
	}
	for _, f := range figs {
		var vals []float64
		for _, r := range rs {
			if v, ok := r.get(f.Name); ok {
				vals = append(vals, v)
			}
		}
		slices.Sort(vals)
		f.Value = vals[(len(vals)-1)/2]
		m.Figures = append(m.Figures, f)
	}
	for _, r := range rs {
		for _, n := range r.Notes {
			if !slices.Contains(m.Notes, n) {
				m.Notes = append(m.Notes, n)
			}
		}
	}
	return m
}

// printTable prints every figure of the current binary's results, with
// the base's and the ratio current/base when there is a base.
func printTable(w io.Writer, list []scenario, bins []contender, results map[string]map[string]*result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	withBase := len(bins) == 2
	if withBase {
		fmt.Fprintln(tw, "scenario\tfigure\tbase\tcurrent\tcurrent/base\tbetter\t")
	} else {
		fmt.Fprintln(tw, "scenario\tfigure\tcurrent\t")
	}
	for _, s := range list {
		cur, base := results["current"][s.name], results["base"][s.name]
		for _, f := range figureNames(cur, base) {
			c, cok := cur.getOK(f.Name)
			if !withBase {
				fmt.Fprintf(tw, "%s\t%s\t%s\t\n", s.name, f.Name, cell(c, f.Unit, cok))
				continue
			}
			b, bok := base.getOK(f.Name)
			ratio := ""
			if cok && bok && b != 0 && f.Better != 0 {
				ratio = fmt.Sprintf("%.2f", c/b)
			}
			better := map[int]string{1: "higher", -1: "lower"}[f.Better]
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", s.name, f.Name, cell(b, f.Unit, bok), cell(c, f.Unit, cok), ratio, better)
		}
	}
	_ = tw.Flush()
}

// figureNames lists the figures of both results, those of a first in
// its order, then those only b has.
func figureNames(a, b *result) []figure {
	var out []figure
	seen := map[string]bool{}
	for _, r := range []*result{a, b} {
		if r == nil {
			continue
		}
		for _, f := range r.Figures {
			if !seen[f.Name] {
				seen[f.Name] = true
				out = append(out, f)
			}
		}
	}
	return out
}

// getOK is get on a result that may be nil.
func (r *result) getOK(name string) (float64, bool) {
	if r == nil {
		return 0, false
	}
	return r.get(name)
}

func cell(v float64, unit string, ok bool) string {
	if !ok {
		return "-"
	}
	return num(v) + unit
}

// loadAvg is the first three fields of /proc/loadavg, a hint of how much
// else the machine was doing.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// goBuild builds ./cmd/fhirsub of the module at dir into out.
func goBuild(ctx context.Context, dir, out string, log io.Writer) error {
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, "./cmd/fhirsub")
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build in %s: %w\n%s", dir, err, b)
	}
	fmt.Fprintf(log, "built %s in %v\n", out, time.Since(start).Round(100*time.Millisecond))
	return nil
}

// buildRef builds the fhirsub of a git ref into out. The ref's tree is
// extracted with git archive into a temp dir (removed afterwards), which
// leaves the repository and its worktree list untouched; it returns the
// commit built.
func buildRef(ctx context.Context, ref, out string, log io.Writer) (string, error) {
	top, err := exec.CommandContext(ctx, "git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return "", fmt.Errorf("git: not in a checkout: %w", err)
	}
	revOut, err := exec.CommandContext(ctx, "git", "rev-parse", "--verify", "--end-of-options", ref+"^{commit}").Output()
	if err != nil {
		return "", fmt.Errorf("git ref %q: %w", ref, err)
	}
	sha := strings.TrimSpace(string(revOut))
	src, err := os.MkdirTemp("", "fhirsub-base-src-")
	if err != nil {
		return "", err
	}
	defer func() { _ = os.RemoveAll(src) }()
	// from the top: in a subdirectory git archive takes only that subtree
	archive := exec.CommandContext(ctx, "git", "archive", "--format=tar", sha)
	archive.Dir = strings.TrimSpace(string(top))
	untar := exec.CommandContext(ctx, "tar", "-x", "-C", src)
	var aerr, terr bytes.Buffer
	archive.Stderr, untar.Stderr = &aerr, &terr
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return "", err
	}
	untar.Stdin = pipe
	if err := untar.Start(); err != nil {
		return "", err
	}
	if err := archive.Run(); err != nil {
		_ = untar.Wait()
		return "", fmt.Errorf("git archive %s: %w: %s", sha, err, aerr.String())
	}
	if err := untar.Wait(); err != nil {
		return "", fmt.Errorf("tar: %w: %s", err, terr.String())
	}
	return sha, goBuild(ctx, src, out, log)
}
