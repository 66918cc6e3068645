package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// crossOriginProbe is the script a page of another site runs against the
// server: a create with a bearer token whose Location and ETag it reads,
// and the opening of a websocket. It leaves its findings in
// window.__cors.
const crossOriginProbe = `(async () => {
  const out = {};
  try {
    const r = await fetch(%[1]q + '/Patient', {method: 'POST',
      headers: {'Authorization': 'Bearer ' + %[2]q, 'Content-Type': 'application/fhir+json'},
      body: JSON.stringify({resourceType: 'Patient', name: [{family: %[3]q}]})});
    out.status = r.status;
    out.location = r.headers.get('Location') || '';
    out.etag = r.headers.get('ETag') || '';
  } catch (e) { out.fetchError = String(e); }
  out.websocket = await new Promise(done => {
    const ws = new WebSocket(%[1]q.replace(/^http/, 'ws') + '/websocket');
    ws.onopen = () => { ws.close(); done('open'); };
    ws.onerror = () => done('refused');
    setTimeout(() => done('no answer'), 5000);
  });
  window.__cors = JSON.stringify(out);
})()`

// corsOutcome is what crossOriginProbe found.
type corsOutcome struct {
	Status     int    `json:"status"`
	Location   string `json:"location"`
	ETag       string `json:"etag"`
	FetchError string `json:"fetchError"`
	Websocket  string `json:"websocket"`
}

// TestCrossOriginPagesInBrowser runs the shipped server with authentication
// on and --cors-origins naming one site, and in headless Chromium a page
// of that site and a page of another each call the API with a valid token
// and open a websocket. The allowed page creates a Patient, reads the
// answer's Location and ETag, and connects; the other page's create is
// blocked by the browser (and the answer it could not read stored
// nothing it was told about) and its websocket is refused at the upgrade.
func TestCrossOriginPagesInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	page := func() *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, "<!doctype html><title>another site</title><p>an app served from elsewhere</p>")
		}))
		t.Cleanup(s.Close)
		return s
	}
	allowed, other := page(), page()
	a := mustStartAt(t, t.TempDir(), freeAddr(t), "--jwt-secret", browserSecret, "--cors-origins", allowed.URL)
	t.Cleanup(func() { _ = a.shutdown(t.Context()) })
	tok, err := mintToken(mintOptions{Secret: []byte(browserSecret), Scope: "user/*.cruds", Subject: "cors-test", TTL: time.Hour, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	br := newBrowser(t)
	probe := func(site, family string) corsOutcome {
		br.run(t, 20*time.Second, chromedp.Navigate(site+"/"))
		br.run(t, 10*time.Second, js(fmt.Sprintf(crossOriginProbe, a.baseURL, tok, family)))
		br.waitFor(t, "the cross-origin probe of "+site, `window.__cors !== undefined`, 15*time.Second)
		var out corsOutcome
		if err := json.Unmarshal([]byte(evalJS[string](t, br, `window.__cors`)), &out); err != nil {
			t.Fatal(err)
		}
		t.Logf("page of %s: %+v", site, out)
		return out
	}

	got := probe(allowed.URL, "AllowedOrigin")
	if got.Status != http.StatusCreated || !strings.Contains(got.Location, "/Patient/") || got.ETag != `W/"1"` || got.Websocket != "open" {
		t.Errorf("the allowed site's page: %+v, want 201 with Location and ETag read, and its websocket open", got)
	}
	got = probe(other.URL, "OtherOrigin")
	if got.FetchError == "" || got.Status != 0 || got.Websocket != "refused" {
		t.Errorf("another site's page: %+v, want its fetch blocked and its websocket refused", got)
	}
	// the blocked create never ran: its preflight was refused
	req, _ := http.NewRequest("GET", a.baseURL+"/Patient?name:exact=OtherOrigin", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var found struct{ Total int }
	if err := json.NewDecoder(resp.Body).Decode(&found); err != nil || resp.StatusCode != http.StatusOK || found.Total != 0 {
		t.Errorf("Patients the other site's page created: %d (status %d, %v), want none", found.Total, resp.StatusCode, err)
	}
}
