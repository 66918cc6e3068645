package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is the fhirsub executable built once per test run (by the first
// test that needs it) for the tests that run the server as a child
// process; TestMain removes it.
var binary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// TestMain removes the binary built for the child-process tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if binary.dir != "" {
		_ = os.RemoveAll(binary.dir)
	}
	os.Exit(code)
}

// fhirsubBinary builds the fhirsub command (the package under test) once
// and returns the executable's path.
func fhirsubBinary(tb testing.TB) string {
	tb.Helper()
	binary.once.Do(func() {
		binary.dir, binary.err = os.MkdirTemp("", "fhirsub-bin-")
		if binary.err != nil {
			return
		}
		binary.path = filepath.Join(binary.dir, "fhirsub")
		start := time.Now()
		out, err := exec.Command("go", "build", "-o", binary.path, ".").CombinedOutput()
		if err != nil {
			binary.err = fmt.Errorf("go build: %w\n%s", err, out)
			return
		}
		tb.Logf("built %s in %v", binary.path, time.Since(start).Round(time.Millisecond))
	})
	if binary.err != nil {
		if t, ok := tb.(*testing.T); ok && errors.Is(binary.err, exec.ErrNotFound) {
			skipOrFail(t, "the go command is not on PATH, cannot build the server binary: %v", binary.err)
		}
		tb.Fatal(binary.err)
	}
	return binary.path
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// serverProc is the fhirsub binary running as a child process on a fixed
// address and data directory, so that it can be killed and restarted
// where it was.
type serverProc struct {
	t       testing.TB
	bin     string
	addr    string
	base    string
	args    []string
	logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	starts int
}

// startServerProc builds the binary if needed and starts it on a free
// loopback port with a fresh data directory; extra flags are appended.
// Rest-hooks may reach 127.0.0.1. The process is stopped on cleanup.
func startServerProc(t testing.TB, extra ...string) *serverProc {
	t.Helper()
	dir := t.TempDir()
	p := &serverProc{t: t, bin: fhirsubBinary(t), addr: freeAddr(t), logPath: filepath.Join(dir, "server.log")}
	p.base = "http://" + p.addr
	p.args = append([]string{"serve", "--addr", p.addr, "--data", filepath.Join(dir, "data"),
		"--resthook-allow", "127.0.0.1/32"}, extra...)
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("server log (tail):\n%s", p.logTail(60))
		}
	})
	p.start()
	return p
}

// start launches the process and waits until it answers /metadata.
func (p *serverProc) start() {
	p.t.Helper()
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	defer logf.Close()
	p.mu.Lock()
	p.starts++
	fmt.Fprintf(logf, "==== start %d\n", p.starts)
	cmd := exec.Command(p.bin, p.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		p.mu.Unlock()
		p.t.Fatalf("start fhirsub: %v", err)
	}
	exited := make(chan struct{})
	p.cmd, p.exited = cmd, exited
	p.mu.Unlock()
	go func() { _ = cmd.Wait(); close(exited) }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.base + "/metadata")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-exited:
			p.t.Fatalf("fhirsub exited during start %d: %v\n%s", p.starts, cmd.ProcessState, p.logTail(30))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("fhirsub did not answer /metadata within 30s (start %d)\n%s", p.starts, p.logTail(30))
		}
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *serverProc) kill() {
	p.t.Helper()
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// stop asks for a graceful shutdown (SIGTERM) and kills the process if it
// takes longer than 15s.
func (p *serverProc) stop() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		p.t.Errorf("fhirsub did not stop within 15s of SIGTERM; killing it")
		_ = cmd.Process.Kill()
		<-exited
	}
}

// logTail returns the last n lines the server wrote.
func (p *serverProc) logTail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// fhirClient talks FHIR JSON to a server; requests may fail (the server
// may be dead), so errors are returned, not fatal.
var fhirClient = &http.Client{Timeout: 15 * time.Second}

// fhirDo sends body (nil, or a value encoded as JSON) and decodes the
// answer, numbers as json.Number.
func fhirDo(ctx context.Context, method, url string, body any) (int, map[string]any, error) {
	return fhirDoWith(ctx, method, url, body, nil)
}

// fhirDoWith is fhirDo with extra request headers.
func fhirDoWith(ctx context.Context, method, url string, body any, hdr http.Header) (int, map[string]any, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	resp, err := fhirClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, err
	}
	var out map[string]any
	if len(raw) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&out); err != nil {
			return resp.StatusCode, nil, fmt.Errorf("%s %s: answer is not JSON: %w: %.200s", method, url, err, raw)
		}
	}
	return resp.StatusCode, out, nil
}

// mustFHIR is fhirDo that fails the test unless the status is want.
func mustFHIR(tb testing.TB, want int, method, url string, body any) map[string]any {
	tb.Helper()
	st, out, err := fhirDo(context.Background(), method, url, body)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	if st != want {
		tb.Fatalf("%s %s: status %d, want %d: %v", method, url, st, want, out)
	}
	return out
}

// searchAll runs a search and follows the next links, returning the
// resources of the match entries.
func searchAll(tb testing.TB, url string) []map[string]any {
	tb.Helper()
	var out []map[string]any
	for page := 0; url != ""; page++ {
		if page > 100 {
			tb.Fatalf("search %s: more than 100 pages", url)
		}
		b := mustFHIR(tb, http.StatusOK, "GET", url, nil)
		url = ""
		for _, l := range asSlice(b["link"]) {
			lm, _ := l.(map[string]any)
			if lm["relation"] == "next" {
				url, _ = lm["url"].(string)
			}
		}
		for _, e := range asSlice(b["entry"]) {
			em, _ := e.(map[string]any)
			if sm, _ := em["search"].(map[string]any); sm != nil && sm["mode"] != nil && sm["mode"] != "match" {
				continue
			}
			if r, ok := em["resource"].(map[string]any); ok {
				out = append(out, r)
			}
		}
	}
	return out
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

// topicSubscription is a Backport topic-based rest-hook Subscription.
func topicSubscription(endpoint, topic, content string, filters ...string) map[string]any {
	s := map[string]any{
		"resourceType": "Subscription",
		"meta":         map[string]any{"profile": []any{"http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription"}},
		"status":       "requested",
		"reason":       "reliability test",
		"criteria":     topic,
		"channel": map[string]any{
			"type":     "rest-hook",
			"endpoint": endpoint,
			"payload":  "application/fhir+json",
			"_payload": map[string]any{"extension": []any{map[string]any{
				"url":       "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content",
				"valueCode": content,
			}}},
		},
	}
	var exts []any
	for _, f := range filters {
		exts = append(exts, map[string]any{
			"url":         "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-filter-criteria",
			"valueString": f,
		})
	}
	if len(exts) > 0 {
		s["_criteria"] = map[string]any{"extension": exts}
	}
	return s
}

// criticalTopic is the built-in topic the reliability tests subscribe to.
const criticalTopic = "https://fhirsub.org/SubscriptionTopic/critical-result"

// criticalObservation is an Observation that fires criticalTopic when
// created: final, interpretation HH, for the patient, with the LOINC code
// and a tag (identifier) that finds it again after a crash.
func criticalObservation(patient, loinc, tag string) map[string]any {
	return map[string]any{
		"resourceType":      "Observation",
		"identifier":        []any{map[string]any{"system": "urn:fhirsub:test-write", "value": tag}},
		"status":            "final",
		"code":              map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": loinc}}},
		"subject":           map[string]any{"reference": "Patient/" + patient},
		"effectiveDateTime": "2025-03-01T10:00:00Z",
		"valueQuantity":     map[string]any{"value": json.Number("6.9"), "unit": "mmol/L"},
		"interpretation": []any{map[string]any{"coding": []any{map[string]any{
			"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "HH"}}}},
	}
}

// subscriptionStatus reads Subscription/{id} and returns its status and
// error element.
func subscriptionStatus(tb testing.TB, base, id string) (status, errMsg string) {
	tb.Helper()
	s := mustFHIR(tb, http.StatusOK, "GET", base+"/Subscription/"+id, nil)
	status, _ = s["status"].(string)
	errMsg, _ = s["error"].(string)
	return status, errMsg
}

// figuresFile collects the one-line figures of the reliability tests, for
// make test-report (go test hides a passing test's output).
const figuresFile = "testdata/artifacts/figures.txt"

// reportFigure prints line and appends it to figuresFile.
func reportFigure(line string) {
	fmt.Println(line)
	f, err := os.OpenFile(figuresFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "figures:", err)
		return
	}
	defer f.Close()
	fmt.Fprintln(f, line)
}

// shippedAuth is one way the binary is run by the tests of its shipped
// wiring: the flags it gets and the header each request carries.
type shippedAuth struct {
	name  string
	flags []string
	hdr   http.Header
}

// shippedAuths returns the binary with authentication off and with
// --jwt-secret secret and an admin token (system/*.cruds) on every request.
func shippedAuths(t *testing.T, secret string) []shippedAuth {
	t.Helper()
	admin, err := mintToken(mintOptions{Secret: []byte(secret), Scope: "system/*.cruds", Subject: "admin", TTL: time.Hour, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return []shippedAuth{
		{"auth off", nil, http.Header{}},
		{"admin token", []string{"--jwt-secret", secret}, http.Header{"Authorization": {"Bearer " + admin}}},
	}
}
