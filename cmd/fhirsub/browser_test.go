package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// artifacts is where browser tests leave screenshots (git-ignored).
const artifacts = "testdata/artifacts"

// skipOrFail skips with the reason, or fails when CI is set (CI installs
// everything the tests need).
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// browser is a headless Chromium driven over the DevTools protocol; it
// records uncaught page exceptions and console errors.
type browser struct {
	ctx  context.Context
	mu   sync.Mutex
	errs []string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := os.Getenv("CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := exec.LookPath(path); err != nil {
		skipOrFail(t, "chromium not found at %s (apt-get install -y chromium, or set CHROMIUM): %v", path, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 960),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	b := &browser{ctx: ctx}
	// Console starts the browser on the long-lived context and subscribes.
	// Exceptions and console.error calls of the page are errors; browser
	// log entries (a refused websocket while the server restarts) are not.
	msgs := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.IsException() || (m.Type == chromedp.ConsoleError && m.Source == "") {
				b.record(m.String())
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return b
}

func (b *browser) record(s string) {
	b.mu.Lock()
	b.errs = append(b.errs, s)
	b.mu.Unlock()
}

// pageErrors returns the exceptions and console errors seen so far.
func (b *browser) pageErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errs...)
}

// run runs actions with a deadline.
func (b *browser) run(t *testing.T, timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("browser: %v (page errors: %v)", err, b.pageErrors())
	}
}

// waitFor polls a JavaScript boolean expression until it is true.
func (b *browser) waitFor(t *testing.T, what, expr string, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(timeout))); err != nil {
		dctx, dcancel := context.WithTimeout(b.ctx, 5*time.Second)
		defer dcancel()
		dump, _ := chromedp.Run(dctx, chromedp.Evaluate[string](`document.querySelector('main').innerText.slice(0, 1500)`))
		t.Fatalf("waiting for %s: %v\npage errors: %v\npage text: %s", what, err, b.pageErrors(), dump)
	}
}

// evalJS evaluates a JavaScript expression and decodes its value.
func evalJS[T any](t *testing.T, b *browser, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v (page errors: %v)", expr, err, b.pageErrors())
	}
	return v
}

// js runs JavaScript for its effect.
func js(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](expr)
}

// screenshot saves the viewport as testdata/artifacts/<name>.png.
func (b *browser) screenshot(t *testing.T, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(artifacts, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
	return p
}

// mustStartAt runs the whole server on addr with its data in dir.
func mustStartAt(tb testing.TB, dir, addr string) *app {
	tb.Helper()
	// Rest-hook receivers in tests listen on loopback, which the SSRF guard
	// refuses unless allow-listed.
	cfg, err := parseConfig([]string{"--addr", addr, "--data", dir, "--resthook-allow", "127.0.0.1/32"},
		func(string) string { return "" }, io.Discard)
	if err != nil {
		tb.Fatal(err)
	}
	var a *app
	// The port of a server just shut down may take a moment to free.
	for i := 0; ; i++ {
		a, err = start(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err == nil || i == 50 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

// create POSTs a resource and returns its id.
func create(t *testing.T, base, body string) string {
	t.Helper()
	var res map[string]any
	if err := json.Unmarshal([]byte(body), &res); err != nil {
		t.Fatalf("bad test resource: %v", err)
	}
	resp := post(t, base+"/"+res["resourceType"].(string), body)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create %s: %d %s", res["resourceType"], resp.StatusCode, b)
	}
	var out struct{ ID string }
	if err := json.Unmarshal(b, &out); err != nil || out.ID == "" {
		t.Fatalf("create: no id in %s", b)
	}
	return out.ID
}

func criticalPotassium(patient string) string {
	return fmt.Sprintf(`{"resourceType":"Observation","status":"final",
		"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],
		"code":{"coding":[{"system":"http://loinc.org","code":"2823-3","display":"Potassium [Moles/volume] in Serum or Plasma"}],"text":"Potassium"},
		"subject":{"reference":"Patient/%s"},"effectiveDateTime":"2025-03-01T10:00:00Z",
		"valueQuantity":{"value":6.9,"unit":"mmol/L","system":"http://unitsofmeasure.org","code":"mmol/L"},
		"interpretation":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation","code":"HH","display":"Critical high"}]}],
		"referenceRange":[{"low":{"value":3.5,"unit":"mmol/L"},"high":{"value":5.1,"unit":"mmol/L"}}]}`, patient)
}

// wired reports whether the running server serves the dashboard and the
// legacy websocket channel, and what is missing.
func wired(t *testing.T, base string) (dashboard, ws bool) {
	t.Helper()
	resp, err := http.Get(base + "/")
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		dashboard = resp.StatusCode == http.StatusOK && strings.Contains(string(b), "Live clinical dashboard")
	}
	// A plain GET of a websocket endpoint is refused with 400 (upgrade
	// required); an unknown path is a FHIR 404.
	resp, err = http.Get(base + "/ws?client_id=probe")
	if err == nil {
		resp.Body.Close()
		ws = resp.StatusCode != http.StatusNotFound
	}
	return dashboard, ws
}

// subscriptionsWired reports whether the server offers Subscriptions with
// $status (the subscriptions package).
func subscriptionsWired(t *testing.T, base string) bool {
	t.Helper()
	resp, err := http.Get(base + "/metadata")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.Contains(string(b), "OperationDefinition/backport-subscription-status")
}

// served is a running server under test: its base URL and how to stop it.
type served struct {
	baseURL string
	stop    func() error
}

// starter runs the server over the data in dir, listening on addr.
type starter func(t *testing.T, dir, addr string) served

// startApp runs the real fhirsub server (start from run.go).
func startApp(t *testing.T, dir, addr string) served {
	a := mustStartAt(t, dir, addr)
	return served{baseURL: a.baseURL, stop: func() error { return a.shutdown(context.Background()) }}
}

func TestDashboardInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	dashboardScenario(t, startApp)
}

// dashboardScenario drives the dashboard in Chromium against the server
// that startServer runs.
func dashboardScenario(t *testing.T, startServer starter) {
	br := newBrowser(t)
	dir := t.TempDir()
	a := startServer(t, dir, "127.0.0.1:0")
	stopped := false
	defer func() {
		if !stopped {
			a.stop()
		}
	}()
	u, _ := url.Parse(a.baseURL)
	addr := net.JoinHostPort("127.0.0.1", u.Port())

	dash, ws := wired(t, a.baseURL)
	if !dash {
		skipOrFail(t, "the dashboard is not mounted by cmd/fhirsub start(): mount ui.Handler() on ui.Paths through web.Config.Handlers")
	}
	if !ws {
		skipOrFail(t, "the legacy websocket channel /ws is not wired in cmd/fhirsub start()")
	}

	br.run(t, 20*time.Second, chromedp.Navigate(a.baseURL+"/"))
	br.waitFor(t, "the live connection", `document.querySelector('#conn').dataset.state === 'live'`, 15*time.Second)

	patient := create(t, a.baseURL, `{"resourceType":"Patient","name":[{"given":["Ada"],"family":"Critical"}],"gender":"female","birthDate":"1950-02-03"}`)

	t.Run("critical result reaches feed, panel and badge", func(t *testing.T) {
		obsID := create(t, a.baseURL, criticalPotassium(patient))
		sel := fmt.Sprintf(`[data-id="Observation/%s"]`, obsID)
		br.waitFor(t, "the feed row", fmt.Sprintf(`!!document.querySelector('#feed-rows %s')`, sel), 10*time.Second)
		br.waitFor(t, "the critical panel entry", fmt.Sprintf(`!!document.querySelector('#crit-list %s')`, sel), 5*time.Second)
		br.waitFor(t, "the unread badge", `(() => { const b = document.querySelector('#badge'); return !b.hidden && Number(b.textContent) >= 1 })()`, 5*time.Second)
		text := evalJS[string](t, br, fmt.Sprintf(`document.querySelector('#crit-list %s').innerText`, sel))
		for _, want := range []string{"Potassium", "6.9 mmol/L", "HH", "Ada Critical"} {
			if !strings.Contains(text, want) {
				t.Errorf("critical entry %q lacks %q", text, want)
			}
		}
		row := evalJS[string](t, br, fmt.Sprintf(`document.querySelector('#feed-rows %s').innerText`, sel))
		if !strings.Contains(row, "Observation") || !strings.Contains(strings.ToLower(row), "created") {
			t.Errorf("feed row %q", row)
		}
	})

	t.Run("live traffic, filters and screenshot", func(t *testing.T) {
		var out io.Writer = io.Discard
		cfg := &demoConfig{BaseURL: a.baseURL, Rate: 150, Patients: 8, Duration: 2 * time.Second, Seed: 11}
		stats, err := runDemo(context.Background(), cfg, out, io.Discard)
		if err != nil || stats.errors != 0 {
			t.Fatalf("demo traffic: %v, %d errors", err, stats.errors)
		}
		total := 0
		for _, n := range stats.created {
			total += n
		}
		for _, n := range stats.updated {
			total += n
		}
		total += 2 // the patient and the critical Observation
		br.waitFor(t, "every demo event in the feed", fmt.Sprintf(`window.fhirsub.feed.events.length >= %d`, total), 15*time.Second)
		n := evalJS[int](t, br, `window.fhirsub.feed.events.length`)
		if n != total {
			t.Errorf("feed has %d events, server wrote %d (duplicates or losses)", n, total)
		}
		domRows := evalJS[int](t, br, `document.querySelectorAll('#feed-rows .feed-row').length`)
		if domRows == 0 || domRows > 80 {
			t.Errorf("feed renders %d DOM rows; want a window (1..80)", domRows)
		}
		br.waitFor(t, "orders on the board", `document.querySelectorAll('#order-board .order-card').length > 0`, 5*time.Second)

		// Filter by resource type.
		br.run(t, 5*time.Second, chromedp.SetValue(chromedp.CSS(`#f-type`), "Observation"),
			js(`document.querySelector('#f-type').dispatchEvent(new Event('change'))`))
		br.waitFor(t, "the type filter", `[...document.querySelectorAll('#feed-rows .c-type')].every(e => e.textContent === 'Observation')`, 5*time.Second)
		br.run(t, 5*time.Second, js(`(() => { const s = document.querySelector('#f-type'); s.selectedIndex = 0; s.dispatchEvent(new Event('change')) })()`))
		br.screenshot(t, "dashboard")

		// 12,000 more events: the feed keeps at most 10,000 (+ slack) and the
		// DOM only the visible window.
		ms := evalJS[float64](t, br, `(() => {
			const f = window.fhirsub.feed, t0 = performance.now();
			for (let i = 0; i < 12000; i++) f.add({action: 'created', resourceType: 'Observation', resourceId: 'bulk' + i, patientId: 'p' + (i % 50), resource: {resourceType: 'Observation', code: {text: 'Heart rate'}, valueQuantity: {value: 70, unit: '/min'}}, seq: null, timestamp: new Date().toISOString()});
			f.render();
			return performance.now() - t0;
		})()`)
		kept := evalJS[int](t, br, `window.fhirsub.feed.events.length`)
		rows := evalJS[int](t, br, `document.querySelectorAll('#feed-rows .feed-row').length`)
		t.Logf("12,000 events added and rendered in %.0f ms; %d kept, %d DOM rows", ms, kept, rows)
		if kept < 10000 || kept > 10500 || rows == 0 || rows > 80 {
			t.Errorf("after 12,000 events: %d kept (want 10,000..10,500), %d DOM rows (want 1..80)", kept, rows)
		}
		br.run(t, 5*time.Second, js(`document.querySelector('#f-clear').click()`))
	})

	t.Run("reconnect replays what the client missed", func(t *testing.T) {
		stopped = true
		if err := a.stop(); err != nil {
			t.Fatalf("shutdown: %v", err)
		}
		br.waitFor(t, "the disconnected indicator", `document.querySelector('#conn').dataset.state === 'reconnecting'`, 10*time.Second)
		// Write while the server is down, straight into its store: the
		// restarted server's live feed starts after this change, so only
		// a replay (resume from the client's last seq) can deliver it.
		// Rest-hook receivers in tests listen on loopback, which the SSRF guard
		// refuses unless allow-listed.
		cfg, err := parseConfig([]string{"--addr", addr, "--data", dir, "--resthook-allow", "127.0.0.1/32"},
			func(string) string { return "" }, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		st, _, err := openStore(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		if err := json.Unmarshal([]byte(criticalPotassium(patient)), &body); err != nil {
			t.Fatal(err)
		}
		missed, err := st.Create(context.Background(), body)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		a = startServer(t, dir, addr)
		stopped = false
		live := create(t, a.baseURL, criticalPotassium(patient))

		br.waitFor(t, "the reconnection", `document.querySelector('#conn').dataset.state === 'live'`, 20*time.Second)
		for _, id := range []string{missed.ID, live} {
			br.waitFor(t, "Observation/"+id+" in the feed",
				fmt.Sprintf(`window.fhirsub.feed.events.some(e => e.resourceId === %q)`, id), 10*time.Second)
		}
		time.Sleep(300 * time.Millisecond) // let any duplicate arrive
		dup := evalJS[int](t, br, fmt.Sprintf(`window.fhirsub.feed.events.filter(e => e.resourceId === %q || e.resourceId === %q).length`, missed.ID, live))
		if dup != 2 {
			t.Errorf("after replay the feed holds %d events for the missed and the live Observation, want 2 (no duplicates)", dup)
		}
	})

	t.Run("subscription manager creates an active subscription", func(t *testing.T) {
		if !subscriptionsWired(t, a.baseURL) {
			skipOrFail(t, "waits for the subscriptions package: Subscription create with rest-hook handshake, $status, $events and GET /SubscriptionTopic wired in cmd")
		}
		hooks := make(chan string, 16)
		recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			select {
			case hooks <- string(b):
			default:
			}
			w.WriteHeader(http.StatusOK)
		}))
		defer recv.Close()

		br.run(t, 10*time.Second, js(`location.hash = 'subscriptions'`))
		br.waitFor(t, "the topics", `[...document.querySelectorAll('#sub-topic option')].some(o => o.value.endsWith('/critical-result'))`, 10*time.Second)
		br.run(t, 10*time.Second,
			chromedp.SetValue(chromedp.CSS(`#sub-topic`), "https://fhirsub.org/SubscriptionTopic/critical-result"),
			js(`document.querySelector('#sub-topic').dispatchEvent(new Event('change'))`),
			chromedp.SetValue(chromedp.CSS(`#sub-channel`), "rest-hook"),
			chromedp.SendKeys(chromedp.CSS(`#sub-endpoint`), recv.URL+"/hook"),
			chromedp.Click(chromedp.CSS(`#sub-add-filter`)),
			chromedp.SendKeys(chromedp.CSS(`#sub-filters .f-value`), "Patient/"+patient),
			chromedp.Click(chromedp.CSS(`#sub-create`)),
		)
		br.waitFor(t, "the creation message", `/Created Subscription\//.test(document.querySelector('#sub-form-msg').innerText) || /Not created/.test(document.querySelector('#sub-form-msg').innerText)`, 10*time.Second)
		msg := evalJS[string](t, br, `document.querySelector('#sub-form-msg').innerText`)
		if !strings.Contains(msg, "Created Subscription/") {
			t.Fatalf("create from the manager: %s", msg)
		}
		id := strings.Fields(strings.TrimPrefix(msg[strings.Index(msg, "Subscription/"):], "Subscription/"))[0]
		br.waitFor(t, "status active in the list", fmt.Sprintf(`!!document.querySelector('#subs-body tr[data-id=%q] .st-active')`, id), 20*time.Second)
		select {
		case h := <-hooks:
			if !strings.Contains(h, "handshake") {
				t.Errorf("first rest-hook delivery is not a handshake: %.300s", h)
			}
		case <-time.After(5 * time.Second):
			t.Error("the receiver got no handshake")
		}
		br.screenshot(t, "subscriptions")
	})

	if errs := br.pageErrors(); len(errs) > 0 {
		t.Errorf("the page reported errors: %v", errs)
	}
}
