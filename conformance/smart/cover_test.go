package smart_test

import (
	"context"
	"testing"

	"github.com/fhirsub/fhirsub/conformance/smart"
)

func TestContext(t *testing.T) {
	if _, ok := smart.FromContext(context.Background()); ok {
		t.Error("empty context has an access")
	}
	if _, ok := smart.FromContext(smart.NewContext(context.Background(), nil)); ok {
		t.Error("a nil access counts as present")
	}
	a := smart.Full()
	if got, ok := smart.FromContext(smart.NewContext(context.Background(), a)); !ok || got != a {
		t.Errorf("FromContext = %v, %v", got, ok)
	}
}

func TestCovers(t *testing.T) {
	tests := []struct {
		name         string
		aPat, aScope string
		bPat, bScope string
		want         bool
	}{
		{"same", "a", "patient/*.rs", "a", "patient/*.rs", true},
		{"other patient", "b", "patient/*.rs", "a", "patient/*.rs", false},
		{"narrower types", "a", "patient/Observation.rs", "a", "patient/*.rs", false},
		{"wider types", "a", "patient/*.rs", "a", "patient/Observation.rs", true},
		{"admin covers a patient", "", "system/*.rs", "a", "patient/*.rs", true},
		{"patient does not cover admin", "a", "patient/*.cruds", "", "system/*.rs", false},
		{"full covered by user star", "", "user/*.rs", "", "system/*.cruds", true},
		{"read only vs read+search", "", "user/*.r", "", "user/*.rs", false},
		{"writes are not compared", "", "user/*.rs", "", "user/*.cruds", true},
		{"same granular", "", "user/Observation.rs?category=laboratory", "", "user/Observation.rs?category=laboratory", true},
		{"granular vs plain", "", "user/Observation.rs?category=laboratory", "", "user/Observation.rs", false},
		{"plain vs granular", "", "user/Observation.rs", "", "user/Observation.rs?category=laboratory", true},
		{"nothing to cover", "", "openid", "", "openid", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := access(t, tc.aPat, tc.aScope), access(t, tc.bPat, tc.bScope)
			if got := a.Covers(b); got != tc.want {
				t.Errorf("Covers = %v, want %v", got, tc.want)
			}
		})
	}
	var none *smart.Access
	if none.Covers(smart.Full()) || !smart.Full().Covers(nil) {
		t.Error("nil handling")
	}
}

func TestCanSeeCompartment(t *testing.T) {
	a := access(t, "p1", "patient/*.rs")
	if !a.CanSeeCompartment("Observation", []string{"p2", "p1"}) || a.CanSeeCompartment("Observation", []string{"p2"}) ||
		a.CanSeeCompartment("Practitioner", nil) {
		t.Error("patient token")
	}
	g := access(t, "", "user/Observation.rs?category=laboratory")
	if g.CanSeeCompartment("Observation", nil) {
		t.Error("a granular scope cannot decide without the resource")
	}
	if !access(t, "", "user/Observation.rs").CanSeeCompartment("Observation", nil) {
		t.Error("user token without patient")
	}
	if access(t, "", "user/Observation.rs").CanSeeCompartment("Condition", nil) {
		t.Error("unreadable type")
	}
}

func TestSubscriptionCompartment(t *testing.T) {
	owner := access(t, "p1", "patient/*.rs")
	raw, err := owner.EncodeString()
	if err != nil {
		t.Fatal(err)
	}
	sub := func(ext ...any) map[string]any {
		m := map[string]any{"resourceType": "Subscription", "id": "s1", "status": "active"}
		if len(ext) > 0 {
			m["extension"] = ext
		}
		return m
	}
	stamp := func(v string) any { return map[string]any{"url": smart.AccessExtension, "valueString": v} }
	p1, p2 := access(t, "p1", "patient/*.rs"), access(t, "p2", "patient/*.rs")
	if !p1.CanSee(sub(stamp(raw))) || p2.CanSee(sub(stamp(raw))) {
		t.Error("a stamped subscription lies in its owner's compartment only")
	}
	if !p2.CanSee(sub()) {
		t.Error("an unstamped submission is the caller's")
	}
	if p1.CanSee(sub(stamp("not json"))) || p1.CanSee(sub(stamp(raw), stamp(raw))) {
		t.Error("an unreadable or repeated stamp belongs to nobody")
	}
	if !smart.Full().CanSee(sub(stamp(raw))) {
		t.Error("no patient in context sees every subscription")
	}
	if v, found := smart.AccessOf(sub(stamp(raw))); !found || v != raw {
		t.Errorf("AccessOf = %q, %v", v, found)
	}
}
