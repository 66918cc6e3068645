package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// scenario is one kind of load with its figures.
type scenario struct {
	name string
	run  func(context.Context, target, options) (*result, error)
}

var scenarios = []scenario{
	{"create-open", createOpen},
	{"create-rate", createRate},
	{"e2e", e2e},
	{"fanout", fanout},
	{"subs", subs},
	{"resthook", resthook},
	{"starve", starve},
}

// pick returns the named scenarios ("all" for every one).
func pick(names []string) ([]scenario, error) {
	if len(names) == 0 {
		return nil, errors.New("name at least one scenario (create-open, create-rate, e2e, fanout, subs, resthook, starve or all)")
	}
	var out []scenario
	for _, n := range names {
		for _, part := range strings.Split(n, ",") {
			if part == "all" {
				out = append(out, scenarios...)
				continue
			}
			found := false
			for _, s := range scenarios {
				if s.name == part {
					out, found = append(out, s), true
				}
			}
			if !found {
				return nil, fmt.Errorf("unknown scenario %q", part)
			}
		}
	}
	return out, nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fhirsub-load:", err)
		os.Exit(1)
	}
}

// run is the whole program; main only supplies the process environment.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "compare" {
		return compareCmd(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "burn" { // hidden: the burners of starve
		return burnCmd(args[1:], os.Stdin, stderr)
	}
	fs := newFlagSet()
	fs.SetOutput(stderr)
	base := fs.String("url", "http://127.0.0.1:8080", "base URL of the running server (loopback only)")
	pid := fs.Int("pid", 0, "process id of the server, for its CPU and memory (0: not measured)")
	o := registerOptions(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: fhirsub-load [flags] SCENARIO...   (create-open create-rate e2e fanout subs resthook starve all)")
		fmt.Fprintln(stderr, "       fhirsub-load compare [flags]       (go run ./cmd/fhirsub-load compare -h)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := o.finish(fs, stderr); err != nil {
		return err
	}
	if err := checkLoopback(*base); err != nil {
		return err
	}
	list, err := pick(fs.Args())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	var errs []error
	for _, s := range list {
		r, err := s.run(ctx, target{Base: strings.TrimRight(*base, "/"), PID: *pid}, *o)
		if r != nil {
			fmt.Fprintln(stdout, r)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.name, err))
			fmt.Fprintf(stderr, "%s: %v\n", s.name, err)
		}
	}
	return errors.Join(errs...)
}

func newFlagSet() *flag.FlagSet { return flag.NewFlagSet("fhirsub-load", flag.ContinueOnError) }

// checkLoopback refuses a server that is not on this machine's loopback:
// the load client is a measuring instrument, not a load generator for
// other hosts.
func checkLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("-url %q: want http://127.0.0.1:PORT", raw)
	}
	h := u.Hostname()
	if ip := net.ParseIP(h); (ip == nil || !ip.IsLoopback()) && h != "localhost" {
		return fmt.Errorf("-url %q: the load client only talks to a loopback address", raw)
	}
	return nil
}

// options are the sizes and durations of the scenarios.
type options struct {
	Duration    time.Duration // create-open, create-rate, e2e: how long writes are sent
	Warmup      time.Duration // create-open, create-rate: writes before the measurement
	Concurrency int           // clients of create-open and of every setup
	Workers     int           // most POSTs in flight in an open loop
	Rate        float64       // create-rate, e2e: writes per second
	Patients    int           // create-*: patients the writes are spread over
	Subscribers int           // e2e: Subscriptions in all
	Matching    int           // e2e: matching subscribers per channel
	LegacyPaths []string      // e2e: legacy channel paths (a 404 is noted, not an error)
	Drain       time.Duration // how long notifications may still arrive after the last write
	Retries     int           // most retries of a write refused with 503/429 and Retry-After

	FanoutSubs  int           // fanout: Subscriptions in all
	FanoutMatch int           // fanout: Subscriptions each write matches
	FanoutRate  float64       // fanout: the write rate to test (0: search)
	FanoutStart float64       // fanout search: first rate
	FanoutMax   float64       // fanout search: highest rate tried
	FanoutStep  time.Duration // fanout: writes per step
	LagBound    time.Duration // fanout: p99 lag a step may have and keep pace

	HookSubs  int     // resthook: Subscriptions, each matching every write
	HookRate  float64 // resthook: the write rate to test (0: search)
	HookStart float64 // resthook search: first rate
	HookMax   float64 // resthook search: highest rate tried

	StarveSubs     int           // starve: rest-hook Subscriptions, each matching every write
	StarveRate     float64       // starve: writes per second
	StarveDuration time.Duration // starve: how long writes are sent (and the burners run)
	Burners        int           // starve: busy processes (0: one per core)

	SubsCount   int    // subs: Subscriptions to create
	SubsChannel string // subs: rest-hook or websocket

	Quick   bool          // the ~30 s sizes, for flags not given
	Timeout time.Duration // bound of the whole run
	Log     io.Writer     // progress lines

	legacy string // the -legacy flag
}

func registerOptions(fs *flag.FlagSet) *options {
	o := &options{}
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "create-open, create-rate, e2e: how long writes are sent")
	fs.DurationVar(&o.Warmup, "warmup", time.Second, "create-open, create-rate: writes before the measurement starts")
	fs.IntVar(&o.Concurrency, "concurrency", 8, "create-open clients (and clients of every setup)")
	fs.IntVar(&o.Workers, "workers", 128, "most POSTs in flight at a steady rate")
	fs.Float64Var(&o.Rate, "rate", 500, "create-rate, e2e: writes per second")
	fs.IntVar(&o.Patients, "patients", 1000, "create-*: patients the writes are spread over")
	fs.IntVar(&o.Subscribers, "subscribers", 1000, "e2e: Subscriptions in all (2×matching of them match)")
	fs.IntVar(&o.Matching, "matching", 1, "e2e: matching subscribers per channel")
	fs.StringVar(&o.legacy, "legacy", "/ws,/api/ws", "e2e: legacy channel paths, comma separated (one answered 404 is noted and skipped)")
	fs.IntVar(&o.Retries, "retries", 5, "most retries of one write the server refused with 503/429 and Retry-After (each refusal is counted: figure refused)")
	fs.DurationVar(&o.Drain, "drain", 10*time.Second, "how long notifications may still arrive after the last write")
	fs.IntVar(&o.FanoutSubs, "fanout-subs", 10000, "fanout: Subscriptions in all")
	fs.IntVar(&o.FanoutMatch, "fanout-match", 10, "fanout: Subscriptions each write matches")
	fs.Float64Var(&o.FanoutRate, "fanout-rate", 0, "fanout: write rate to test (0: search for the highest that keeps pace)")
	fs.Float64Var(&o.FanoutStart, "fanout-start", 100, "fanout search: first rate, doubled while deliveries keep pace")
	fs.Float64Var(&o.FanoutMax, "fanout-max", 3200, "fanout search: highest rate tried")
	fs.DurationVar(&o.FanoutStep, "fanout-step", 4*time.Second, "fanout: how long each rate is sent")
	fs.DurationVar(&o.LagBound, "lag-bound", time.Second, "fanout: the p99 lag within which deliveries keep pace")
	fs.IntVar(&o.HookSubs, "resthook-subs", 100, "resthook: rest-hook Subscriptions (max-count 1), each matching every write")
	fs.Float64Var(&o.HookRate, "resthook-rate", 0, "resthook: write rate to test (0: search for the highest that keeps pace)")
	fs.Float64Var(&o.HookStart, "resthook-start", 10, "resthook search: first write rate, doubled while deliveries keep pace")
	fs.Float64Var(&o.HookMax, "resthook-max", 640, "resthook search: highest write rate tried")
	fs.IntVar(&o.StarveSubs, "starve-subs", 10, "starve: rest-hook Subscriptions, each matching every write")
	fs.Float64Var(&o.StarveRate, "starve-rate", 500, "starve: writes per second while the burners run")
	fs.DurationVar(&o.StarveDuration, "starve-duration", 10*time.Second, "starve: how long writes are sent with every core busy")
	fs.IntVar(&o.Burners, "burners", 0, "starve: processes keeping a core busy each (0: one per core)")
	fs.IntVar(&o.SubsCount, "subs-count", 100000, "subs: Subscriptions to create")
	fs.StringVar(&o.SubsChannel, "subs-channel", "rest-hook", "subs: channel of the Subscriptions (rest-hook or websocket)")
	fs.BoolVar(&o.Quick, "quick", false, "small sizes and short durations (~15 s per server) for the flags not given")
	fs.DurationVar(&o.Timeout, "timeout", 15*time.Minute, "bound of the whole run")
	return o
}

// finish applies -quick to the flags not given, splits the lists and
// checks the values.
func (o *options) finish(fs *flag.FlagSet, log io.Writer) error {
	o.Log = log
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.Quick {
		quick := map[string]string{"duration": "2s", "warmup": "500ms", "rate": "200", "subscribers": "200", "drain": "5s",
			"fanout-subs": "500", "fanout-rate": "100", "fanout-step": "2s", "subs-count": "1000",
			"resthook-rate": "20", "starve-duration": "3s", "starve-rate": "200"}
		for name, v := range quick {
			if !set[name] {
				if err := fs.Set(name, v); err != nil {
					return err
				}
			}
		}
	}
	o.LegacyPaths = nil
	for _, p := range strings.Split(o.legacy, ",") {
		if p = strings.TrimSpace(p); p != "" {
			if !strings.HasPrefix(p, "/") {
				return fmt.Errorf("-legacy: %q is not a path", p)
			}
			o.LegacyPaths = append(o.LegacyPaths, p)
		}
	}
	switch {
	case o.Duration <= 0 || o.Warmup < 0 || o.FanoutStep <= 0 || o.Drain <= 0 || o.Timeout <= 0 || o.LagBound <= 0 ||
		o.StarveDuration <= 0:
		return errors.New("durations must be positive")
	case o.Rate <= 0 || o.FanoutStart <= 0 || o.FanoutMax < o.FanoutStart || o.FanoutRate < 0 ||
		o.HookStart <= 0 || o.HookMax < o.HookStart || o.HookRate < 0 || o.StarveRate <= 0:
		return errors.New("rates must be positive (and -fanout-max, -resthook-max at least -fanout-start, -resthook-start)")
	case o.Concurrency < 1 || o.Workers < 1 || o.Patients < 1 || o.Subscribers < 0 || o.Matching < 1 ||
		o.FanoutSubs < 1 || o.FanoutMatch < 1 || o.SubsCount < 1 || o.Retries < 0 || o.HookSubs < 1 ||
		o.StarveSubs < 1 || o.Burners < 0:
		return errors.New("counts must be positive")
	case o.SubsChannel != "rest-hook" && o.SubsChannel != "websocket":
		return fmt.Errorf("-subs-channel %q: want rest-hook or websocket", o.SubsChannel)
	}
	return nil
}

// client is a client of the target with conns keep-alive connections,
// retrying refused writes as -retries says.
func (o options) client(t target, conns int) *client { return newClient(t.Base, conns, o.Retries) }

// progress prints a progress line.
func (o options) progress(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format, args...)
	}
}
