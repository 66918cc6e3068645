package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirsub/fhirsub/fhirstore"
	"github.com/fhirsub/fhirsub/fhirstore/sqlite"
	"github.com/fhirsub/fhirsub/fhirstore/storetest"
)

// mustOpen opens a DB on path and closes it at the end of the test unless
// the test closes it first.
func mustOpen(tb testing.TB, path string) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(context.Background(), sqlite.Config{Path: path})
	if err != nil {
		tb.Fatalf("Open %s: %v", path, err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return db
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) fhirstore.Store {
		db, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "fhir.db")})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return db
	}, storetest.RunOptions{Name: "sqlite (modernc.org/sqlite, file in t.TempDir)"})
}

// TestContractExclusive runs the contract on a DB opened as the server
// opens it (Exclusive: the head of the feed served from memory).
func TestContractExclusive(t *testing.T) {
	storetest.Run(t, func(t *testing.T) fhirstore.Store {
		db, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "fhir.db"), Exclusive: true})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return db
	}, storetest.RunOptions{Name: "sqlite, Exclusive"})
}

// TestExclusiveStore: while an Exclusive DB is open no other Exclusive
// opener gets the file; once it is closed one does, and reads the feed the
// first wrote, from the database. What it then serves from memory (the
// head of the feed, the versions it wrote) is what the tables hold.
func TestExclusiveStore(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fhir.db")
	first, err := sqlite.Open(ctx, sqlite.Config{Path: path, Exclusive: true})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for range 3 {
		res, err := first.Create(ctx, patient(t, "Once"))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.ID)
	}
	if _, err := sqlite.Open(ctx, sqlite.Config{Path: path, Exclusive: true}); err == nil || !strings.Contains(err.Error(), "another process has the store open") {
		t.Fatalf("a second Exclusive Open while the first is open: %v", err)
	}
	changes, err := first.Changes(ctx, 1, 10)
	if err != nil || len(changes) != 2 || changes[0].ID != ids[1] || changes[1].ID != ids[2] || changes[1].Seq != 3 {
		t.Fatalf("Changes(1, 10) from memory = %+v, %v", changes, err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second, err := sqlite.Open(ctx, sqlite.Config{Path: path, Exclusive: true})
	if err != nil {
		t.Fatalf("Exclusive Open after Close: %v", err)
	}
	defer second.Close()
	changes, err = second.Changes(ctx, 0, 10)
	if err != nil || len(changes) != 3 || changes[2].ID != ids[2] || changes[0].Interaction != fhirstore.InteractionCreate {
		t.Fatalf("Changes(0, 10) after reopening = %+v, %v", changes, err)
	}

	// updates and deletes: what memory serves is what the database holds
	if _, _, err := second.Update(ctx, ids[0], patient(t, "Twice"), fhirstore.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := second.Delete(ctx, "Patient", ids[1], fhirstore.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := second.Update(ctx, ids[1], patient(t, "Back"), fhirstore.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	fromMemory, err := second.Changes(ctx, 3, 10)
	if err != nil {
		t.Fatal(err)
	}
	reader, err := sqlite.Open(ctx, sqlite.Config{Path: path}) // not Exclusive: reads the table
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	fromTable, err := reader.Changes(ctx, 3, 10)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("changes 4-6 from memory: %+v", fromMemory)
	if !reflect.DeepEqual(fromMemory, fromTable) || len(fromMemory) != 3 {
		t.Fatalf("from memory %+v\nfrom the table %+v", fromMemory, fromTable)
	}
	// the last seq, from memory, is the table's
	memLast, err := second.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tableLast, err := reader.LastSeq(ctx); err != nil || memLast != tableLast || memLast != 6 {
		t.Fatalf("LastSeq from memory %d, from the table %d (%v); want 6", memLast, tableLast, err)
	}
	// and the versions written (a tombstone among them) read back alike
	for _, v := range []struct{ id, version string }{{ids[0], "2"}, {ids[1], "2"}, {ids[1], "3"}} {
		mem, err := second.VRead(ctx, "Patient", v.id, v.version)
		if err != nil {
			t.Fatal(err)
		}
		table, err := reader.VRead(ctx, "Patient", v.id, v.version)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(mem, table) {
			t.Errorf("VRead %s/%s: from memory %+v\nfrom the table %+v", v.id, v.version, mem, table)
		}
		mem.Body = append(mem.Body[:0], "changed"...) // a caller changing what it got
		if again, _ := second.VRead(ctx, "Patient", v.id, v.version); !reflect.DeepEqual(again, table) {
			t.Errorf("VRead %s/%s after a caller changed its copy: %+v", v.id, v.version, again)
		}
	}
}

func patient(tb testing.TB, family string) map[string]any {
	tb.Helper()
	b, err := fhirstore.Decode([]byte(`{"resourceType":"Patient","name":[{"family":"` + family + `"}]}`))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestReopenKeepsDataAndSeq(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "data", "fhir.db") // directory created by Open
	db := mustOpen(t, path)
	a, err := db.Create(ctx, patient(t, "Durable"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.Update(ctx, a.ID, patient(t, "Durable2"), fhirstore.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := db.Create(ctx, patient(t, "Late")); !errors.Is(err, fhirstore.ErrClosed) {
		t.Fatalf("Create after Close: %v, want ErrClosed", err)
	}

	db = mustOpen(t, path)
	cur, err := db.Read(ctx, "Patient", a.ID)
	if err != nil || cur.VersionID != "2" {
		t.Fatalf("Read after reopen = %+v, %v", cur, err)
	}
	if seq, err := db.LastSeq(ctx); err != nil || seq != 2 {
		t.Fatalf("LastSeq after reopen = %d, %v; want 2", seq, err)
	}
	b, err := db.Create(ctx, patient(t, "After"))
	if err != nil {
		t.Fatal(err)
	}
	changes, err := db.Changes(ctx, 2, 10)
	if err != nil || len(changes) != 1 || changes[0].Seq != 3 || changes[0].ID != b.ID {
		t.Fatalf("Changes after reopen = %+v, %v; want seq 3 for %s", changes, err, b.ID)
	}
}

func TestSecondDBSeesChangesThroughPolling(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "fhir.db")
	writer := mustOpen(t, path)
	watcher, err := sqlite.Open(ctx, sqlite.Config{Path: path, PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = watcher.Close() })

	woken := make(chan error, 1)
	go func() { woken <- watcher.Wait(ctx, 0) }()
	time.Sleep(50 * time.Millisecond)
	select {
	case err := <-woken:
		t.Fatalf("Wait returned %v before any write", err)
	default:
	}
	res, err := writer.Create(ctx, patient(t, "Elsewhere"))
	if err != nil {
		t.Fatal(err)
	}
	if err := <-woken; err != nil {
		t.Fatalf("Wait on the second DB: %v", err)
	}
	changes, err := watcher.Changes(ctx, 0, 10)
	if err != nil || len(changes) != 1 || changes[0].ID != res.ID {
		t.Fatalf("second DB Changes = %+v, %v", changes, err)
	}
	// Concurrent writers through two DBs on one file still give one
	// gap-free feed.
	const each = 30
	errs := make(chan error, 2)
	for _, db := range []*sqlite.DB{writer, watcher} {
		go func() {
			for range each {
				if _, err := db.Create(ctx, patient(t, "Both")); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("write through two DBs: %v", err)
		}
	}
	changes, err = writer.Changes(ctx, 0, 1000)
	if err != nil || len(changes) != 1+2*each {
		t.Fatalf("Changes = %d, %v; want %d", len(changes), err, 1+2*each)
	}
	for i, c := range changes {
		if c.Seq != int64(i+1) {
			t.Fatalf("change %d has seq %d", i, c.Seq)
		}
	}
}

func TestWaitReturnsErrClosed(t *testing.T) {
	db, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "fhir.db")})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- db.Wait(context.Background(), 0) }()
	time.Sleep(20 * time.Millisecond)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, fhirstore.ErrClosed) {
		t.Fatalf("Wait during Close = %v, want ErrClosed", err)
	}
}

func TestOpenRejectsBadConfig(t *testing.T) {
	for _, path := range []string{"", "x?y.db"} {
		if db, err := sqlite.Open(context.Background(), sqlite.Config{Path: path}); err == nil {
			_ = db.Close()
			t.Errorf("Open(%q) succeeded", path)
		}
	}
	// A path that is a directory cannot be a database.
	if db, err := sqlite.Open(context.Background(), sqlite.Config{Path: t.TempDir()}); err == nil {
		_ = db.Close()
		t.Errorf("Open(directory) succeeded")
	}
}

// TestCloseDuringWrites: Close waits for the commit in progress instead of
// interrupting it. Every write acknowledged before or during Close is in
// the file when it is opened again, and every write refused is refused
// with ErrClosed, not with an interrupted statement.
func TestCloseDuringWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fhir.db")
	db, err := sqlite.Open(context.Background(), sqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	type outcome struct {
		id  string
		err error
	}
	const writers = 8
	out := make(chan outcome, 1<<16)
	first := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				body := map[string]any{"resourceType": "Patient", "name": []any{map[string]any{"family": fmt.Sprintf("w%d-%d", w, i)}}}
				res, err := db.Create(context.Background(), body)
				if err != nil {
					out <- outcome{err: err}
					return
				}
				out <- outcome{id: res.ID}
				once.Do(func() { close(first) })
			}
		}()
	}
	<-first
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(out)
	var acked []string
	refused := 0
	for o := range out {
		switch {
		case o.err == nil:
			acked = append(acked, o.id)
		case errors.Is(o.err, fhirstore.ErrClosed):
			refused++
		default:
			t.Errorf("a write during Close failed with %v, want success or ErrClosed", o.err)
		}
	}
	t.Logf("acknowledged %d writes, %d refused with ErrClosed", len(acked), refused)
	if refused != writers {
		t.Errorf("%d writers ended with ErrClosed, want all %d", refused, writers)
	}
	again := mustOpen(t, path)
	for _, id := range acked {
		if _, err := again.Read(context.Background(), "Patient", id); err != nil {
			t.Fatalf("acknowledged Patient/%s after reopening: %v", id, err)
		}
	}
}
