package subscriptions

import (
	"fmt"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/subscriptions/delivery"
)

// TestBodiesTakeOnce: a kept body is taken once and only for its version,
// a forgotten one not at all, and past bodiesMax nothing new is kept.
func TestBodiesTakeOnce(t *testing.T) {
	b := newBodies()
	at := time.Unix(1_800_000_000, 0)
	b.keep("a", "1", map[string]any{"id": "a"}, at)
	if got := b.take("a", "2", at); got != nil {
		t.Errorf("taken for another version: %v", got)
	}
	if got := b.take("a", "1", at); got != nil {
		t.Errorf("a body of another version asked for is forgotten, got %v", got)
	}
	b.keep("a", "3", map[string]any{"id": "a"}, at)
	if got := b.take("a", "3", at); got == nil || got["id"] != "a" {
		t.Errorf("take of the kept version: %v", got)
	}
	if got := b.take("a", "3", at); got != nil {
		t.Errorf("taken twice: %v", got)
	}
	b.keep("gone", "1", map[string]any{}, at)
	b.forget("gone")
	if got := b.take("gone", "1", at); got != nil {
		t.Errorf("taken after forget: %v", got)
	}
	for i := range bodiesMax {
		b.keep(fmt.Sprint("s", i), "1", map[string]any{}, at)
	}
	b.keep("over", "1", map[string]any{}, at)
	if got := b.take("over", "1", at); got != nil {
		t.Errorf("kept past bodiesMax (%d)", bodiesMax)
	}
	if got := b.take("s0", "1", at); got == nil {
		t.Error("a body kept before the cap was lost")
	}
}

// TestBodiesTakenBeforeKept: when the activation took the body before the
// write hook kept it (the matcher met the version first), the late body is
// not kept, and nothing is left behind.
func TestBodiesTakenBeforeKept(t *testing.T) {
	b := newBodies()
	at := time.Unix(1_800_000_000, 0)
	if got := b.take("a", "1", at); got != nil {
		t.Fatalf("taken before anything was kept: %v", got)
	}
	b.keep("a", "1", map[string]any{"id": "a"}, at)
	if n := len(b.m); n != 0 {
		t.Fatalf("%d entries left after a body kept too late, want 0", n)
	}
	// a later version is kept as usual
	b.keep("a", "3", map[string]any{"id": "a"}, at)
	if got := b.take("a", "3", at); got == nil {
		t.Fatal("the next version's body was not kept")
	}
}

// TestBodiesExpire: a body never taken (its activation raced the write
// hook and read the store) gives its place up after bodiesTTL, once room
// is needed; younger ones stay.
func TestBodiesExpire(t *testing.T) {
	b := newBodies()
	at := time.Unix(1_800_000_000, 0)
	for i := range bodiesMax - 1 {
		b.keep(fmt.Sprint("old", i), "1", map[string]any{}, at)
	}
	later := at.Add(bodiesTTL / 2)
	b.keep("young", "1", map[string]any{}, later)
	b.keep("full", "1", map[string]any{}, later)
	if got := b.take("full", "1", at); got != nil {
		t.Fatal("kept past bodiesMax before any body expired")
	}
	after := at.Add(bodiesTTL + time.Second)
	b.keep("new", "1", map[string]any{"id": "new"}, after)
	if got := b.take("new", "1", at); got == nil {
		t.Fatal("no room made by the expired bodies")
	}
	if got := b.take("young", "1", at); got == nil {
		t.Error("a body younger than bodiesTTL was dropped")
	}
	if got := b.take("old0", "1", at); got != nil {
		t.Error("an expired body was kept")
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
