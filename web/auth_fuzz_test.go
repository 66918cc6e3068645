package web_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fhirsub/fhirsub/web"
)

// FuzzVerify feeds arbitrary token strings to HS256 and JWKS
// authenticators: they must never panic, and every failure must be a
// TokenError with a header-safe description.
func FuzzVerify(f *testing.F) {
	now := time.Now()
	hsTok := jwt.NewWithClaims(jwt.SigningMethodHS256, claimsAt(now, "patient/*.rs user/Observation.read"))
	hsTok.Header["kid"] = "k"
	hsValid, err := hsTok.SignedString([]byte(testSecret))
	if err != nil {
		f.Fatal(err)
	}
	ec := newEC(f, "e1")
	ecValid := ec.sign(f, claimsAt(now, "user/*.rs"))
	parts := strings.Split(hsValid, ".")
	for _, s := range []string{
		hsValid, ecValid, "", ".", "..", "...", "a.b.c", parts[0] + ".." + parts[2], parts[0] + "." + parts[1] + ".",
		"eyJhbGciOiJub25lIn0.e30.", "eyJhbGciOiJIUzI1NiJ9.bnVsbA.x", "eyJhbGciOiJIUzI1NiJ9.W10.x",
		"eyJ9.eyJ9.eyJ9", strings.Repeat("A", 20000), "Bearer " + hsValid, hsValid + " ", "\x00.\x00.\x00",
	} {
		f.Add(s)
	}
	hs, err := web.NewAuthenticator(context.Background(), web.AuthConfig{Mode: web.AuthHS256, Secret: []byte(testSecret),
		Issuer: testIssuer, Audience: testAudience})
	if err != nil {
		f.Fatal(err)
	}
	path := filepath.Join(f.TempDir(), "jwks.json")
	if err := os.WriteFile(path, jwks(ec, newRSA(f, "r1", 0)), 0o600); err != nil {
		f.Fatal(err)
	}
	js, err := web.NewAuthenticator(context.Background(), web.AuthConfig{Mode: web.AuthJWKS, JWKS: path,
		Issuer: testIssuer, Audience: testAudience})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		for _, a := range []*web.Authenticator{hs, js} {
			acc, err := a.Verify(context.Background(), tok)
			if err == nil {
				if acc == nil {
					t.Fatal("nil access without error")
				}
				continue
			}
			var te *web.TokenError
			if acc != nil || !errors.Is(err, web.ErrInvalidToken) || !errors.As(err, &te) {
				t.Fatalf("Verify(%q) = %v, %v", tok, acc, err)
			}
			for _, r := range te.Description {
				if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
					t.Fatalf("description %q is not header-safe", te.Description)
				}
			}
		}
	})
}
