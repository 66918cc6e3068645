package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fhirsub/fhirsub/fhirstore"
)

// TestRecentVersionsBounded: the versions kept stay within versionsMax
// entries and versionsBytes of bodies, the newest are kept, and a body
// over versionMaxBody is not kept at all.
func TestRecentVersionsBounded(t *testing.T) {
	var r recentVersions
	body := []byte(strings.Repeat("x", 1000))
	for i := range 3 * versionsMax {
		r.add(fhirstore.Resource{Type: "Patient", ID: fmt.Sprint(i), VersionID: "1", Body: body})
	}
	if len(r.m) > versionsMax || r.n != len(r.m) {
		t.Fatalf("%d kept (%d in the ring), want at most %d", len(r.m), r.n, versionsMax)
	}
	if _, ok := r.get("Patient", fmt.Sprint(3*versionsMax-1), "1"); !ok {
		t.Error("the newest version was let go")
	}
	if _, ok := r.get("Patient", "0", "1"); ok {
		t.Error("the oldest version is still kept")
	}
	for i := 2 * versionsMax; i < 3*versionsMax; i++ { // the ring went round twice: exactly the newest are kept
		if _, ok := r.get("Patient", fmt.Sprint(i), "1"); !ok {
			t.Fatalf("Patient/%d, one of the newest %d, was let go", i, versionsMax)
		}
	}
	// the same version again: held once, its bytes once
	r.add(fhirstore.Resource{Type: "Patient", ID: fmt.Sprint(3*versionsMax - 1), VersionID: "1", Body: body})
	if r.n != len(r.m) || r.bytes != len(r.m)*len(body) {
		t.Fatalf("after adding a held version again: %d in the ring, %d kept, %d bytes", r.n, len(r.m), r.bytes)
	}
	big := []byte(strings.Repeat("y", versionMaxBody/2))
	for i := range 100 {
		r.add(fhirstore.Resource{Type: "Observation", ID: fmt.Sprint(i), VersionID: "1", Body: big})
	}
	if r.bytes > versionsBytes || r.n != len(r.m) {
		t.Fatalf("%d bytes kept, want at most %d", r.bytes, versionsBytes)
	}
	total := 0
	for _, res := range r.m {
		total += len(res.Body)
	}
	if total != r.bytes {
		t.Errorf("bytes counted %d, held %d", r.bytes, total)
	}
	r.add(fhirstore.Resource{Type: "Binary", ID: "huge", VersionID: "1", Body: make([]byte, versionMaxBody+1)})
	if _, ok := r.get("Binary", "huge", "1"); ok {
		t.Error("a body over versionMaxBody was kept")
	}
}

// TestChangesCaughtUpReadsNothing: with the store Exclusive, Changes after
// the last committed seq answers from memory that there is nothing new
// (the matcher asks after every batch), and the head of the feed comes
// from memory too: with the reader pool closed, both still answer.
func TestChangesCaughtUpReadsNothing(t *testing.T) {
	db := openExclusive(t, filepath.Join(t.TempDir(), "fhir.db"))
	ctx := context.Background()
	res, err := db.Create(ctx, map[string]any{"resourceType": "Patient"})
	if err != nil {
		t.Fatal(err)
	}
	last, err := db.LastSeq(ctx)
	if err != nil || last < 1 {
		t.Fatalf("LastSeq = %d, %v", last, err)
	}
	if err := db.reader.Close(); err != nil {
		t.Fatal(err)
	}
	if cs, err := db.Changes(ctx, last, 10); err != nil || len(cs) != 0 {
		t.Fatalf("Changes after the last seq = %v, %v; want none, from memory", cs, err)
	}
	cs, err := db.Changes(ctx, last-1, 10)
	if err != nil || len(cs) != 1 || cs[0].ID != res.ID {
		t.Fatalf("Changes of the head = %v, %v; want the create of %s, from memory", cs, err, res.ID)
	}
}
