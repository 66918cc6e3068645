package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

// mustStart runs the whole server on a loopback port with its data in dir.
func mustStart(tb testing.TB, dir string) *app { return mustStartAt(tb, dir, "127.0.0.1:0") }

func post(tb testing.TB, url, body string) *http.Response {
	tb.Helper()
	resp, err := http.Post(url, "application/fhir+json", strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	return resp
}

func TestServeSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	a := mustStart(t, dir)
	resp := post(t, a.baseURL+"/Patient", `{"resourceType":"Patient","name":[{"family":"Restart"}]}`)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	loc := resp.Header.Get("Location")
	if err := a.shutdown(context.Background()); err != nil {
		t.Fatalf("shutdown: %v", err)
	}

	b := mustStart(t, dir)
	defer b.shutdown(context.Background())
	path := loc[strings.Index(loc, "/Patient/"):]
	resp, err := http.Get(b.baseURL + path)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("Restart")) {
		t.Fatalf("after restart GET %s: %d %s", path, resp.StatusCode, body)
	}
}

func TestHelpAndVersion(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, func(string) string { return "" }, &out, &errb); code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	for _, want := range []string{"FHIRSUB_ADDR", "FHIRSUB_DATA", "FHIRSUB_BASE_URL", "MONGODB_URI", "version"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help (on stdout) does not mention %s", want)
		}
	}
	out.Reset()
	if code := run(context.Background(), []string{"version"}, func(string) string { return "" }, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "fhirsub ") {
		t.Fatalf("version: %d %q", code, out.String())
	}
	if code := run(context.Background(), []string{"frobnicate"}, func(string) string { return "" }, &out, &errb); code == 0 {
		t.Fatal("unknown command succeeded")
	}
	if code := run(context.Background(), []string{"--max-body", "-3"}, func(string) string { return "" }, &out, &errb); code == 0 {
		t.Fatal("negative max-body accepted")
	}
}

func TestEnvironmentConfiguresServe(t *testing.T) {
	env := map[string]string{"FHIRSUB_ADDR": "127.0.0.1:9999", "FHIRSUB_BASE_URL": "https://fhir.example.org/r4/"}
	cfg, err := parseConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:9999" || cfg.BaseURL != "https://fhir.example.org/r4" {
		t.Fatalf("config from env: %+v", cfg)
	}
	cfg, err = parseConfig([]string{"--addr", "127.0.0.1:7000"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil || cfg.Addr != "127.0.0.1:7000" {
		t.Fatalf("flag must win over env: %+v %v", cfg, err)
	}
}
