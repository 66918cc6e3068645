package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The scenarios, tiny, against the real fhirsub binary started the way
// compare starts it, so that the instrument does not rot: every figure
// is computed and nothing acknowledged is lost.

var built struct {
	once sync.Once
	path string
	err  error
}

// fhirsubBinary builds ./cmd/fhirsub of this module once per test run.
func fhirsubBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: this test builds the fhirsub binary and puts it under load for a few seconds")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skipf("the go command is not on PATH, cannot build the server: %v", err)
	}
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "fhirsub-load-test-")
		if err != nil {
			built.err = err
			return
		}
		built.path = filepath.Join(dir, "fhirsub")
		built.err = goBuild(context.Background(), "../..", built.path, os.Stderr)
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

func TestMain(m *testing.M) {
	// the starve scenario re-executes this binary as its burners
	if len(os.Args) > 1 && os.Args[1] == "burn" {
		if err := burnCmd(os.Args[2:], os.Stdin, os.Stderr); err != nil {
			os.Exit(2)
		}
		os.Exit(0)
	}
	code := m.Run()
	if built.path != "" {
		_ = os.RemoveAll(filepath.Dir(built.path))
	}
	os.Exit(code)
}

// tinyOptions are sizes a loaded 2-core machine runs in seconds, with
// generous waits: lateness shows in the figures, not as a failure.
func tinyOptions(t *testing.T) options {
	t.Helper()
	fs := newFlagSet()
	o := registerOptions(fs)
	err := fs.Parse([]string{"-duration", "1s", "-rate", "50", "-subscribers", "20", "-matching", "2",
		"-drain", "30s", "-fanout-subs", "60", "-fanout-match", "5", "-fanout-rate", "20", "-fanout-step", "1s",
		"-lag-bound", "30s", "-subs-count", "100", "-workers", "16", "-resthook-subs", "20", "-resthook-rate", "10",
		"-starve-subs", "5", "-starve-rate", "50", "-starve-duration", "1s"})
	if err == nil {
		err = o.finish(fs, testWriter{t})
	}
	if err != nil {
		t.Fatal(err)
	}
	return *o
}

// testWriter sends progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestScenariosAgainstTheBinary(t *testing.T) {
	bin := fhirsubBinary(t)
	o := tinyOptions(t)
	// each scenario: the figures that must be there, positive
	want := map[string][]string{
		"create-open": {"creates/s", "cpu/create", "post.p99"},
		"create-rate": {"post.p50", "post.p99", "cpu/create"},
		"e2e":         {"resthook.p50", "resthook.p99", "backport.p99", "legacy/ws.p99", "legacy/ws.p99-from-201"},
		"fanout":      {"kept-pace.writes/s", "deliveries/s", "lag.p99", "cpu/delivery"},
		"subs":        {"created/s", "rss/sub"},
		"resthook":    {"kept-pace.writes/s", "deliveries/s", "cpu/delivery"},
		"starve":      {"accepted", "burners", "lag.p50", "lag.p99", "post.p99"},
	}
	zero := map[string][]string{
		"create-open": {"errors"},
		"create-rate": {"errors"},
		"e2e":         {"errors", "lost", "resthook.lost", "backport.lost", "legacy/ws.lost"},
		"fanout":      {"lost"},
		"resthook":    {"lost"},
		"starve":      {"lost", "errors"},
	}
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			r, err := runOn(ctx, s, contender{"current", bin, "test"}, t.TempDir(), o)
			if r != nil {
				t.Logf("%s", r)
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range want[s.name] {
				if v, ok := r.get(name); !ok || v <= 0 {
					t.Errorf("figure %s: %v (present %v), want a positive value", name, v, ok)
				}
			}
			// every scenario says whether the server pushed back
			for _, name := range append(zero[s.name], "refused") {
				if v, ok := r.get(name); !ok || v != 0 {
					t.Errorf("figure %s: %v (present %v), want 0", name, v, ok)
				}
			}
		})
	}
}

// TestCompare runs the driver as make bench-e2e does, with a baseline
// built from the git HEAD, on the shortest scenario.
func TestCompare(t *testing.T) {
	bin := fhirsubBinary(t)
	if out, err := exec.Command("git", "rev-parse", "--verify", "HEAD^{commit}").CombinedOutput(); err != nil {
		t.Skipf("not in a git checkout with a HEAD commit, cannot build a baseline: %v %s", err, out)
	}
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"compare", "-current", bin, "-base-ref", "HEAD",
		"-duration", "1s", "-timeout", "5m", "create-open"}, &stdout, &stderr)
	t.Logf("stdout:\n%s\nstderr:\n%s", &stdout, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	out := stdout.String()
	for _, s := range []string{"base     create-open: creates/s=", "current  create-open: creates/s=", "current/base", "HEAD "} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q", s)
		}
	}
	var ratio bool
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 6 && f[0] == "create-open" && f[1] == "creates/s" && f[5] == "higher" {
			ratio = true
		}
	}
	if !ratio {
		t.Errorf("no table row with base, current and the ratio of creates/s")
	}
}
