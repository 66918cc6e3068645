package fhirpath

import (
	"math/rand/v2"
	"regexp"
	"testing"
)

// referenceOracle is the pattern referenceParts implements by hand.
var referenceOracle = regexp.MustCompile(`(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?$`)

// TestReferencePartsAgreesWithThePattern compares referenceParts with the
// regular expression it stands for, on hand-picked references and on
// 200,000 random ones made of the pieces that matter (segments, slashes,
// _history, letters of either case, digits, other bytes).
func TestReferencePartsAgreesWithThePattern(t *testing.T) {
	matched := 0
	check := func(ref string) {
		t.Helper()
		typ, id, ok := referenceParts(ref)
		if ok {
			matched++
		}
		m := referenceOracle.FindStringSubmatch(ref)
		if ok != (m != nil) || ok && (typ != m[1] || id != m[2]) {
			t.Errorf("referenceParts(%q) = %q, %q, %v; the pattern finds %q", ref, typ, id, ok, m)
		}
	}
	for _, ref := range []string{
		"", "/", "Patient", "Patient/", "/Patient/1", "Patient/1", "Patient/1/", "P/1", "Pa/1",
		"Patient/123/_history/2", "Patient/123/_history/", "Patient/_history/1", "Patient/1/_history/2/_history/3",
		"http://example.org/fhir/Patient/abc-1.2", "urn:uuid:0a1b", "#contained", "Patient/" + string(make([]byte, 65)),
		"Patient/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"Patient/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"x/Patient/1", "xPatient/1", "Pat1ent/1", "Pat_ent/1", "Patient/1_2", "Patient/é", "Patiént/1",
		"Patient//1", "//Patient/1", "Patient/1/_history/v/_history/", "Encounter/e/_history/_history",
	} {
		check(ref)
	}
	pieces := []string{"/", "/", "/_history/", "_history", "Patient", "Observation", "Ab", "A", "a", "z",
		"Z", "1", "-", ".", "_", "é", "@", "[", "`", "{", ":", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200_000 {
		var b []byte
		for n := r.IntN(8); n >= 0; n-- {
			b = append(b, pieces[r.IntN(len(pieces))]...)
		}
		if r.IntN(2) == 0 { // end like a reference, mostly a valid one
			b = append(b, "/Patient/1"[r.IntN(2):]...)
			if r.IntN(2) == 0 {
				b = append(b, "/_history/"...)
				b = append(b, pieces[r.IntN(len(pieces))]...)
			}
		}
		check(string(b))
	}
	t.Logf("%d of the references were matched", matched)
	if matched < 1000 {
		t.Errorf("only %d references matched: the random ones test little", matched)
	}
}

// BenchmarkReferenceParts measures the parse of resolve()'s reference.
func BenchmarkReferenceParts(b *testing.B) {
	for b.Loop() {
		if _, _, ok := referenceParts("http://example.org/fhir/Patient/01a25063-a9a1-793f-bb36-f3d3f8acdc8f"); !ok {
			b.Fatal("no match")
		}
	}
}
