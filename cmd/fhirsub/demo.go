package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

// demoConfig is every setting of `fhirsub demo`.
type demoConfig struct {
	BaseURL  string
	Rate     float64
	Patients int
	Duration time.Duration
	Seed     int64
	// Token is the bearer token sent with every request ("" = none).
	Token string
}

// demoScope is what the demo's minted token may do: read and write every
// resource type (it creates, updates and reads back clinical resources).
const demoScope = "user/*.cruds"

func parseDemoConfig(args []string, getenv func(string) string, stderr io.Writer) (*demoConfig, error) {
	fs := flag.NewFlagSet("fhirsub demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := "http://localhost:8080"
	if v := getenv("FHIRSUB_DEMO_BASE_URL"); v != "" {
		base = v
	}
	c := &demoConfig{}
	fs.StringVar(&c.BaseURL, "base-url", base, "FHIR base URL of the server to feed (env FHIRSUB_DEMO_BASE_URL)")
	fs.Float64Var(&c.Rate, "rate", 5, "resources written per second")
	fs.IntVar(&c.Patients, "patients", 20, "number of patients to create first")
	fs.DurationVar(&c.Duration, "duration", 0, "how long to run (0 = until interrupted)")
	fs.Int64Var(&c.Seed, "seed", 0, "random seed (0 = from the clock)")
	fs.StringVar(&c.Token, "token", getenv("FHIRSUB_DEMO_TOKEN"), "bearer token for a server with authentication on, scope "+demoScope+" (env FHIRSUB_DEMO_TOKEN)")
	secret := fs.String("jwt-secret", getenv("FHIRSUB_JWT_SECRET"), "the server's HS256 secret: the demo mints its own token when --token is not given (env FHIRSUB_JWT_SECRET)")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: fhirsub demo [flags]

Creates patients, then writes realistic clinical traffic (orders, vitals and
lab results with some critical values, reports, order status changes, tasks,
team messages) to a running fhirsub server until the duration ends or Ctrl-C.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("base-url: %q is not an http(s) URL", c.BaseURL)
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if c.Rate <= 0 || c.Rate > 10000 {
		return nil, fmt.Errorf("rate: %v is not between 0 and 10000 resources/s", c.Rate)
	}
	if c.Patients < 1 || c.Patients > 100000 {
		return nil, fmt.Errorf("patients: %d is not between 1 and 100000", c.Patients)
	}
	if c.Duration < 0 {
		return nil, errors.New("duration: must not be negative")
	}
	if c.Seed == 0 {
		c.Seed = time.Now().UnixNano()
	}
	if c.Token == "" && *secret != "" {
		// Long enough for a demo left running all day; issuer and audience
		// as the server requires them (the same variables as serve).
		c.Token, err = mintToken(mintOptions{Secret: []byte(*secret), Scope: demoScope, Subject: "fhirsub-demo",
			TTL: 24 * time.Hour, Issuer: getenv("FHIRSUB_JWT_ISSUER"), Audience: getenv("FHIRSUB_JWT_AUDIENCE"), Now: time.Now()})
		if err != nil {
			return nil, fmt.Errorf("jwt-secret: %w", err)
		}
	}
	return c, nil
}

// demoCmd generates clinical traffic against a running server.
func demoCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseDemoConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	_, err = runDemo(ctx, cfg, stdout, stderr)
	return err
}

// demoStats counts what the demo wrote.
type demoStats struct {
	mu      sync.Mutex
	created map[string]int // by resource type, creates
	updated map[string]int // by resource type, updates
	errors  int
	started time.Time
}

func (s *demoStats) ok(typ string, update bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if update {
		s.updated[typ]++
	} else {
		s.created[typ]++
	}
}

func (s *demoStats) fail() {
	s.mu.Lock()
	s.errors++
	s.mu.Unlock()
}

// line is the one-line progress report.
func (s *demoStats) line() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	types := make([]string, 0, len(s.created))
	total := 0
	seen := map[string]bool{}
	for t, n := range s.created {
		types, seen[t] = append(types, t), true
		total += n
	}
	for t, n := range s.updated {
		if !seen[t] {
			types = append(types, t)
		}
		total += n
	}
	sort.Strings(types)
	var b strings.Builder
	for _, t := range types {
		fmt.Fprintf(&b, "%s %d", t, s.created[t])
		if u := s.updated[t]; u > 0 {
			fmt.Fprintf(&b, "(+%d upd)", u)
		}
		b.WriteString("  ")
	}
	el := time.Since(s.started).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(total) / el
	}
	fmt.Fprintf(&b, "errors %d  %.1f/s", s.errors, rate)
	return b.String()
}

// demoClient writes resources to the server.
type demoClient struct {
	base   string
	token  string
	http   *http.Client
	stats  *demoStats
	stderr io.Writer
	shown  int // errors printed so far
}

const maxShownErrors = 5

// write POSTs (id == "") or PUTs a resource and returns its id. A failure
// is counted, and the first few are printed in full.
func (c *demoClient) write(ctx context.Context, res map[string]any) (string, error) {
	typ, _ := res["resourceType"].(string)
	id, _ := res["id"].(string)
	body, err := json.Marshal(res)
	if err != nil {
		return "", fmt.Errorf("encode %s: %w", typ, err)
	}
	method, u := http.MethodPost, c.base+"/"+typ
	if id != "" {
		method, u = http.MethodPut, u+"/"+url.PathEscape(id)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("request %s: %w", typ, err)
	}
	req.Header.Set("Content-Type", "application/fhir+json")
	req.Header.Set("Accept", "application/fhir+json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		c.failed(fmt.Errorf("%s %s: %w", method, typ, err))
		return "", err
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("%s %s: HTTP %d: %s", method, typ, resp.StatusCode, outcomeText(rb))
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			err = fmt.Errorf("%w (the server has authentication on: pass --token or FHIRSUB_DEMO_TOKEN with scope %s, "+
				"or --jwt-secret / FHIRSUB_JWT_SECRET to mint one)", err, demoScope)
		}
		c.failed(err)
		return "", err
	}
	var out struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(rb, &out); err != nil || out.ID == "" {
		err := fmt.Errorf("%s %s: answer has no id", method, typ)
		c.failed(err)
		return "", err
	}
	c.stats.ok(typ, id != "")
	return out.ID, nil
}

func (c *demoClient) failed(err error) {
	c.stats.fail()
	if c.shown < maxShownErrors {
		c.shown++
		fmt.Fprintf(c.stderr, "\ndemo: %v\n", err)
		if c.shown == maxShownErrors {
			fmt.Fprintln(c.stderr, "demo: further errors are only counted")
		}
	}
}

// outcomeText extracts the diagnostics of an OperationOutcome body.
func outcomeText(b []byte) string {
	var oo struct {
		Issue []struct {
			Diagnostics string `json:"diagnostics"`
			Code        string `json:"code"`
		} `json:"issue"`
	}
	if json.Unmarshal(b, &oo) == nil && len(oo.Issue) > 0 {
		msgs := make([]string, 0, len(oo.Issue))
		for _, i := range oo.Issue {
			msgs = append(msgs, strings.TrimSpace(i.Code+" "+i.Diagnostics))
		}
		return strings.Join(msgs, "; ")
	}
	if len(b) > 200 {
		b = b[:200]
	}
	return string(b)
}

// runDemo creates the patients, then writes one resource per tick until the
// duration ends or ctx is cancelled. Cancellation is a clean stop. The end
// of the duration lets the write in flight finish, so the counts match the
// server.
func runDemo(ctx context.Context, cfg *demoConfig, stdout, stderr io.Writer) (*demoStats, error) {
	stop := ctx
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		stop, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	stats := &demoStats{created: map[string]int{}, updated: map[string]int{}, started: time.Now()}
	c := &demoClient{base: cfg.BaseURL, token: cfg.Token, http: &http.Client{Timeout: 15 * time.Second}, stats: stats, stderr: stderr}
	g := newTraffic(cfg.Seed)

	p := newProgress(stdout)
	fmt.Fprintf(stdout, "fhirsub demo: %s, %d patients, %.4g resources/s, seed %d\n", cfg.BaseURL, cfg.Patients, cfg.Rate, cfg.Seed)
	for i := 0; i < cfg.Patients; i++ {
		id, err := c.write(ctx, g.patient())
		if stop.Err() != nil {
			p.final(stats.line())
			return stats, nil
		}
		if err != nil {
			if i == 0 {
				return stats, fmt.Errorf("create first patient on %s: %w", cfg.BaseURL, err)
			}
			continue
		}
		g.addPatient(id)
	}

	progress := time.NewTicker(p.every)
	defer progress.Stop()
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-stop.Done():
			p.final(stats.line())
			return stats, nil
		case <-progress.C:
			p.update(stats.line())
		case <-tick.C:
			if stop.Err() != nil {
				continue // the select reports the stop
			}
			w := g.next()
			id, err := c.write(ctx, w.res)
			if err == nil && w.done != nil {
				w.done(id)
			}
		}
	}
}

// progress prints the demo's progress line: rewritten in place (\r) twice a
// second on a terminal; elsewhere (a pipe, a file, a CI log) a plain line
// every few seconds, so the output reads as lines.
type progress struct {
	w     io.Writer
	tty   bool
	every time.Duration
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w, tty: isTerminal(w), every: 5 * time.Second}
	if p.tty {
		p.every = 500 * time.Millisecond
	}
	return p
}

func (p *progress) update(line string) {
	if p.tty {
		fmt.Fprintf(p.w, "\r%s", line)
		return
	}
	fmt.Fprintln(p.w, line)
}

// final prints the last line, ending the line rewritten in place.
func (p *progress) final(line string) {
	if p.tty {
		fmt.Fprintf(p.w, "\r%s\n", line)
		return
	}
	fmt.Fprintln(p.w, line)
}

// isTerminal reports whether w is a character device (a terminal), not a
// pipe or a file.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
