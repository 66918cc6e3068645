package storetest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/fhirsub/fhirsub/fhirstore"
)

// testClaims checks Claim and Release: the first claim holds, later ones
// see its holder, only the holder releases, and a released key can be
// claimed again.
func (s *suite) testClaims(t *testing.T) {
	st := s.store(t)
	ctx := ctxFor(t)
	const key = "Patient?identifier=urn%3Asys%7C1"
	h, err := st.Claim(ctx, key, "a")
	if err != nil || h != "a" {
		t.Fatalf("first Claim = %q, %v; want a", h, err)
	}
	if h, err := st.Claim(ctx, key, "b"); err != nil || h != "a" {
		t.Fatalf("second Claim = %q, %v; want holder a", h, err)
	}
	if h, err := st.Claim(ctx, key+"x", "b"); err != nil || h != "b" {
		t.Fatalf("Claim of another key = %q, %v; want b", h, err)
	}
	if err := st.Release(ctx, key, "b"); err != nil {
		t.Fatalf("Release by a non-holder: %v", err)
	}
	if h, err := st.Claim(ctx, key, "c"); err != nil || h != "a" {
		t.Fatalf("Claim after a non-holder's Release = %q, %v; want a", h, err)
	}
	if err := st.Release(ctx, key, "a"); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if h, err := st.Claim(ctx, key, "c"); err != nil || h != "c" {
		t.Fatalf("Claim after Release = %q, %v; want c", h, err)
	}
	_, err = st.Claim(ctx, "", "x")
	wantErr(t, "Claim of an empty key", err, fhirstore.ErrInvalid)
}

// testConcurrentClaims races claims on one key: every caller must be told
// the same single holder, and that holder is one of the callers.
func (s *suite) testConcurrentClaims(t *testing.T) {
	st := s.store(t)
	ctx := ctxFor(t)
	const n = 16
	for round := range 5 {
		key := fmt.Sprintf("Patient?identifier=race%d", round)
		holders := make([]string, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				holders[i], errs[i] = st.Claim(ctx, key, fmt.Sprintf("id%d", i))
			}()
		}
		wg.Wait()
		winners := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("round %d: Claim %d: %v", round, i, errs[i])
			}
			if holders[i] == fmt.Sprintf("id%d", i) {
				winners++
			}
		}
		t.Logf("round %d: %d concurrent claims, %d winners, holder %s", round, n, winners, holders[0])
		if winners != 1 {
			t.Fatalf("round %d: %d winners, want 1 (holders %v)", round, winners, holders)
		}
		for i := range n {
			if holders[i] != holders[0] {
				t.Fatalf("round %d: callers disagree on the holder: %v", round, holders)
			}
		}
	}
}
