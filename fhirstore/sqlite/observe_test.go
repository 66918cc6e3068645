package sqlite_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/fhirstore"
	"github.com/fhirsub/fhirsub/fhirstore/sqlite"
)

// Config.Observe is told of each group commit, by kind, with the requests
// it committed and how long it held the write lock.
func TestObserveWriterWork(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []sqlite.WriterWork
	)
	db, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "fhir.db"),
		Observe: func(w sqlite.WriterWork) {
			mu.Lock()
			seen = append(seen, w)
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	ctx := context.Background()
	res, err := db.Create(ctx, observation(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	seq, err := db.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Record(ctx, "matcher", seq, time.Now(), []fhirstore.Match{{SubscriptionID: "s1",
		Type: res.Type, ID: res.ID, VersionID: res.VersionID, Interaction: fhirstore.InteractionCreate}}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	requests := map[string]int{}
	for _, w := range seen {
		if w.Took <= 0 || w.Took > time.Minute {
			t.Errorf("%s took %v", w.Kind, w.Took)
		}
		requests[w.Kind] += w.Requests
	}
	t.Logf("writer work seen: %+v", seen)
	if requests[sqlite.WorkResources] != 1 || requests[sqlite.WorkEvents] != 1 {
		t.Fatalf("requests by kind %v, want one resource write and one event write", requests)
	}
}
