package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/web"
)

const devSecret = "a-development-secret-of-32-bytes-or-more"

func TestTokenCmd(t *testing.T) {
	env := map[string]string{"FHIRSUB_JWT_SECRET": devSecret, "FHIRSUB_JWT_ISSUER": "https://iss"}
	var out, errOut bytes.Buffer
	err := tokenCmd(context.Background(), []string{"--scope", "patient/*.rs launch/patient", "--patient", "p-1",
		"--sub", "alice", "--ttl", "10m", "--aud", "https://aud"}, func(k string) string { return env[k] }, &out, &errOut)
	if err != nil {
		t.Fatalf("tokenCmd: %v (%s)", err, errOut.String())
	}
	tok := strings.TrimSpace(out.String())
	a, err := web.NewAuthenticator(context.Background(), web.AuthConfig{Mode: web.AuthHS256, Secret: []byte(devSecret),
		Issuer: "https://iss", Audience: "https://aud"})
	if err != nil {
		t.Fatal(err)
	}
	acc, err := a.Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("minted token rejected: %v", err)
	}
	if acc.Subject != "alice" || acc.Patient != "p-1" || acc.Scopes.String() != "patient/*.rs" {
		t.Errorf("access %+v", acc)
	}
	exp, _ := acc.Claims["exp"].(float64)
	if d := time.Until(time.Unix(int64(exp), 0)); d < 9*time.Minute || d > 11*time.Minute {
		t.Errorf("exp in %v, want about 10m", d)
	}
	// Another secret does not verify it.
	b, _ := web.NewAuthenticator(context.Background(), web.AuthConfig{Mode: web.AuthHS256, Secret: []byte(strings.Repeat("x", 40))})
	if _, err := b.Verify(context.Background(), tok); err == nil {
		t.Error("token verified with another secret")
	}
}

func TestTokenCmdErrors(t *testing.T) {
	none := func(string) string { return "" }
	for name, args := range map[string][]string{
		"no secret":    {"--scope", "user/*.rs"},
		"short secret": {"--secret", "short"},
		"bad scope":    {"--secret", devSecret, "--scope", "user/*.sr"},
		"empty scope":  {"--secret", devSecret, "--scope", " "},
		"bad patient":  {"--secret", devSecret, "--scope", "patient/*.rs", "--patient", "a/b"},
		"zero ttl":     {"--secret", devSecret, "--ttl", "0s"},
		"bad ttl":      {"--secret", devSecret, "--ttl", "soon"},
		"extra arg":    {"--secret", devSecret, "extra"},
	} {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			if err := tokenCmd(context.Background(), args, none, &out, io.Discard); err == nil {
				t.Fatalf("accepted, printed %q", out.String())
			}
			if out.Len() != 0 {
				t.Errorf("printed %q on error", out.String())
			}
		})
	}
}

func TestAuthSettings(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	tests := []struct {
		name    string
		s       authSettings
		addr    string
		on, err bool
	}{
		{"off on loopback", authSettings{}, "127.0.0.1:8080", false, false},
		{"off on localhost", authSettings{Mode: "off"}, "localhost:8080", false, false},
		{"off on ::1", authSettings{}, "[::1]:8080", false, false},
		{"off on all interfaces", authSettings{}, ":8080", false, true},
		{"off on a public address", authSettings{Mode: "off"}, "10.0.0.5:8080", false, true},
		{"off with insecure", authSettings{Insecure: true}, "0.0.0.0:8080", false, false},
		{"secret implies hs256", authSettings{Secret: devSecret}, "0.0.0.0:8080", true, false},
		{"hs256 without secret", authSettings{Mode: "hs256"}, "0.0.0.0:8080", false, true},
		{"secret and jwks", authSettings{Secret: devSecret, JWKS: "x.json"}, "127.0.0.1:1", false, true},
		{"jwks missing file", authSettings{Mode: "jwks", JWKS: "/nonexistent/jwks.json"}, "127.0.0.1:1", false, true},
		{"unknown mode", authSettings{Mode: "basic"}, "127.0.0.1:1", false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := tc.s.authenticator(ctx, tc.addr, log)
			if (err != nil) != tc.err {
				t.Fatalf("err %v, want error %v", err, tc.err)
			}
			if (a != nil) != tc.on {
				t.Errorf("authenticator %v, want on=%v", a, tc.on)
			}
		})
	}
}
