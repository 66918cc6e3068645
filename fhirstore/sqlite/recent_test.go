package sqlite

import (
	"fmt"
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
	if len(r.m) > versionsMax || len(r.order) != len(r.m) {
		t.Fatalf("%d kept (%d in order), want at most %d", len(r.m), len(r.order), versionsMax)
	}
	if _, ok := r.get("Patient", fmt.Sprint(3*versionsMax-1), "1"); !ok {
		t.Error("the newest version was let go")
	}
	if _, ok := r.get("Patient", "0", "1"); ok {
		t.Error("the oldest version is still kept")
	}
	big := []byte(strings.Repeat("y", versionMaxBody/2))
	for i := range 100 {
		r.add(fhirstore.Resource{Type: "Observation", ID: fmt.Sprint(i), VersionID: "1", Body: big})
	}
	if r.bytes > versionsBytes || len(r.order) != len(r.m) {
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
