package channels_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/fhirsub/fhirsub/channels"
	"github.com/fhirsub/fhirsub/conformance/smart"
)

// TestR4BindingEndsWithItsSubscription: when a bound subscription is
// deleted the client is told, the connection stays open for its other
// bindings, and binding the id again is refused as an unknown
// subscription instead of answered from the ended binding.
func TestR4BindingEndsWithItsSubscription(t *testing.T) {
	subs := newFakeSubs()
	ws := wsDial(t, newR4(t, channels.R4Config{Binder: subs, MaxBindings: 2}))
	for _, id := range []string{"gone-1", "kept-1"} {
		wsSend(t, ws, "bind "+id)
		if got := wsRead(t, ws); got != "bound "+id {
			t.Fatalf("got %q, want bound %s", got, id)
		}
	}
	subs.deleted("gone-1")
	if got := wsRead(t, ws); got != "error Subscription/gone-1 was deleted: its binding ended" {
		t.Fatalf("after the deletion: %q", got)
	}
	subs.fire("kept-1", 1)
	if got := wsRead(t, ws); got != "ping kept-1" {
		t.Fatalf("the other binding: %q", got)
	}
	// the ended binding no longer counts: a third id binds within the limit
	wsSend(t, ws, "bind other-1")
	if got := wsRead(t, ws); got != "bound other-1" {
		t.Fatalf("a binding in the ended one's place: %q", got)
	}
	if n := subs.cancelled(); n != 1 {
		t.Errorf("%d bindings released, want the ended one", n)
	}
	// and on a connection with room, the deleted id is not bound again
	again := wsDial(t, newR4(t, channels.R4Config{Binder: subs}))
	wsSend(t, again, "bind gone-1")
	if got := wsRead(t, again); !strings.HasPrefix(got, "error bind gone-1") {
		t.Fatalf("binding the deleted id again: %q", got)
	}
	expectWSClose(t, again, 1008, channels.ReasonNotFound)
}

// TestBackportBindingEndsWithItsSubscription: the Backport client gets an
// error frame of code subscription-deleted naming the subscription; its
// other binding goes on, and a token naming the deleted id binds it no
// more.
func TestBackportBindingEndsWithItsSubscription(t *testing.T) {
	subs := newFakeSubs()
	bt := mustTokens(t, channels.BindingTokensConfig{Secret: tokenSecret})
	ws := wsDial(t, newBackport(t, subs, bt, 2))
	tok := issue(t, bt, smart.Full(), "a", "b")
	wsSend(t, ws, "bind-with-token "+tok)
	for _, want := range []string{`{"handshake":"a"}`, `{"handshake":"b"}`} {
		if got := wsRead(t, ws); got != want {
			t.Fatalf("got %s, want %s", got, want)
		}
	}
	subs.deleted("a")
	var m struct {
		Type    string
		Payload map[string]string
	}
	if err := json.Unmarshal([]byte(wsRead(t, ws)), &m); err != nil || m.Type != "error" ||
		m.Payload["code"] != "subscription-deleted" || m.Payload["subscription"] != "Subscription/a" {
		t.Fatalf("after the deletion: %+v %v", m, err)
	}
	// room for one more binding again, and the deleted id is refused
	wsSend(t, ws, "bind-with-token "+issue(t, bt, smart.Full(), "c"))
	if got := wsRead(t, ws); got != `{"handshake":"c"}` {
		t.Fatalf("a binding in the ended one's place: %s", got)
	}
	again := wsDial(t, newBackport(t, subs, bt, 2))
	wsSend(t, again, "bind-with-token "+issue(t, bt, smart.Full(), "a"))
	expectWSClose(t, again, 1008, channels.ReasonNotFound)
}
