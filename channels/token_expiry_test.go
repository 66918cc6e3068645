package channels_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/fhirsub/fhirsub/channels"
	"github.com/fhirsub/fhirsub/conformance/smart"
)

// expiringAccess is a bearer's access whose exp claim is at exp.
func expiringAccess(exp time.Time) *smart.Access {
	return &smart.Access{Subject: "u", Scopes: smart.MustParseScopes("user/*.rs"),
		Claims: map[string]any{"exp": float64(exp.Unix())}}
}

// expiringVerifier accepts "short" (a bearer expiring at exp) only.
type expiringVerifier struct{ exp time.Time }

func (v expiringVerifier) Verify(_ context.Context, raw string) (*smart.Access, error) {
	if raw != "short" {
		return nil, errors.New("bad token")
	}
	return expiringAccess(v.exp), nil
}

func TestBindingTokenCappedAtBearer(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	bt := mustTokens(t, channels.BindingTokensConfig{Secret: tokenSecret, TTL: 5 * time.Minute, Now: clk.Now})

	bearerExp := clk.Now().Add(30 * time.Second)
	tok, exp, err := bt.Issue(expiringAccess(bearerExp), []string{"a"})
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(bearerExp) {
		t.Errorf("binding token expires %v, want the bearer's %v", exp, bearerExp)
	}
	c, err := bt.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Expires.Equal(bearerExp) || !c.BearerExpires.Equal(bearerExp) {
		t.Errorf("claims expire %v, bearer %v; want both %v", c.Expires, c.BearerExpires, bearerExp)
	}

	// A long-lived bearer: the TTL applies, the bearer's exp is carried.
	long := clk.Now().Add(time.Hour)
	tok, exp, err = bt.Issue(expiringAccess(long), []string{"a"})
	if err != nil {
		t.Fatal(err)
	}
	if want := clk.Now().Add(5 * time.Minute); !exp.Equal(want) {
		t.Errorf("binding token expires %v, want %v", exp, want)
	}
	if c, err = bt.Verify(tok); err != nil || !c.BearerExpires.Equal(long) {
		t.Errorf("bearer expiry %v (%v), want %v", c, err, long)
	}

	// Authentication off (no claims): the TTL, no bearer expiry.
	tok, _, err = bt.Issue(smart.Full(), []string{"a"})
	if err != nil {
		t.Fatal(err)
	}
	if c, err = bt.Verify(tok); err != nil || !c.BearerExpires.IsZero() {
		t.Errorf("full access: %+v %v", c, err)
	}
}

func TestR4TokenExpiry(t *testing.T) {
	for _, how := range []string{"query", "message"} {
		t.Run(how, func(t *testing.T) {
			subs := newFakeSubs()
			url := newR4(t, channels.R4Config{Binder: subs, Auth: expiringVerifier{time.Now().Add(1500 * time.Millisecond)}})
			var ws *websocket.Conn
			if how == "query" {
				ws = wsDial(t, url+"?access_token=short")
			} else {
				ws = wsDial(t, url)
				wsSend(t, ws, `{"type":"auth","data":{"token":"short"}}`)
			}
			wsSend(t, ws, "bind 1")
			if got := wsRead(t, ws); got != "bound 1" {
				t.Fatalf("got %q", got)
			}
			expectWSClose(t, ws, channels.ClosePolicyViolation, channels.ReasonTokenExpired)
			eventually(t, "binding ended", func() bool { return subs.cancelled() >= 1 })
		})
	}
}

func TestBackportTokenExpiry(t *testing.T) {
	subs := newFakeSubs()
	bt := mustTokens(t, channels.BindingTokensConfig{Secret: tokenSecret})
	url := newBackport(t, subs, bt, 5)
	ws := wsDial(t, url)
	wsSend(t, ws, "bind-with-token "+issue(t, bt, expiringAccess(time.Now().Add(1500*time.Millisecond)), "a"))
	if got := wsRead(t, ws); got != `{"handshake":"a"}` {
		t.Fatalf("got %s", got)
	}
	expectWSClose(t, ws, channels.ClosePolicyViolation, channels.ReasonTokenExpired)
	eventually(t, "binding ended", func() bool { return subs.cancelled() >= 1 })

	// A later binding with a longer-lived token does not extend the
	// connection: the earliest expiry wins.
	ws = wsDial(t, url)
	wsSend(t, ws, "bind-with-token "+issue(t, bt, expiringAccess(time.Now().Add(1500*time.Millisecond)), "b"))
	if got := wsRead(t, ws); got != `{"handshake":"b"}` {
		t.Fatalf("got %s", got)
	}
	wsSend(t, ws, "bind-with-token "+issue(t, bt, expiringAccess(time.Now().Add(time.Hour)), "c"))
	if got := wsRead(t, ws); got != `{"handshake":"c"}` {
		t.Fatalf("got %s", got)
	}
	expectWSClose(t, ws, channels.ClosePolicyViolation, channels.ReasonTokenExpired)
}
