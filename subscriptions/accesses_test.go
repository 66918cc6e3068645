package subscriptions

import (
	"fmt"
	"testing"

	"github.com/fhirsub/fhirsub/conformance/smart"
)

func withAccess(t *testing.T, a *smart.Access) map[string]any {
	t.Helper()
	raw, err := a.EncodeString()
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{"extension": []any{map[string]any{"url": ExtAccess, "valueString": raw}}}
}

// TestStoredAccessShared: equal stored accesses decode to one shared
// Access (and one key string), different ones to their own; nothing is
// shared without the cache, or past accessesMax.
func TestStoredAccessShared(t *testing.T) {
	scopes, err := smart.ParseScopes("patient/*.read")
	if err != nil {
		t.Fatal(err)
	}
	alice := &smart.Access{Subject: "alice", Patient: "p1", Scopes: scopes}
	bob := &smart.Access{Subject: "bob", Patient: "p2", Scopes: scopes}
	c := newAccesses()
	a1, k1, err := storedAccess(withAccess(t, alice), c)
	if err != nil {
		t.Fatal(err)
	}
	a2, k2, err := storedAccess(withAccess(t, alice), c)
	if err != nil {
		t.Fatal(err)
	}
	if a1 != a2 || k1 != k2 || a1.Subject != "alice" || a1.Patient != "p1" {
		t.Errorf("equal accesses not shared: %p %p (%+v)", a1, a2, a1)
	}
	b, _, err := storedAccess(withAccess(t, bob), c)
	if err != nil || b == a1 || b.Subject != "bob" {
		t.Errorf("another access: %+v, %v", b, err)
	}
	n1, _, _ := storedAccess(withAccess(t, alice), nil)
	if n1 == a1 {
		t.Error("shared without a cache")
	}
	for i := len(c.m); i < accessesMax; i++ {
		c.put(fmt.Sprint("filler", i), alice)
	}
	carol := &smart.Access{Subject: "carol", Scopes: scopes}
	x1, _, _ := storedAccess(withAccess(t, carol), c)
	x2, _, _ := storedAccess(withAccess(t, carol), c)
	if x1 == x2 || len(c.m) != accessesMax {
		t.Errorf("past accessesMax: shared %v, %d held", x1 == x2, len(c.m))
	}
}
