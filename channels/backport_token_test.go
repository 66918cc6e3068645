package channels_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fhirsub/fhirsub/channels"
	"github.com/fhirsub/fhirsub/conformance/smart"
)

var tokenSecret = []byte("0123456789abcdef0123456789abcdef")

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func mustTokens(t *testing.T, cfg channels.BindingTokensConfig) *channels.BindingTokens {
	t.Helper()
	bt, err := channels.NewBindingTokens(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return bt
}

func TestBindingTokens(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	bt := mustTokens(t, channels.BindingTokensConfig{Secret: tokenSecret, TTL: time.Minute, Now: clk.Now})
	acc := &smart.Access{Subject: "alice", Patient: "p1", Scopes: smart.MustParseScopes("patient/*.rs")}
	tok, exp, err := bt.Issue(acc, []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	if want := clk.Now().Add(time.Minute); !exp.Equal(want) {
		t.Errorf("expiry %v, want %v", exp, want)
	}
	c, err := bt.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Subscriptions, ",") != "a,b" || c.Access.Subject != "alice" || c.Access.Patient != "p1" ||
		c.Access.Scopes.String() != "patient/*.rs" || !c.Expires.Equal(exp) {
		t.Errorf("claims %+v / access %+v", c, c.Access)
	}

	// Another process with the same configured secret accepts it.
	other := mustTokens(t, channels.BindingTokensConfig{Secret: tokenSecret, Now: clk.Now})
	if _, err := other.Verify(tok); err != nil {
		t.Errorf("same secret, other issuer: %v", err)
	}
	// A random per-process secret does not.
	random := mustTokens(t, channels.BindingTokensConfig{Now: clk.Now})
	if _, err := random.Verify(tok); !errors.Is(err, channels.ErrBindingToken) {
		t.Errorf("forged (other secret): %v", err)
	}

	clk.Add(time.Minute + 10*time.Second)
	if _, err := bt.Verify(tok); !errors.Is(err, channels.ErrBindingToken) {
		t.Errorf("expired token accepted: %v", err)
	}
	if c, err := bt.VerifyIgnoringExpiry(tok); err != nil || len(c.Subscriptions) != 2 {
		t.Errorf("unbind with an expired token: %v", err)
	}

	bad := map[string]string{
		"garbage":   "not a token",
		"tampered":  tok[:len(tok)-2] + "xx",
		"alg none":  signed(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claimsFor(clk, "ws-binding")),
		"bearer":    signed(t, jwt.SigningMethodHS256, tokenSecret, claimsFor(clk, "")),
		"no access": signed(t, jwt.SigningMethodHS256, tokenSecret, jwt.MapClaims{"iss": "fhirsub", "aud": "fhirsub-ws-binding", "exp": clk.Now().Add(time.Minute).Unix(), "token_use": "ws-binding", "subscriptions": []string{"a"}}),
		"no subs":   signed(t, jwt.SigningMethodHS256, tokenSecret, jwt.MapClaims{"iss": "fhirsub", "aud": "fhirsub-ws-binding", "exp": clk.Now().Add(time.Minute).Unix(), "token_use": "ws-binding", "access": map[string]any{"scope": "system/*.rs"}}),
		"no exp":    signed(t, jwt.SigningMethodHS256, tokenSecret, jwt.MapClaims{"iss": "fhirsub", "aud": "fhirsub-ws-binding", "token_use": "ws-binding", "subscriptions": []string{"a"}, "access": map[string]any{"scope": "system/*.rs"}}),
	}
	for name, raw := range bad {
		if _, err := bt.Verify(raw); !errors.Is(err, channels.ErrBindingToken) {
			t.Errorf("%s: accepted (%v)", name, err)
		}
	}
}

func claimsFor(clk *fakeClock, use string) jwt.MapClaims {
	c := jwt.MapClaims{"iss": "fhirsub", "aud": "fhirsub-ws-binding", "exp": clk.Now().Add(time.Minute).Unix(),
		"subscriptions": []string{"a"}, "access": map[string]any{"scope": "system/*.rs"}, "scope": "system/*.rs"}
	if use != "" {
		c["token_use"] = use
	}
	return c
}

func signed(t *testing.T, m jwt.SigningMethod, key any, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBindingTokensConfig(t *testing.T) {
	if _, err := channels.NewBindingTokens(channels.BindingTokensConfig{Secret: []byte("short")}); err == nil {
		t.Error("a 5-byte secret was accepted")
	}
	if _, err := channels.NewBindingTokens(channels.BindingTokensConfig{TTL: 2 * time.Hour}); err == nil {
		t.Error("a 2h TTL was accepted")
	}
	bt := mustTokens(t, channels.BindingTokensConfig{})
	if bt.TTL() != 5*time.Minute {
		t.Errorf("default TTL %v", bt.TTL())
	}
	if _, _, err := bt.Issue(smart.Full(), nil); err == nil {
		t.Error("a token for no subscription was issued")
	}
	if _, _, err := bt.Issue(nil, []string{"a"}); err == nil {
		t.Error("a token without access was issued")
	}
}
