package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

// search GETs a search and returns the Bundle's total and resources.
func search(t *testing.T, url string) (int, []map[string]any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b struct {
		Total *int `json:"total"`
		Entry []struct {
			Resource map[string]any `json:"resource"`
		} `json:"entry"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&b); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	var out []map[string]any
	for _, e := range b.Entry {
		out = append(out, e.Resource)
	}
	if b.Total == nil {
		return len(out), out
	}
	return *b.Total, out
}

func TestDemoWritesValidClinicalTraffic(t *testing.T) {
	a := mustStart(t, t.TempDir())
	defer a.shutdown(context.Background())

	var out, errb bytes.Buffer
	cfg, err := parseDemoConfig([]string{"--base-url", a.baseURL, "--rate", "400", "--patients", "4", "--duration", "1500ms", "--seed", "7"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	stats, err := runDemo(context.Background(), cfg, &out, &errb)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, errb.String())
	}
	// Every write was accepted (201/200): the server validates against the
	// R4 schema, so each resource had a valid shape.
	if stats.errors != 0 {
		t.Fatalf("%d writes refused:\n%s", stats.errors, errb.String())
	}
	for _, typ := range []string{"Patient", "ServiceRequest", "Observation", "DiagnosticReport", "MedicationRequest", "Task", "Communication"} {
		if stats.created[typ] == 0 {
			t.Errorf("no %s created (stats %v)", typ, stats.created)
		}
	}
	if stats.updated["ServiceRequest"] == 0 {
		t.Errorf("no order status change (updates %v)", stats.updated)
	}
	if stats.created["Patient"] != 4 {
		t.Errorf("patients = %d, want 4", stats.created["Patient"])
	}
	// stdout is not a terminal: plain lines, no carriage returns.
	line := out.String()
	if strings.Contains(line, "\r") || !strings.HasSuffix(line, "\n") || !strings.Contains(line, "Observation ") || !strings.Contains(line, "errors 0") {
		t.Errorf("progress output (not a terminal): %q", line)
	}

	// The server holds what the demo reported.
	if n, _ := search(t, a.baseURL+"/Observation?_count=0"); n != stats.created["Observation"] {
		t.Errorf("server has %d Observations, demo created %d", n, stats.created["Observation"])
	}
	_, obs := search(t, a.baseURL+"/Observation?_count=500")
	critical := 0
	for _, o := range obs {
		interp, _ := json.Marshal(o["interpretation"])
		if bytes.Contains(interp, []byte(`"HH"`)) || bytes.Contains(interp, []byte(`"LL"`)) {
			critical++
			if o["valueQuantity"] == nil || o["referenceRange"] == nil {
				t.Errorf("critical Observation lacks value or range: %v", o)
			}
		}
	}
	if critical == 0 {
		t.Error("no critical Observation (HH/LL) was written")
	}
	if n, _ := search(t, a.baseURL+"/ServiceRequest?status=completed"); n == 0 {
		t.Error("no completed ServiceRequest on the server")
	}
}

func TestDemoStopsOnCancel(t *testing.T) {
	a := mustStart(t, t.TempDir())
	defer a.shutdown(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() {
		done <- demoCmd(ctx, []string{"--base-url", a.baseURL, "--rate", "50", "--patients", "2", "--seed", "1"}, func(string) string { return "" }, &out, io.Discard)
	}()
	time.Sleep(300 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("cancelled demo returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("demo did not stop after cancel")
	}
	if !strings.HasSuffix(out.String(), "\n") {
		t.Errorf("final progress line not terminated: %q", out.String())
	}
}

func TestDemoFlagsAndUnreachableServer(t *testing.T) {
	env := func(string) string { return "" }
	for _, args := range [][]string{
		{"--rate", "0"},
		{"--rate", "-1"},
		{"--patients", "0"},
		{"--duration", "-1s"},
		{"--base-url", "ftp://x"},
		{"--base-url", "localhost:8080"},
		{"extra"},
	} {
		if _, err := parseDemoConfig(args, env, io.Discard); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	cfg, err := parseDemoConfig(nil, func(k string) string {
		if k == "FHIRSUB_DEMO_BASE_URL" {
			return "http://fhir.example:9/"
		}
		return ""
	}, io.Discard)
	if err != nil || cfg.BaseURL != "http://fhir.example:9" || cfg.Seed == 0 || cfg.Duration != 0 {
		t.Fatalf("defaults: %+v %v", cfg, err)
	}
	// Nothing listens on port 9 of loopback: the first patient fails and the
	// demo says so instead of spinning.
	err = demoCmd(context.Background(), []string{"--base-url", "http://127.0.0.1:9", "--duration", "5s"}, env, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "create first patient") {
		t.Fatalf("unreachable server: %v", err)
	}
}

func TestDemoTrafficIsDeterministic(t *testing.T) {
	gen := func() []string {
		g := newTraffic(42)
		g.now = func() time.Time { return time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC) }
		g.addPatient("p1")
		g.addPatient("p2")
		var kinds []string
		for i := 0; i < 200; i++ {
			w := g.next()
			b, _ := json.Marshal(w.res)
			kinds = append(kinds, string(b))
			if w.done != nil {
				w.done("id" + string(rune('a'+i%26)))
			}
		}
		return kinds
	}
	a, b := gen(), gen()
	if strings.Join(a, "\n") != strings.Join(b, "\n") {
		t.Fatal("same seed, different traffic")
	}
}

// TestDemoWithAuthenticationOn: against a server with HS256 authentication
// the demo without a token stops at once and says how to give one; with
// --token, FHIRSUB_DEMO_TOKEN or the server's secret it writes its traffic.
func TestDemoWithAuthenticationOn(t *testing.T) {
	secret := strings.Repeat("demo-secret-0123456789abcdef", 2)
	cfg, err := parseConfig([]string{"--addr", "127.0.0.1:0", "--data", t.TempDir(), "--jwt-secret", secret},
		func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a, err := start(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.shutdown(context.Background())
	noEnv := func(string) string { return "" }
	args := func(extra ...string) []string {
		return append([]string{"--base-url", a.baseURL, "--patients", "2", "--rate", "200", "--duration", "300ms", "--seed", "3"}, extra...)
	}

	err = demoCmd(context.Background(), args(), noEnv, io.Discard, io.Discard)
	t.Logf("without a token: %v", err)
	if err == nil || !strings.Contains(err.Error(), "HTTP 401") || !strings.Contains(err.Error(), "--token") || !strings.Contains(err.Error(), "--jwt-secret") {
		t.Fatalf("demo without a token: %v, want a 401 naming --token and --jwt-secret", err)
	}

	tok, err := mintToken(mintOptions{Secret: []byte(secret), Scope: demoScope, Subject: "t", TTL: time.Hour, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	for name, run := range map[string]func(out io.Writer) error{
		"--token": func(out io.Writer) error {
			return demoCmd(context.Background(), args("--token", tok), noEnv, out, io.Discard)
		},
		"FHIRSUB_DEMO_TOKEN": func(out io.Writer) error {
			return demoCmd(context.Background(), args(), func(k string) string {
				if k == "FHIRSUB_DEMO_TOKEN" {
					return tok
				}
				return ""
			}, out, io.Discard)
		},
		"--jwt-secret": func(out io.Writer) error {
			return demoCmd(context.Background(), args("--jwt-secret", secret), noEnv, out, io.Discard)
		},
		"FHIRSUB_JWT_SECRET": func(out io.Writer) error {
			return demoCmd(context.Background(), args(), func(k string) string {
				if k == "FHIRSUB_JWT_SECRET" {
					return secret
				}
				return ""
			}, out, io.Discard)
		},
	} {
		var out bytes.Buffer
		err := run(&out)
		t.Logf("%s: %v; last line %q", name, err, lastLine(out.String()))
		if err != nil || !strings.Contains(out.String(), "Patient ") || !strings.Contains(out.String(), "errors 0") {
			t.Errorf("demo with %s: %v\n%s", name, err, out.String())
		}
	}
	if _, err := parseDemoConfig([]string{"--jwt-secret", "short"}, noEnv, io.Discard); err == nil || !strings.Contains(err.Error(), "32 bytes") {
		t.Errorf("a short --jwt-secret: %v", err)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}
