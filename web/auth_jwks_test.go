package web_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fhirsub/fhirsub/web"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testKey is a signing key with its JWK.
type testKey struct {
	kid string
	alg jwt.SigningMethod
	key any // *rsa.PrivateKey or *ecdsa.PrivateKey
	jwk map[string]any
}

var (
	keyOnce sync.Once
	rsaKeys [3]*rsa.PrivateKey
)

// rsaKey returns one of three RSA keys, generated once per test binary.
func rsaKey(t testing.TB, i int) *rsa.PrivateKey {
	keyOnce.Do(func() {
		for j := range rsaKeys {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			rsaKeys[j] = k
		}
	})
	return rsaKeys[i]
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func newRSA(t testing.TB, kid string, i int) testKey {
	k := rsaKey(t, i)
	return testKey{kid: kid, alg: jwt.SigningMethodRS256, key: k, jwk: map[string]any{
		"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
		"n": b64u(k.N.Bytes()), "e": b64u(big.NewInt(int64(k.E)).Bytes())}}
}

func newEC(t testing.TB, kid string) testKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := k.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	return testKey{kid: kid, alg: jwt.SigningMethodES256, key: k, jwk: map[string]any{
		"kty": "EC", "kid": kid, "crv": "P-256", "x": b64u(pub[1:33]), "y": b64u(pub[33:])}}
}

func jwks(keys ...testKey) []byte {
	var set []any
	for _, k := range keys {
		set = append(set, k.jwk)
	}
	raw, _ := json.Marshal(map[string]any{"keys": set})
	return raw
}

// jwksServer serves a replaceable key set and counts fetches.
type jwksServer struct {
	*httptest.Server
	body    atomic.Pointer[[]byte]
	fetches atomic.Int64
	down    atomic.Bool
}

func newJWKSServer(t *testing.T, keys ...testKey) *jwksServer {
	s := &jwksServer{}
	s.set(keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		if s.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(*s.body.Load())
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(keys ...testKey) { b := jwks(keys...); s.body.Store(&b) }

func (k testKey) sign(t testing.TB, c jwt.MapClaims) string {
	tok := jwt.NewWithClaims(k.alg, c)
	if k.kid != "" {
		tok.Header["kid"] = k.kid
	}
	s, err := tok.SignedString(k.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func claimsAt(now time.Time, scope string) jwt.MapClaims {
	return jwt.MapClaims{"iss": testIssuer, "aud": testAudience, "sub": "svc", "scope": scope,
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
}

func jwksAuth(t *testing.T, src string, clk *clock) *web.Authenticator {
	t.Helper()
	a, err := web.NewAuthenticator(context.Background(), web.AuthConfig{
		Mode: web.AuthJWKS, JWKS: src, Issuer: testIssuer, Audience: testAudience, Now: clk.Now,
		RefreshInterval: 10 * time.Minute, MinRefreshInterval: 30 * time.Second,
	})
	if err != nil {
		t.Fatalf("NewAuthenticator: %v", err)
	}
	return a
}

func wantInvalid(t *testing.T, a *web.Authenticator, tok, fragment string) {
	t.Helper()
	acc, err := a.Verify(context.Background(), tok)
	if err == nil {
		t.Fatalf("token accepted: %+v", acc)
	}
	var te *web.TokenError
	if !errors.Is(err, web.ErrInvalidToken) || !errors.As(err, &te) {
		t.Fatalf("error %v is not a TokenError", err)
	}
	if !strings.Contains(te.Description, fragment) {
		t.Errorf("description %q does not mention %q", te.Description, fragment)
	}
}

func TestJWKSVerify(t *testing.T) {
	clk := &clock{t: time.Now()}
	r1, e1 := newRSA(t, "r1", 0), newEC(t, "e1")
	srv := newJWKSServer(t, r1, e1)
	a := jwksAuth(t, srv.URL, clk)
	now := clk.Now()
	ctx := context.Background()

	for _, k := range []testKey{r1, e1} {
		acc, err := a.Verify(ctx, k.sign(t, claimsAt(now, "user/*.rs")))
		if err != nil {
			t.Fatalf("%s: %v", k.kid, err)
		}
		if acc.Subject != "svc" || !acc.CanRead("Observation") || acc.CanWrite("Observation") {
			t.Errorf("%s: access %+v", k.kid, acc)
		}
	}
	noKid := r1
	noKid.kid = ""
	if _, err := a.Verify(ctx, noKid.sign(t, claimsAt(now, "user/*.rs"))); err != nil {
		t.Errorf("token without kid: %v", err)
	}

	foreign := newRSA(t, "r1", 1) // same kid, other key
	wantInvalid(t, a, foreign.sign(t, claimsAt(now, "system/*.cruds")), "signature")
	wantInvalid(t, a, newRSA(t, "zzz", 1).sign(t, claimsAt(now, "user/*.rs")), "unknown signing key")
	// ES256 header naming the RSA key's kid.
	wantInvalid(t, a, testKey{kid: "r1", alg: jwt.SigningMethodES256, key: e1.key}.sign(t, claimsAt(now, "user/*.rs")), "unknown signing key")

	// Algorithm confusion: HS256 keyed with the RSA public key, as PEM and DER.
	der, err := x509.MarshalPKIXPublicKey(&rsaKey(t, 0).PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	for _, secret := range [][]byte{pemKey, der, []byte(r1.jwk["n"].(string))} {
		tok := signWith(t, jwt.SigningMethodHS256, secret, claimsAt(now, "system/*.cruds"), map[string]any{"kid": "r1"})
		wantInvalid(t, a, tok, "algorithm")
	}
	wantInvalid(t, a, unsigned(t, map[string]any{"alg": "none", "kid": "r1"}, claimsAt(now, "system/*.cruds")), "algorithm")
	wantInvalid(t, a, testKey{kid: "r1", alg: jwt.SigningMethodRS384, key: r1.key}.sign(t, claimsAt(now, "user/*.rs")), "algorithm")
	wantInvalid(t, a, testKey{kid: "r1", alg: jwt.SigningMethodPS256, key: r1.key}.sign(t, claimsAt(now, "user/*.rs")), "algorithm")

	// Time claims follow the injected clock.
	clk.Add(6 * time.Minute)
	wantInvalid(t, a, r1.sign(t, claimsAt(now, "user/*.rs")), "expired")
}

func TestJWKSRotation(t *testing.T) {
	clk := &clock{t: time.Now()}
	r1, r2, e2 := newRSA(t, "r1", 0), newRSA(t, "r2", 1), newEC(t, "e2")
	srv := newJWKSServer(t, r1)
	a := jwksAuth(t, srv.URL, clk)
	ctx := context.Background()
	if got := srv.fetches.Load(); got != 1 {
		t.Fatalf("%d fetches at start, want 1", got)
	}

	// The issuer rotates before we reload: an unknown kid right after the
	// last load is refused without a fetch (rate limit).
	srv.set(r1, r2, e2)
	wantInvalid(t, a, r2.sign(t, claimsAt(clk.Now(), "user/*.rs")), "unknown signing key")
	if got := srv.fetches.Load(); got != 1 {
		t.Fatalf("%d fetches, want 1 (rate-limited)", got)
	}

	// Past the minimum interval, the unknown kid triggers one reload.
	clk.Add(31 * time.Second)
	for _, k := range []testKey{r2, e2} {
		if _, err := a.Verify(ctx, k.sign(t, claimsAt(clk.Now(), "user/*.rs"))); err != nil {
			t.Fatalf("%s after rotation: %v", k.kid, err)
		}
	}
	if got := srv.fetches.Load(); got != 2 {
		t.Fatalf("%d fetches, want 2", got)
	}

	// A flood of unknown kids causes at most one fetch per interval.
	clk.Add(31 * time.Second)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := newRSA(t, "spray-"+string(rune('a'+i%26)), 2)
			if _, err := a.Verify(ctx, k.sign(t, claimsAt(clk.Now(), "user/*.rs"))); err == nil {
				t.Error("sprayed kid accepted")
			}
		}()
	}
	wg.Wait()
	if got := srv.fetches.Load(); got != 3 {
		t.Fatalf("%d fetches after the spray, want 3", got)
	}

	// r1 retired: tokens signed with it fail once the set is reloaded.
	srv.set(r2)
	clk.Add(11 * time.Minute) // past RefreshInterval: the next request reloads
	if _, err := a.Verify(ctx, r2.sign(t, claimsAt(clk.Now(), "user/*.rs"))); err != nil {
		t.Fatal(err)
	}
	if got := srv.fetches.Load(); got != 4 {
		t.Fatalf("%d fetches after the refresh interval, want 4", got)
	}
	wantInvalid(t, a, r1.sign(t, claimsAt(clk.Now(), "user/*.rs")), "unknown signing key")

	// The JWKS endpoint fails: the current keys stay in use.
	srv.down.Store(true)
	clk.Add(11 * time.Minute)
	if _, err := a.Verify(ctx, r2.sign(t, claimsAt(clk.Now(), "user/*.rs"))); err != nil {
		t.Fatalf("verify with the JWKS endpoint down: %v", err)
	}
	if got := srv.fetches.Load(); got != 5 {
		t.Fatalf("%d fetches, want 5", got)
	}
	// ... and failing reloads are rate-limited too.
	if _, err := a.Verify(ctx, r2.sign(t, claimsAt(clk.Now(), "user/*.rs"))); err != nil {
		t.Fatal(err)
	}
	if got := srv.fetches.Load(); got != 5 {
		t.Fatalf("%d fetches, want 5 (failed reload rate-limited)", got)
	}
}

func TestJWKSFileRotation(t *testing.T) {
	clk := &clock{t: time.Now()}
	e1, e2 := newEC(t, "e1"), newEC(t, "e2")
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, jwks(e1), 0o600); err != nil {
		t.Fatal(err)
	}
	a := jwksAuth(t, path, clk)
	if _, err := a.Verify(context.Background(), e1.sign(t, claimsAt(clk.Now(), "user/*.rs"))); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, jwks(e2), 0o600); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Minute)
	if _, err := a.Verify(context.Background(), e2.sign(t, claimsAt(clk.Now(), "user/*.rs"))); err != nil {
		t.Fatalf("rotated file key: %v", err)
	}
	wantInvalid(t, a, e1.sign(t, claimsAt(clk.Now(), "user/*.rs")), "unknown signing key")
}

func TestNewAuthenticatorErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, body []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, body, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ec384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	bad := newEC(t, "bad")
	bad.jwk["y"] = bad.jwk["x"] // not on the curve
	down := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(down.Close)
	tests := []struct {
		name string
		cfg  web.AuthConfig
	}{
		{"no mode", web.AuthConfig{}},
		{"unknown mode", web.AuthConfig{Mode: "basic"}},
		{"short secret", web.AuthConfig{Mode: web.AuthHS256, Secret: []byte("short")}},
		{"secret and jwks", web.AuthConfig{Mode: web.AuthHS256, Secret: []byte(testSecret), JWKS: "x"}},
		{"jwks without source", web.AuthConfig{Mode: web.AuthJWKS}},
		{"jwks with secret", web.AuthConfig{Mode: web.AuthJWKS, JWKS: "x", Secret: []byte(testSecret)}},
		{"leeway too large", web.AuthConfig{Mode: web.AuthHS256, Secret: []byte(testSecret), Leeway: time.Hour}},
		{"missing file", web.AuthConfig{Mode: web.AuthJWKS, JWKS: filepath.Join(dir, "none.json")}},
		{"url 404", web.AuthConfig{Mode: web.AuthJWKS, JWKS: down.URL}},
		{"not json", web.AuthConfig{Mode: web.AuthJWKS, JWKS: write("bad.json", []byte("{"))}},
		{"empty set", web.AuthConfig{Mode: web.AuthJWKS, JWKS: write("empty.json", []byte(`{"keys":[]}`))}},
		{"only oct key", web.AuthConfig{Mode: web.AuthJWKS, JWKS: write("oct.json", []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`))}},
		{"only small RSA", web.AuthConfig{Mode: web.AuthJWKS, JWKS: write("small.json", []byte(`{"keys":[{"kty":"RSA","n":"`+
			b64u(small.N.Bytes())+`","e":"AQAB"}]}`))}},
		{"only P-384", web.AuthConfig{Mode: web.AuthJWKS, JWKS: write("p384.json", []byte(`{"keys":[{"kty":"EC","crv":"P-384","x":"`+
			b64u(ec384.X.Bytes())+`","y":"`+b64u(ec384.Y.Bytes())+`"}]}`))}},
		{"only enc key", web.AuthConfig{Mode: web.AuthJWKS, JWKS: write("enc.json", func() []byte {
			k := newRSA(t, "enc", 0)
			k.jwk["use"] = "enc"
			return jwks(k)
		}())}},
		{"point off the curve", web.AuthConfig{Mode: web.AuthJWKS, JWKS: write("off.json", jwks(bad))}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if a, err := web.NewAuthenticator(context.Background(), tc.cfg); err == nil {
				t.Fatalf("accepted: %+v", a)
			}
		})
	}
}

// TestJWKSServer runs RS256 tokens through the REST API.
func TestJWKSServer(t *testing.T) {
	clk := &clock{t: time.Now()}
	r1 := newRSA(t, "r1", 0)
	js := newJWKSServer(t, r1)
	a := jwksAuth(t, js.URL, clk)
	srv := mustServer(t, func(c *web.Config) { c.Auth = a })
	now := clk.Now()
	r := srv.do("POST", "/Patient", patient("Jwks"), "Authorization", "Bearer "+r1.sign(t, claimsAt(now, "system/*.cruds"))).
		wantStatus(t, http.StatusCreated)
	path := "/Patient/" + str(r.JSON, "id")
	srv.do("GET", path, nil, "Authorization", "Bearer "+r1.sign(t, claimsAt(now, "user/Patient.r"))).wantStatus(t, http.StatusOK)
	der, _ := x509.MarshalPKIXPublicKey(&rsaKey(t, 0).PublicKey)
	confused := signWith(t, jwt.SigningMethodHS256, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
		claimsAt(now, "system/*.cruds"), map[string]any{"kid": "r1"})
	for name, tok := range map[string]string{
		"hs confusion": confused,
		"unknown kid":  newRSA(t, "r9", 1).sign(t, claimsAt(now, "system/*.cruds")),
	} {
		got := srv.do("GET", path, nil, "Authorization", "Bearer "+tok)
		got.wantOutcome(t, http.StatusUnauthorized, "invalid bearer token")
		if wa := got.Header.Get("WWW-Authenticate"); !strings.Contains(wa, `error="invalid_token"`) {
			t.Errorf("%s: WWW-Authenticate %q", name, wa)
		}
	}
}
