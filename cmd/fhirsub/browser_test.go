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
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// mustStartAt runs the whole server on addr with its data in dir; extra
// are more serve flags.
func mustStartAt(tb testing.TB, dir, addr string, extra ...string) *app {
	tb.Helper()
	// Rest-hook receivers in tests listen on loopback, which the SSRF guard
	// refuses unless allow-listed.
	cfg, err := parseConfig(append([]string{"--addr", addr, "--data", dir, "--resthook-allow", "127.0.0.1/32"}, extra...),
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

// createAs POSTs a resource with a bearer token ("" = none) and returns
// its id.
func createAs(t *testing.T, base, token, body string) string {
	t.Helper()
	var res map[string]any
	if err := json.Unmarshal([]byte(body), &res); err != nil {
		t.Fatalf("bad test resource: %v", err)
	}
	hdr := http.Header{}
	if token != "" {
		hdr.Set("Authorization", "Bearer "+token)
	}
	code, out, err := fhirDoWith(context.Background(), http.MethodPost, base+"/"+res["resourceType"].(string), res, hdr)
	if err != nil || code != http.StatusCreated {
		t.Fatalf("create %s: %d %v %v", res["resourceType"], code, out, err)
	}
	id, _ := out["id"].(string)
	if id == "" {
		t.Fatalf("create: no id in %v", out)
	}
	return id
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

// browserSecret is the HS256 secret of the authentication-on run.
const browserSecret = "browser-test-secret-0123456789abcdef"

// startApp returns a starter of the real fhirsub server (start from
// app.go) with extra serve flags.
func startApp(extra ...string) starter {
	return func(t *testing.T, dir, addr string) served {
		a := mustStartAt(t, dir, addr, extra...)
		return served{baseURL: a.baseURL, stop: func() error { return a.shutdown(context.Background()) }}
	}
}

// TestDashboardInBrowser drives the dashboard in headless Chromium twice:
// with authentication off, and on (HS256, development login and a pasted
// token).
func TestDashboardInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	t.Run("auth off", func(t *testing.T) { dashboardScenario(t, startApp(), "") })
	t.Run("auth on", func(t *testing.T) {
		tok, err := mintToken(mintOptions{Secret: []byte(browserSecret), Scope: "user/*.cruds", Subject: "browser-test", TTL: time.Hour, Now: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		dashboardScenario(t, startApp("--jwt-secret", browserSecret, "--dev-login"), tok)
	})
}

// noRawRefs matches what a clinician should never have to read: a raw
// reference with a generated id.
var noRawRefs = regexp.MustCompile(`\b(ServiceRequest|Observation|Task|Patient|DiagnosticReport|MedicationRequest|Communication)/[A-Za-z0-9-]{8,}`)

// dashboardScenario drives the dashboard in Chromium against the server
// that startServer runs. With token != "", the server requires
// authentication: the page must sign in first (development login), and the
// test's own REST calls and the demo send token.
func dashboardScenario(t *testing.T, startServer starter, token string) {
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

	// The wiring is checked always: a dashboard or a channel that is not
	// mounted is a failure, not a skip.
	dash, ws := wired(t, a.baseURL)
	if !dash {
		t.Fatal("the dashboard is not mounted by cmd/fhirsub start(): mount ui.Handler on ui.Paths through web.Config.Handlers")
	}
	if !ws {
		t.Fatal("the legacy websocket channel /ws is not wired in cmd/fhirsub start()")
	}
	if !subscriptionsWired(t, a.baseURL) {
		t.Fatal("the server does not offer Subscription $status (subscriptions not wired in cmd/fhirsub start())")
	}

	// A critical result stored before the page opens, and one acknowledged
	// before it opens: the page lists the first and not the second.
	patient := createAs(t, a.baseURL, token, `{"resourceType":"Patient","name":[{"given":["Ada"],"family":"Critical"}],"gender":"female","birthDate":"1950-02-03"}`)
	earlier := createAs(t, a.baseURL, token, criticalPotassium(patient))
	ackedEarlier := createAs(t, a.baseURL, token, criticalPotassium(patient))
	createAs(t, a.baseURL, token, ackTaskJSON(ackedEarlier, patient))

	br.run(t, 20*time.Second, chromedp.Navigate(a.baseURL+"/"))
	if token != "" {
		br.waitFor(t, "the sign-in form", `!document.querySelector('#signin').hidden && !document.querySelector('#signin-dev').hidden`, 15*time.Second)
		if st := evalJS[string](t, br, `document.querySelector('#conn').dataset.state`); st == "live" {
			t.Fatalf("connection %q before signing in", st)
		}
		br.screenshot(t, "signin")
		br.run(t, 10*time.Second, chromedp.Click(chromedp.CSS(`#signin-dev`)))
		br.waitFor(t, "the dashboard after the development login", `document.querySelector('#signin').hidden && !document.querySelector('#sign-out').hidden`, 15*time.Second)
	}
	br.waitFor(t, "the live connection", `document.querySelector('#conn').dataset.state === 'live'`, 15*time.Second)

	t.Run("critical results stored before opening are loaded", func(t *testing.T) {
		br.waitFor(t, "the earlier critical result", fmt.Sprintf(`!!document.querySelector('#crit-list [data-id="Observation/%s"]')`, earlier), 10*time.Second)
		acked := evalJS[bool](t, br, fmt.Sprintf(`!!document.querySelector('#crit-list [data-id="Observation/%s"]')`, ackedEarlier))
		status := evalJS[string](t, br, `document.querySelector('#crit-status').innerText`)
		t.Logf("critical panel status: %q", status)
		if acked {
			t.Error("a result acknowledged on the server before the page opened is listed")
		}
	})

	var live string
	t.Run("critical result reaches feed, panel and badge", func(t *testing.T) {
		live = createAs(t, a.baseURL, token, criticalPotassium(patient))
		sel := fmt.Sprintf(`[data-id="Observation/%s"]`, live)
		br.waitFor(t, "the feed row", fmt.Sprintf(`!!document.querySelector('#feed-rows %s')`, sel), 10*time.Second)
		br.waitFor(t, "the critical panel entry", fmt.Sprintf(`!!document.querySelector('#crit-list %s')`, sel), 5*time.Second)
		br.waitFor(t, "the badge", `(() => { const b = document.querySelector('#badge'); return !b.hidden && b.textContent === document.querySelector('#crit-count').textContent })()`, 5*time.Second)
		text := evalJS[string](t, br, fmt.Sprintf(`document.querySelector('#crit-list %s').innerText`, sel))
		for _, want := range []string{"Potassium", "6.9 mmol/L", "HH", "Ada Critical"} {
			if !strings.Contains(text, want) {
				t.Errorf("critical entry %q lacks %q", text, want)
			}
		}
		row := evalJS[string](t, br, fmt.Sprintf(`document.querySelector('#feed-rows %s').innerText`, sel))
		if !strings.Contains(row, "Observation") || !strings.Contains(strings.ToLower(row), "created") || !strings.Contains(row, "Ada Critical") {
			t.Errorf("feed row %q (want the type, the action and the patient's name)", row)
		}
	})

	t.Run("acknowledgement is stored on the server and seen live", func(t *testing.T) {
		// This dashboard acknowledges: a Task focused on the Observation.
		// The panel redraws as names resolve: find and click in one step.
		br.waitFor(t, "the Acknowledge button", fmt.Sprintf(`(() => { const b = document.querySelector('#crit-list [data-id="Observation/%s"] button'); if (!b) return false; b.click(); return true })()`, live), 5*time.Second)
		br.waitFor(t, "the entry to leave the panel", fmt.Sprintf(`!document.querySelector('#crit-list [data-id="Observation/%s"]')`, live), 10*time.Second)
		hdr := http.Header{}
		if token != "" {
			hdr.Set("Authorization", "Bearer "+token)
		}
		code, b, err := fhirDoWith(context.Background(), http.MethodGet, a.baseURL+"/Task?focus=Observation/"+live+"&code="+url.QueryEscape("https://fhirsub.org/CodeSystem/dashboard-task|acknowledge-critical-result"), nil, hdr)
		if err != nil || code != 200 {
			t.Fatalf("search the acknowledgement: %d %v", code, err)
		}
		n := len(asSlice(b["entry"]))
		t.Logf("acknowledgement Tasks on the server for Observation/%s: %d", live, n)
		if n != 1 {
			t.Errorf("%d acknowledgement Tasks on the server, want 1", n)
		}
		// A colleague acknowledges another result elsewhere: it leaves this
		// dashboard live, through the websocket feed.
		createAs(t, a.baseURL, token, ackTaskJSON(earlier, patient))
		br.waitFor(t, "the colleague's acknowledgement", fmt.Sprintf(`!document.querySelector('#crit-list [data-id="Observation/%s"]')`, earlier), 10*time.Second)
		br.waitFor(t, "the badge to count what is left", `document.querySelector('#badge').hidden && document.querySelector('#crit-count').hidden`, 5*time.Second)
	})

	t.Run("live traffic, filters, names and the bell", func(t *testing.T) {
		before := evalJS[int](t, br, `window.fhirsub.feed.events.length`)
		overflow(t, br, "live view before the demo")
		cfg := &demoConfig{BaseURL: a.baseURL, Rate: 150, Patients: 8, Duration: 2 * time.Second, Seed: 11, Token: token}
		type result struct {
			stats *demoStats
			err   error
		}
		done := make(chan result, 1)
		go func() {
			stats, err := runDemo(context.Background(), cfg, io.Discard, io.Discard)
			done <- result{stats, err}
		}()
		br.waitFor(t, "demo traffic on the page", fmt.Sprintf(`window.fhirsub.feed.events.length >= %d`, before+5), 15*time.Second)
		overflow(t, br, "live view during the demo")
		r := <-done
		stats, err := r.stats, r.err
		if err != nil || stats.errors != 0 {
			t.Fatalf("demo traffic: %v, %d errors", err, stats.errors)
		}
		total := before
		for _, n := range stats.created {
			total += n
		}
		for _, n := range stats.updated {
			total += n
		}
		br.waitFor(t, "every demo event in the feed", fmt.Sprintf(`window.fhirsub.feed.events.length >= %d`, total), 15*time.Second)
		n := evalJS[int](t, br, `window.fhirsub.feed.events.length`)
		t.Logf("feed: %d events, server wrote %d", n, total)
		if n != total {
			t.Errorf("feed has %d events, server wrote %d (duplicates or losses)", n, total)
		}
		domRows := evalJS[int](t, br, `document.querySelectorAll('#feed-rows .feed-row').length`)
		if domRows == 0 || domRows > 80 {
			t.Errorf("feed renders %d DOM rows; want a window (1..80)", domRows)
		}
		br.waitFor(t, "orders on the board", `document.querySelectorAll('#order-board .order-card').length > 0`, 5*time.Second)

		// The bell counts the unacknowledged critical results, not events.
		badge := evalJS[string](t, br, `document.querySelector('#badge').hidden ? '0' : document.querySelector('#badge').textContent`)
		crit := evalJS[int](t, br, `window.fhirsub.critical.size`)
		t.Logf("bell %s, unacknowledged critical results %d, feed events %d", badge, crit, n)
		if badge != fmt.Sprint(crit) || crit == 0 {
			t.Errorf("bell shows %s, want the %d unacknowledged critical results (demo traffic has some)", badge, crit)
		}

		// Names, not codes or raw references, in the notification center
		// (references resolve once; wait for the names to arrive).
		br.run(t, 5*time.Second, chromedp.Click(chromedp.CSS(`#bell`)))
		br.waitFor(t, "resolved names in the notifications", `(() => { const t = document.querySelector('#notif-list').innerText; return t.length > 0 && !/\b(ServiceRequest|Observation|Task|Patient|DiagnosticReport|MedicationRequest|Communication)\/[A-Za-z0-9-]{8,}/.test(t) })()`, 10*time.Second)
		drawer := evalJS[string](t, br, `document.querySelector('#notif-list').innerText`)
		br.screenshot(t, "notifications"+authSuffix(token != ""))
		if m := noRawRefs.FindString(drawer); m != "" {
			t.Errorf("notification center shows the raw reference %s", m)
		}
		if regexp.MustCompile(`(^|\n)\d{5,}( |$)`).MatchString(drawer) {
			t.Errorf("notification center shows a bare code:\n%.600s", drawer)
		}
		br.run(t, 5*time.Second, chromedp.Click(chromedp.CSS(`#bell`)))

		// Filter by resource type.
		br.run(t, 5*time.Second, chromedp.SetValue(chromedp.CSS(`#f-type`), "Observation"),
			js(`document.querySelector('#f-type').dispatchEvent(new Event('change'))`))
		br.waitFor(t, "the type filter", `[...document.querySelectorAll('#feed-rows .c-type')].every(e => e.textContent === 'Observation')`, 5*time.Second)
		br.run(t, 5*time.Second, js(`(() => { const s = document.querySelector('#f-type'); s.selectedIndex = 0; s.dispatchEvent(new Event('change')) })()`))
	})

	t.Run("12,000 events keep a bounded feed", func(t *testing.T) {
		// 12,000 more events: the feed keeps at most 10,000 (+ slack) and
		// the DOM only the visible window.
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
		cfg, err := parseConfig([]string{"--addr", addr, "--data", dir}, func(string) string { return "" }, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		st, _, err := openStore(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
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
		again := createAs(t, a.baseURL, token, criticalPotassium(patient))

		br.waitFor(t, "the reconnection", `document.querySelector('#conn').dataset.state === 'live'`, 20*time.Second)
		for _, id := range []string{missed.ID, again} {
			br.waitFor(t, "Observation/"+id+" in the feed",
				fmt.Sprintf(`window.fhirsub.feed.events.some(e => e.resourceId === %q)`, id), 10*time.Second)
		}
		// A later marker proves that any duplicate would have arrived.
		marker := createAs(t, a.baseURL, token, `{"resourceType":"Patient","name":[{"family":"Marker"}]}`)
		br.waitFor(t, "the marker", fmt.Sprintf(`window.fhirsub.feed.events.some(e => e.resourceId === %q)`, marker), 10*time.Second)
		dup := evalJS[int](t, br, fmt.Sprintf(`window.fhirsub.feed.events.filter(e => e.resourceId === %q || e.resourceId === %q).length`, missed.ID, again))
		if dup != 2 {
			t.Errorf("after replay the feed holds %d events for the missed and the live Observation, want 2 (no duplicates)", dup)
		}
	})

	t.Run("subscription manager creates an active subscription", func(t *testing.T) {
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
		br.screenshot(t, "subscriptions"+authSuffix(token != ""))
		br.run(t, 10*time.Second, js(`location.hash = ''`))
	})

	t.Run("layout holds at 1280, 1600 and 1920 px", func(t *testing.T) {
		layoutChecks(t, br, token != "")
	})

	if token != "" {
		t.Run("sign out, then sign in with a pasted token", func(t *testing.T) {
			br.run(t, 10*time.Second, chromedp.Click(chromedp.CSS(`#sign-out`)))
			br.waitFor(t, "the sign-in form", `!!document.querySelector('#signin') && !document.querySelector('#signin').hidden`, 15*time.Second)
			br.run(t, 10*time.Second, chromedp.SendKeys(chromedp.CSS(`#signin-token`), "not-a-token"), chromedp.Click(chromedp.CSS(`#signin-submit`)))
			br.waitFor(t, "the refusal", `/not a JWT/.test(document.querySelector('#signin-msg').innerText)`, 5*time.Second)
			br.run(t, 10*time.Second, js(`document.querySelector('#signin-token').value = ''`),
				chromedp.SendKeys(chromedp.CSS(`#signin-token`), token), chromedp.Click(chromedp.CSS(`#signin-submit`)))
			br.waitFor(t, "the live connection with the pasted token", `document.querySelector('#signin').hidden && document.querySelector('#conn').dataset.state === 'live'`, 15*time.Second)
			br.waitFor(t, "the signed-in subject", `document.querySelector('#who').textContent === 'browser-test'`, 5*time.Second)
		})
	}

	if errs := br.pageErrors(); len(errs) > 0 {
		t.Errorf("the page reported errors: %v", errs)
	}
}

func authSuffix(on bool) string {
	if on {
		return "-auth"
	}
	return ""
}

// ackTaskJSON is an acknowledgement as the dashboard stores it (acks.js):
// a completed Task focused on the Observation.
func ackTaskJSON(obs, patient string) string {
	return fmt.Sprintf(`{"resourceType":"Task","status":"completed","intent":"order",
		"code":{"coding":[{"system":"https://fhirsub.org/CodeSystem/dashboard-task","code":"acknowledge-critical-result"}],"text":"Critical result acknowledged"},
		"focus":{"reference":"Observation/%s"},"for":{"reference":"Patient/%s"},"owner":{"display":"a colleague"}}`, obs, patient)
}

// layoutChecks loads the live view and the subscriptions view (with a
// filter row) at three desktop widths, saves screenshots, and checks that
// nothing overflows horizontally and the subscriptions table's ID column
// is in view.
func layoutChecks(t *testing.T, br *browser, auth bool) {
	defer br.run(t, 10*time.Second, chromedp.EmulateReset(), js(`location.hash = ''`))
	for _, w := range []int64{1280, 1600, 1920} {
		br.run(t, 10*time.Second, chromedp.EmulateViewport(w, 900), js(`location.hash = ''`))
		br.waitFor(t, "the live view", `!document.querySelector('#view-live').hidden`, 5*time.Second)
		overflow(t, br, fmt.Sprintf("live view at %d px", w))
		br.screenshot(t, fmt.Sprintf("dashboard-%d%s", w, authSuffix(auth)))

		br.run(t, 10*time.Second, js(`location.hash = 'subscriptions'`))
		br.waitFor(t, "the subscriptions view with topics", `!document.querySelector('#view-subscriptions').hidden && document.querySelectorAll('#sub-topic option').length > 0`, 10*time.Second)
		br.run(t, 5*time.Second,
			chromedp.SetValue(chromedp.CSS(`#sub-topic`), "https://fhirsub.org/SubscriptionTopic/critical-result"),
			js(`document.querySelector('#sub-topic').dispatchEvent(new Event('change'))`),
			chromedp.Click(chromedp.CSS(`#sub-add-filter`)))
		// A subscription with a long endpoint, so the table has a row.
		br.waitFor(t, "the subscriptions table", `document.querySelectorAll('#subs-body tr').length > 0`, 10*time.Second)
		overflow(t, br, fmt.Sprintf("subscriptions view at %d px", w))
		idCol := evalJS[string](t, br, `(() => {
			const th = document.querySelector('.table thead th');
			const wrap = document.querySelector('.table-wrap').getBoundingClientRect();
			const r = th.getBoundingClientRect();
			const ok = th.textContent === 'ID' && r.width > 0 && r.left >= 0 && r.left >= wrap.left - 1 && r.right <= Math.min(wrap.right, innerWidth) + 1;
			return ok ? '' : 'ID column at ' + Math.round(r.left) + '..' + Math.round(r.right) + ', table area ' + Math.round(wrap.left) + '..' + Math.round(wrap.right) + ', viewport ' + innerWidth;
		})()`)
		if idCol != "" {
			t.Errorf("at %d px the subscriptions table's ID column is not visible: %s", w, idCol)
		}
		br.screenshot(t, fmt.Sprintf("subscriptions-%d%s", w, authSuffix(auth)))
	}
}

// overflow fails the test when the page scrolls horizontally or an element
// sticks out of the viewport on the right.
func overflow(t *testing.T, br *browser, what string) {
	t.Helper()
	res := evalJS[string](t, br, `(() => {
		const out = [];
		if (document.documentElement.scrollWidth > innerWidth) out.push('document ' + document.documentElement.scrollWidth + ' > ' + innerWidth);
		for (const sel of ['main', '.table-wrap']) {
			const e = document.querySelector(sel);
			if (e && e.offsetParent !== null && (e.scrollWidth > e.clientWidth || e.scrollLeft > 0)) out.push(sel + ' scrolls horizontally: ' + e.scrollWidth + ' > ' + e.clientWidth);
		}
		for (const e of document.querySelectorAll('body *')) {
			if (e.offsetParent === null) continue;
			const r = e.getBoundingClientRect();
			if (r.width > 0 && r.right > innerWidth + 1) { out.push((e.id ? '#' + e.id : e.tagName.toLowerCase() + '.' + e.className) + ' right ' + Math.round(r.right)); if (out.length > 5) break; }
		}
		return out.join('; ');
	})()`)
	t.Logf("%s: scrollWidth ok=%v", what, res == "")
	if res != "" {
		t.Errorf("%s overflows horizontally: %s", what, res)
	}
}
