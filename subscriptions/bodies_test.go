package subscriptions

import (
	"fmt"
	"testing"

	"github.com/fhirsub/fhirsub/subscriptions/delivery"
)

// TestBodiesTakeOnce: a kept body is taken once and only for its version,
// a forgotten one not at all, and past bodiesMax nothing new is kept.
func TestBodiesTakeOnce(t *testing.T) {
	b := newBodies()
	b.keep("a", "1", map[string]any{"id": "a"})
	if got := b.take("a", "2"); got != nil {
		t.Errorf("taken for another version: %v", got)
	}
	if got := b.take("a", "1"); got != nil {
		t.Errorf("a body of another version asked for is forgotten, got %v", got)
	}
	b.keep("a", "3", map[string]any{"id": "a"})
	if got := b.take("a", "3"); got == nil || got["id"] != "a" {
		t.Errorf("take of the kept version: %v", got)
	}
	if got := b.take("a", "3"); got != nil {
		t.Errorf("taken twice: %v", got)
	}
	b.keep("gone", "1", map[string]any{})
	b.forget("gone")
	if got := b.take("gone", "1"); got != nil {
		t.Errorf("taken after forget: %v", got)
	}
	for i := range bodiesMax {
		b.keep(fmt.Sprint("s", i), "1", map[string]any{})
	}
	b.keep("over", "1", map[string]any{})
	if got := b.take("over", "1"); got != nil {
		t.Errorf("kept past bodiesMax (%d)", bodiesMax)
	}
	if got := b.take("s0", "1"); got == nil {
		t.Error("a body kept before the cap was lost")
	}
}

// TestRegistryReflects: a version is reflected when the registry holds it
// or a later one, or a delete after it; the matcher then skips reading it.
func TestRegistryReflects(t *testing.T) {
	r := newRegistry(delivery.NewSchedule())
	if r.reflects("a", "1") {
		t.Error("an unknown subscription is reflected")
	}
	r.put(&Subscription{ID: "a", VersionID: "2", Status: StatusOff}, 0)
	for v, want := range map[string]bool{"1": true, "2": true, "3": false} {
		if got := r.reflects("a", v); got != want {
			t.Errorf("version 2 held: reflects(%s) = %v, want %v", v, got, want)
		}
	}
	r.drop("a", "4")
	for v, want := range map[string]bool{"3": true, "4": true, "5": false} {
		if got := r.reflects("a", v); got != want {
			t.Errorf("deleted at 4: reflects(%s) = %v, want %v", v, got, want)
		}
	}
}
