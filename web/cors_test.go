package web_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fhirsub/fhirsub/web"
)

// TestCORS: with origins configured, a page of an allowed origin gets its
// preflight answered without a token and every answer marked readable,
// errors included, with the headers a FHIR client reads exposed; any other
// origin gets no such mark, so its page cannot read the answer. Without
// origins configured no answer carries one.
func TestCORS(t *testing.T) {
	a := hsAuthenticator(t)
	const app, evil = "https://app.example.org", "https://evil.example"
	s := mustServer(t, func(c *web.Config) { c.Auth = a; c.CORSOrigins = web.Origins{app} })
	tok := "Bearer " + signHS(t, claims("user/*.cruds"))

	pre := s.do("OPTIONS", "/Patient", nil, "Origin", app, "Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "authorization,content-type,if-none-exist")
	if pre.Status != http.StatusNoContent || pre.Header.Get("Access-Control-Allow-Origin") != app ||
		!strings.Contains(pre.Header.Get("Access-Control-Allow-Headers"), "If-None-Exist") ||
		!strings.Contains(pre.Header.Get("Access-Control-Allow-Methods"), "PATCH") {
		t.Errorf("preflight of an allowed origin: %d %v", pre.Status, pre.Header)
	}
	r := s.do("POST", "/Patient", patient("Cors"), "Origin", app, "Authorization", tok).wantStatus(t, http.StatusCreated)
	if r.Header.Get("Access-Control-Allow-Origin") != app || !strings.Contains(r.Header.Get("Access-Control-Expose-Headers"), "Location") ||
		!strings.Contains(r.Header.Get("Vary"), "Origin") {
		t.Errorf("a create from an allowed origin: %v", r.Header)
	}
	r = s.do("GET", "/Patient", nil, "Origin", app)
	r.wantOutcome(t, http.StatusUnauthorized, "")
	if r.Header.Get("Access-Control-Allow-Origin") != app {
		t.Errorf("a 401 to an allowed origin is not readable by its page: %v", r.Header)
	}
	if r.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("credentials allowed: %v", r.Header)
	}

	for _, origin := range []string{evil, "https://app.example.org.evil.example", "http://app.example.org", "null"} {
		pre := s.do("OPTIONS", "/Patient", nil, "Origin", origin, "Access-Control-Request-Method", "POST")
		r := s.do("GET", "/Patient", nil, "Origin", origin, "Authorization", tok).wantStatus(t, http.StatusOK)
		if got := pre.Header.Get("Access-Control-Allow-Origin") + r.Header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("origin %s was allowed: %q", origin, got)
		}
	}

	plain := mustServer(t, func(c *web.Config) { c.Auth = a })
	r = plain.do("GET", "/Patient", nil, "Origin", app, "Authorization", tok).wantStatus(t, http.StatusOK)
	if got := r.Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("no origins configured, yet %q", got)
	}

	// the CapabilityStatement says so (rest.security.cors)
	cors := func(s *testServer) string {
		cs := s.do("GET", "/metadata", nil).wantStatus(t, http.StatusOK)
		return str(cs.JSON, "rest", 0, "security", "cors")
	}
	if got, none := cors(s), cors(plain); got != "true" || none != "" {
		t.Errorf("rest.security.cors %q with origins, %q without; want true and absent", got, none)
	}
}

// TestOriginsCheckWebsocket: a websocket upgrade without Origin, from the
// server's own origin or from an allowed one connects; from any other
// origin it does not; "*" allows any.
func TestOriginsCheckWebsocket(t *testing.T) {
	req := func(origin string) *http.Request {
		r := httptest.NewRequest("GET", "http://fhir.example:8080/websocket", nil)
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		return r
	}
	o := web.Origins{"https://app.example.org"}
	for origin, want := range map[string]bool{
		"": true, "http://fhir.example:8080": true, "http://FHIR.example:8080": true, "https://app.example.org": true,
		"https://evil.example": false, "http://fhir.example:9090": false, "null": false,
	} {
		if got := o.CheckWebsocket(req(origin)); got != want {
			t.Errorf("origin %q: %v, want %v", origin, got, want)
		}
	}
	if !(web.Origins{"*"}).CheckWebsocket(req("https://anyone.example")) || (web.Origins{}).CheckWebsocket(req("https://anyone.example")) {
		t.Error("* allows any origin; none allows none but the server's own")
	}
}
