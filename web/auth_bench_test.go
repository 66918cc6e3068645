package web_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fhirsub/fhirsub/web"
)

func benchVerify(b *testing.B, a *web.Authenticator, tok string) {
	b.Helper()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyHS256(b *testing.B) {
	a, err := web.NewAuthenticator(context.Background(), web.AuthConfig{Mode: web.AuthHS256, Secret: []byte(testSecret),
		Issuer: testIssuer, Audience: testAudience})
	if err != nil {
		b.Fatal(err)
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claimsAt(time.Now(), "patient/*.rs user/Observation.cruds")).
		SignedString([]byte(testSecret))
	if err != nil {
		b.Fatal(err)
	}
	benchVerify(b, a, tok)
}

func BenchmarkVerifyJWKS(b *testing.B) {
	r1, e1 := newRSA(b, "r1", 0), newEC(b, "e1")
	path := filepath.Join(b.TempDir(), "jwks.json")
	if err := os.WriteFile(path, jwks(r1, e1), 0o600); err != nil {
		b.Fatal(err)
	}
	a, err := web.NewAuthenticator(context.Background(), web.AuthConfig{Mode: web.AuthJWKS, JWKS: path,
		Issuer: testIssuer, Audience: testAudience})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("RS256", func(b *testing.B) { benchVerify(b, a, r1.sign(b, claimsAt(time.Now(), "user/*.rs"))) })
	b.Run("ES256", func(b *testing.B) { benchVerify(b, a, e1.sign(b, claimsAt(time.Now(), "user/*.rs"))) })
}
