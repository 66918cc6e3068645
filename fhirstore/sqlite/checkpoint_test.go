package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestWALStaysBounded writes from 8 goroutines, as concurrent HTTP
// creates do, and checks that the checkpoints (run beside the commits, not
// inside them) still let SQLite restart the WAL: if it never restarted,
// 4,000 creates would leave a WAL of about 140 MB (8–9 frames of 4 KiB
// each at 8 writers), and much more from a single writer. The limit is
// above boundWAL's (about four checkpoints' worth, ~64 MB): without that
// bound a slow disk let it reach 96–106 MB (CI, and a run beside two
// fsyncing dd loops).
func TestWALStaysBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fhir.db")
	db := mustOpen(t, path)
	ctx := context.Background()
	const writers, each = 8, 500
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, err := db.Create(ctx, observation(t, w*each+i)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	const limit = 96 << 20
	t.Logf("WAL after %d creates: %.1f MB (limit %d MB)", writers*each, float64(st.Size())/(1<<20), limit>>20)
	if st.Size() > limit {
		t.Fatalf("WAL grew to %d bytes: checkpoints do not let it restart", st.Size())
	}
}
