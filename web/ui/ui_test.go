package ui

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/web/client"
)

func get(t *testing.T, h http.Handler, path string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestServesDashboardAssetsAndClient(t *testing.T) {
	h := Handler(Options{})
	cases := []struct{ path, ctype, contains string }{
		{"/", "text/html; charset=utf-8", `<script type="module" src="/ui/app.js">`},
		{"/ui/index.html", "text/html; charset=utf-8", "Live feed"},
		{"/ui/app.js", "text/javascript; charset=utf-8", "from '/client/index.js'"},
		{"/ui/app.css", "text/css; charset=utf-8", ".feed-row"},
		{"/client/index.js", "text/javascript; charset=utf-8", "getClient"},
		{"/client/client.js", "text/javascript; charset=utf-8", "class Client"},
		{"/client/index.d.ts", "text/plain; charset=utf-8", "export declare class Client"},
		{"/client/package.json", "application/json", `"@fhirsub/client"`},
	}
	for _, c := range cases {
		w := get(t, h, c.path, nil)
		if w.Code != http.StatusOK {
			t.Errorf("GET %s: %d", c.path, w.Code)
			continue
		}
		if got := w.Header().Get("Content-Type"); got != c.ctype {
			t.Errorf("GET %s: Content-Type %q, want %q", c.path, got, c.ctype)
		}
		if !strings.Contains(w.Body.String(), c.contains) {
			t.Errorf("GET %s: body lacks %q", c.path, c.contains)
		}
		if w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff", c.path)
		}
	}
	if csp := get(t, h, "/", nil).Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("dashboard CSP = %q", csp)
	}
}

func TestETagRevalidation(t *testing.T) {
	h := Handler(Options{})
	w := get(t, h, "/ui/app.js", nil)
	etag := w.Header().Get("ETag")
	if etag == "" || w.Header().Get("Cache-Control") != "no-cache" {
		t.Fatalf("ETag %q, Cache-Control %q", etag, w.Header().Get("Cache-Control"))
	}
	if w2 := get(t, h, "/ui/app.js", map[string]string{"If-None-Match": etag}); w2.Code != http.StatusNotModified {
		t.Fatalf("revalidation: %d, want 304", w2.Code)
	}
	if other := get(t, h, "/ui/app.css", nil).Header().Get("ETag"); other == etag {
		t.Fatal("different files share an ETag")
	}
}

func TestUnknownPathsAndMethods(t *testing.T) {
	h := Handler(Options{})
	for _, p := range []string{"/ui/", "/ui/nope.js", "/client/node_modules/react/index.js", "/client/test/fakes.js", "/ui/../ui.go", "/x"} {
		if w := get(t, h, p, nil); w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, w.Code)
		}
	}
	r := httptest.NewRequest(http.MethodPost, "/ui/app.js", strings.NewReader("x"))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") == "" {
		t.Fatalf("POST: %d Allow=%q", w.Code, w.Header().Get("Allow"))
	}
}

// TestModuleImportsResolve checks that every relative or absolute import in
// the served modules names a file the handler serves, so the dashboard
// cannot break on a missing module.
func TestModuleImportsResolve(t *testing.T) {
	h, err := newHandler(static, client.FS)
	if err != nil {
		t.Fatal(err)
	}
	imp := regexp.MustCompile(`(?m)(?:^|\s)(?:import|export)\s[^'"]*?from\s+'([^']+)'|import\('([^']+)'\)`)
	for p, a := range h.files {
		if !strings.HasSuffix(p, ".js") || p == "/client/hooks.js" { // hooks.js imports the react peer dependency
			continue
		}
		for _, m := range imp.FindAllStringSubmatch(string(a.body), -1) {
			spec := m[1] + m[2]
			target := spec
			if strings.HasPrefix(spec, "./") {
				target = p[:strings.LastIndex(p, "/")+1] + spec[2:]
			} else if !strings.HasPrefix(spec, "/") {
				t.Errorf("%s imports bare specifier %q, which browsers cannot resolve", p, spec)
				continue
			}
			if _, ok := h.files[target]; !ok {
				t.Errorf("%s imports %q (%s), which is not served", p, spec, target)
			}
		}
	}
}

// TestAuthInfoAndDevLogin: /ui/auth says what sign-in the dashboard needs;
// /ui/dev-login answers 404 unless enabled, and 403 without the header a
// foreign page cannot send; its answers are never cached.
func TestAuthInfoAndDevLogin(t *testing.T) {
	off := Handler(Options{})
	if w := get(t, off, "/ui/auth", nil); w.Code != 200 || !strings.Contains(w.Body.String(), `"required":false`) || !strings.Contains(w.Body.String(), `"devLogin":false`) {
		t.Errorf("/ui/auth (off): %d %s", w.Code, w.Body)
	}
	if w := get(t, off, "/ui/dev-login", map[string]string{DevLoginHeader: "1"}); w.Code != http.StatusNotFound {
		t.Errorf("/ui/dev-login (off): %d, want 404", w.Code)
	}
	minted := 0
	on := Handler(Options{AuthRequired: true, DevLogin: func(context.Context) (DevToken, error) {
		minted++
		return DevToken{Token: "tok", Scope: "user/*.cruds", Expires: time.Now().Add(time.Hour)}, nil
	}})
	if w := get(t, on, "/ui/auth", nil); !strings.Contains(w.Body.String(), `"required":true`) || !strings.Contains(w.Body.String(), `"devLogin":true`) {
		t.Errorf("/ui/auth (on): %s", w.Body)
	}
	if w := get(t, on, "/ui/dev-login", nil); w.Code != http.StatusForbidden || minted != 0 {
		t.Errorf("/ui/dev-login without the header: %d (minted %d), want 403 and nothing minted", w.Code, minted)
	}
	w := get(t, on, "/ui/dev-login", map[string]string{DevLoginHeader: "1"})
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"access_token":"tok"`) || w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("/ui/dev-login: %d %s (Cache-Control %q)", w.Code, w.Body, w.Header().Get("Cache-Control"))
	}
}
