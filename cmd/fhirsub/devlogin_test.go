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

	"github.com/fhirsub/fhirsub/web/ui"
)

const dashSecret = "dev-login-secret-0123456789abcdef"

func startWith(t *testing.T, args ...string) *app {
	t.Helper()
	cfg, err := parseConfig(append([]string{"--addr", "127.0.0.1:0", "--data", t.TempDir()}, args...), func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a, err := start(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.shutdown(context.Background()) })
	return a
}

func getWith(t *testing.T, url string, hdr map[string]string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestDevLoginIsRefusedWhereItWouldOpenTheServer: the development login is
// off by default and refused with a JWKS, with authentication off and on a
// non-loopback address (unless --insecure).
func TestDevLoginIsRefusedWhereItWouldOpenTheServer(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // "" = accepted
	}{
		{[]string{"--jwt-secret", dashSecret, "--dev-login"}, ""},
		{[]string{"--dev-login"}, "needs HS256"},
		{[]string{"--jwks", "keys.json", "--dev-login"}, "refused with --auth jwks"},
		{[]string{"--auth", "jwks", "--jwks", "keys.json", "--dev-login"}, "refused with --auth jwks"},
		{[]string{"--addr", "0.0.0.0:8080", "--jwt-secret", dashSecret, "--dev-login"}, "not a loopback address"},
		{[]string{"--addr", "0.0.0.0:8080", "--jwt-secret", dashSecret, "--dev-login", "--insecure=true"}, ""},
	} {
		cfg, err := parseConfig(tc.args, func(string) string { return "" }, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		o, err := dashboardOptions(cfg, cfg.Auth.Secret != "" || cfg.Auth.JWKS != "", slog.New(slog.NewTextHandler(io.Discard, nil)))
		t.Logf("%v: %v", tc.args, err)
		switch {
		case tc.want == "" && (err != nil || o.DevLogin == nil):
			t.Errorf("%v refused: %v", tc.args, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: %v, want an error saying %q", tc.args, err, tc.want)
		}
	}
	cfg, _ := parseConfig([]string{"--jwt-secret", dashSecret}, func(string) string { return "" }, io.Discard)
	if o, _ := dashboardOptions(cfg, true, slog.Default()); o.DevLogin != nil || !o.AuthRequired {
		t.Error("the development login is on by default")
	}
}

// TestDevLoginThroughTheServer: /ui/auth tells the dashboard what sign-in
// it needs; /ui/dev-login mints a one-hour token the REST API accepts, only
// with the dashboard's header, and only when enabled.
func TestDevLoginThroughTheServer(t *testing.T) {
	on := startWith(t, "--jwt-secret", dashSecret, "--dev-login")
	code, b := getWith(t, on.baseURL+"/ui/auth", nil)
	if code != 200 || !bytes.Contains(b, []byte(`"required":true`)) || !bytes.Contains(b, []byte(`"devLogin":true`)) {
		t.Fatalf("GET /ui/auth: %d %s", code, b)
	}
	if code, b := getWith(t, on.baseURL+"/ui/dev-login", nil); code != http.StatusForbidden || !bytes.Contains(b, []byte(ui.DevLoginHeader)) {
		t.Errorf("dev login without the header: %d %s, want 403 naming the header", code, b)
	}
	code, b = getWith(t, on.baseURL+"/ui/dev-login", map[string]string{ui.DevLoginHeader: "1"})
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		Scope       string `json:"scope"`
	}
	if err := json.Unmarshal(b, &tok); err != nil || code != 200 || tok.AccessToken == "" {
		t.Fatalf("dev login: %d %s", code, b)
	}
	t.Logf("dev login: scope %s, expires in %ds", tok.Scope, tok.ExpiresIn)
	if tok.ExpiresIn <= 0 || tok.ExpiresIn > int(time.Hour/time.Second) {
		t.Errorf("dev token lives %ds, want at most an hour", tok.ExpiresIn)
	}
	if code, _ := getWith(t, on.baseURL+"/Patient", nil); code != http.StatusUnauthorized {
		t.Errorf("GET /Patient without a token: %d, want 401", code)
	}
	if code, b := getWith(t, on.baseURL+"/Patient", map[string]string{"Authorization": "Bearer " + tok.AccessToken}); code != 200 {
		t.Errorf("GET /Patient with the dev token: %d %s", code, b)
	}

	off := startWith(t, "--jwt-secret", dashSecret)
	if code, b := getWith(t, off.baseURL+"/ui/dev-login", map[string]string{ui.DevLoginHeader: "1"}); code != http.StatusNotFound || bytes.Contains(b, []byte("access_token")) {
		t.Errorf("dev login when off: %d %s, want 404", code, b)
	}
	if code, b := getWith(t, off.baseURL+"/ui/auth", nil); code != 200 || !bytes.Contains(b, []byte(`"devLogin":false`)) {
		t.Errorf("GET /ui/auth (dev login off): %d %s", code, b)
	}
	open := startWith(t)
	if code, b := getWith(t, open.baseURL+"/ui/auth", nil); code != 200 || !bytes.Contains(b, []byte(`"required":false`)) {
		t.Errorf("GET /ui/auth (auth off): %d %s", code, b)
	}
}

// TestBannerSaysHowToSignIn: the start-up banner suggests a demo command
// that works for the server's authentication, and never prints a secret.
func TestBannerSaysHowToSignIn(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{nil, []string{"demo --base-url http://localhost:"}},
		{[]string{"--jwt-secret", dashSecret}, []string{"--jwt-secret \"$FHIRSUB_JWT_SECRET\"", "token --secret"}},
		{[]string{"--jwt-secret", dashSecret, "--dev-login"}, []string{"Development login", "--jwt-secret \"$FHIRSUB_JWT_SECRET\""}},
		{[]string{"--jwks", "keys.json"}, []string{"--token \"$TOKEN\"", "identity provider"}},
	} {
		cfg, err := parseConfig(tc.args, func(string) string { return "" }, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		banner(&out, cfg, &app{baseURL: "http://localhost:8080", storeName: "sqlite x", authOn: len(tc.args) > 0})
		t.Logf("%v:\n%s", tc.args, out.String())
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("banner for %v lacks %q", tc.args, w)
			}
		}
		if strings.Contains(out.String(), dashSecret) {
			t.Errorf("banner prints the secret")
		}
	}
}
