package channels_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/channels"
	"github.com/fhirsub/fhirsub/conformance/smart"
)

func newBackport(t *testing.T, subs *fakeSubs, bt *channels.BindingTokens, max int) string {
	t.Helper()
	p, err := channels.NewBackport(channels.BackportConfig{Binder: subs, Tokens: bt, MaxBindings: max})
	if err != nil {
		t.Fatal(err)
	}
	return protoServer(t, p)
}

func issue(t *testing.T, bt *channels.BindingTokens, acc *smart.Access, ids ...string) string {
	t.Helper()
	tok, _, err := bt.Issue(acc, ids)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestBackportBindForms(t *testing.T) {
	subs := newFakeSubs()
	bt := mustTokens(t, channels.BindingTokensConfig{Secret: tokenSecret})
	url := newBackport(t, subs, bt, 3)
	ws := wsDial(t, url)
	t1 := issue(t, bt, smart.Full(), "a", "b")
	wsSend(t, ws, "bind-with-token "+t1)
	for _, want := range []string{`{"handshake":"a"}`, `{"handshake":"b"}`} {
		if got := wsRead(t, ws); got != want {
			t.Fatalf("got %s, want %s", got, want)
		}
	}
	wsSend(t, ws, "bind-with-token: "+issue(t, bt, smart.Full(), "c"))
	if got := wsRead(t, ws); got != `{"handshake":"c"}` {
		t.Fatalf("got %s", got)
	}
	// Already bound ids are kept as they are; over the limit is an error.
	wsSend(t, ws, `{"type":"bind-with-token","payload":{"token":"`+issue(t, bt, smart.Full(), "a", "d")+`"}}`)
	var m struct {
		Type    string
		Payload map[string]string
	}
	if err := json.Unmarshal([]byte(wsRead(t, ws)), &m); err != nil || m.Type != "error" || m.Payload["code"] != "too-many-bindings" {
		t.Fatalf("over the limit: %+v %v", m, err)
	}
	wsSend(t, ws, `{"type":"ping"}`)
	if got := wsRead(t, ws); got != `{"type":"pong"}` {
		t.Fatalf("got %s", got)
	}
	wsSend(t, ws, `{"type":"unbind-from-token","payload":{"token":"`+t1+`"}}`)
	if got := wsRead(t, ws); got != `{"type":"unbound","payload":{"subscriptions":["Subscription/a","Subscription/b"]}}` {
		t.Fatalf("got %s", got)
	}
	if n := subs.cancelled(); n != 2 {
		t.Fatalf("%d bindings cancelled, want 2", n)
	}
	// Room again: the JSON form binds.
	wsSend(t, ws, `{"type":"bind-with-token","payload":{"token":"`+issue(t, bt, smart.Full(), "d")+`"}}`)
	if got := wsRead(t, ws); got != `{"handshake":"d"}` {
		t.Fatalf("got %s", got)
	}
	wsSend(t, ws, "unbind-from-token: "+issue(t, bt, smart.Full(), "c", "d"))
	if got := wsRead(t, ws); !strings.Contains(got, `"Subscription/c","Subscription/d"`) {
		t.Fatalf("got %s", got)
	}
}

func TestBackportRefusals(t *testing.T) {
	subs := newFakeSubs()
	clk := &fakeClock{t: time.Now()}
	bt := mustTokens(t, channels.BindingTokensConfig{Secret: tokenSecret, TTL: time.Minute, Now: clk.Now})
	forger := mustTokens(t, channels.BindingTokensConfig{})
	url := newBackport(t, subs, bt, 0)
	clk.Add(-2 * time.Minute) // issued two minutes ago, for one minute
	expired := issue(t, bt, smart.Full(), "a")
	clk.Add(2 * time.Minute)
	patient := &smart.Access{Subject: "p", Patient: "p1", Scopes: smart.MustParseScopes("patient/*.rs")}
	for name, tc := range map[string]struct{ msg, reason string }{
		"expired":   {"bind-with-token " + expired, channels.ReasonInvalidToken},
		"forged":    {"bind-with-token " + issue(t, forger, smart.Full(), "a"), channels.ReasonInvalidToken},
		"malformed": {"bind-with-token abc", channels.ReasonInvalidToken},
		"unknown":   {"bind-with-token " + issue(t, bt, smart.Full(), "missing-1"), channels.ReasonNotFound},
		"rest-hook": {"bind-with-token " + issue(t, bt, smart.Full(), "rh-1"), channels.ReasonNotWebsocket},
		"forbidden": {"bind-with-token " + issue(t, bt, patient, "secret-1"), channels.ReasonForbidden},
		"garbage":   {"hello", channels.ReasonExpectedBind},
		"json":      {`{"type":"subscribe"}`, channels.ReasonExpectedBind},
		"unbind":    {"unbind-from-token " + issue(t, forger, smart.Full(), "a"), channels.ReasonInvalidToken},
	} {
		t.Run(name, func(t *testing.T) {
			ws := wsDial(t, url)
			wsSend(t, ws, tc.msg)
			expectWSClose(t, ws, channels.ClosePolicyViolation, tc.reason)
		})
	}
}

// TestBackportBindTimeout: a connection that never binds is closed with
// 1008 authentication-timeout; one that bound in time stays open past the
// timeout (its ping is answered afterwards).
func TestBackportBindTimeout(t *testing.T) {
	subs := newFakeSubs()
	bt := mustTokens(t, channels.BindingTokensConfig{Secret: tokenSecret})
	p, err := channels.NewBackport(channels.BackportConfig{Binder: subs, Tokens: bt, BindTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	url := protoServer(t, p)
	bound := wsDial(t, url) // dialled first: its timer fires before idle's
	idle := wsDial(t, url)
	wsSend(t, bound, "bind-with-token "+issue(t, bt, smart.Full(), "a"))
	if got := wsRead(t, bound); got != `{"handshake":"a"}` {
		t.Fatalf("got %s", got)
	}
	expectClose(t, idle, channels.ClosePolicyViolation, channels.ReasonAuthTimeout)
	// idle was closed after the timeout, so it has passed for bound too.
	wsSend(t, bound, `{"type":"ping"}`)
	if got := wsRead(t, bound); got != `{"type":"pong"}` {
		t.Fatalf("a bound connection after the bind timeout: got %s", got)
	}
}
