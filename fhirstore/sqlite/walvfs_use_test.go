package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/fhirsub/fhirsub/fhirstore/sqlite/walvfs"
)

// TestWriterWritesFramesTogether: the store's writer goes through walvfs,
// so the WAL frames of a commit reach the file in a few write calls, not
// two per page; and a reopened store reads every create back.
func TestWriterWritesFramesTogether(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fhir.db")
	db := mustOpen(t, path)
	w0, c0 := walvfs.Stats()
	var ids []string
	for i := range 20 {
		res, err := db.Create(ctx, map[string]any{"resourceType": "Observation", "status": "final",
			"code":    map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "8867-4"}}},
			"subject": map[string]any{"reference": "Patient/p" + string(rune('a'+i))}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.ID)
	}
	w1, c1 := walvfs.Stats()
	writes, calls := w1-w0, c1-c0
	t.Logf("20 creates: %d WAL writes by SQLite, %d write calls to the file", writes, calls)
	if writes < 40 || calls*4 > writes {
		t.Errorf("%d write calls for %d WAL writes, want 4 or more writes a call", calls, writes)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	again := mustOpen(t, path)
	for _, id := range ids {
		if _, err := again.Read(ctx, "Observation", id); err != nil {
			t.Fatalf("read %s after reopening: %v", id, err)
		}
	}
}
