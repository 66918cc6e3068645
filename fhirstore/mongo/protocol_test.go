package mongo

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/fhirsub/fhirsub/conformance/search"
	"github.com/fhirsub/fhirsub/fhirstore"
)

// These tests check the write protocol (doc.go; MongoDB's only one) on
// the embedded FerretDB: several nodes on one database, and writers that
// die between their steps.

func patientBody(tb testing.TB, family string) map[string]any {
	tb.Helper()
	b, err := fhirstore.Decode(fmt.Appendf(nil, `{"resourceType":"Patient","name":[{"family":%q}]}`, family))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// secondNode opens another DB on the same database as db, like a second
// fhirsub process.
func secondNode(t *testing.T, db *DB, cfg Config) *DB {
	t.Helper()
	cfg.URI, cfg.Database = db.cfg.URI, db.cfg.Database
	other, err := Open(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Close() })
	return other
}

func openFerret(t *testing.T, cfg Config) *DB {
	t.Helper()
	db := openTest(t, ferretBackend(), cfg)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// TestTwoNodesOneFeed writes through two DBs on one database at once:
// creates, and If-Match updates racing on one resource. The unique _ids
// must give exactly one winner per version, and the feed one committed
// change per version, in seq order, with nothing missing.
func TestTwoNodesOneFeed(t *testing.T) {
	ctx := testCtx(t)
	a := openFerret(t, Config{})
	b := secondNode(t, a, Config{})
	shared, err := a.Create(ctx, patientBody(t, "Shared"))
	if err != nil {
		t.Fatal(err)
	}
	const each, rounds = 15, 4
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		winners   = map[string]int{}
		conflicts int
		errs      []error
	)
	for n, db := range []*DB{a, b} {
		wg.Go(func() {
			for i := range each {
				if _, err := db.Create(ctx, patientBody(t, fmt.Sprint("N", n, "-", i))); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
		for r := range rounds {
			for k := range 3 {
				wg.Go(func() {
					// Three racers per node wait for version r+1 of
					// the shared patient, then update it with If-Match
					// r+1: exactly one of the six may win.
					ifMatch := fmt.Sprint(r + 1)
					for ctx.Err() == nil {
						cur, err := db.Read(ctx, "Patient", shared.ID)
						if err != nil {
							mu.Lock()
							errs = append(errs, err)
							mu.Unlock()
							return
						}
						if cur.VersionID != ifMatch {
							if len(cur.VersionID) > len(ifMatch) || cur.VersionID > ifMatch {
								return // round over without this racer
							}
							time.Sleep(time.Millisecond)
							continue
						}
						_, _, err = db.Update(ctx, shared.ID, patientBody(t, fmt.Sprint("R", n, r, k)), fhirstore.WriteOptions{IfMatch: ifMatch})
						mu.Lock()
						switch {
						case err == nil:
							winners[ifMatch]++
						case errors.Is(err, fhirstore.ErrVersionConflict):
							conflicts++
						default:
							errs = append(errs, err)
						}
						mu.Unlock()
						return
					}
				})
			}
		}
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("writes failed: %v", errs)
	}
	t.Logf("%d If-Match conflicts across the two nodes", conflicts)
	if len(winners) != rounds {
		t.Errorf("winners by If-Match = %v, want one for each of %d rounds", winners, rounds)
	}
	for v, n := range winners {
		if n != 1 {
			t.Errorf("If-Match %s: %d winners", v, n)
		}
	}
	hist, err := a.History(ctx, fhirstore.HistoryRequest{Type: "Patient", ID: shared.ID})
	if err != nil {
		t.Fatal(err)
	}
	if hist.Total != 1+len(winners) {
		t.Errorf("shared patient has %d versions, want %d", hist.Total, 1+len(winners))
	}
	for i, r := range hist.Resources {
		if want := fmt.Sprint(hist.Total - i); r.VersionID != want {
			t.Errorf("history entry %d has version %s, want %s", i, r.VersionID, want)
		}
	}
	all, err := a.History(ctx, fhirstore.HistoryRequest{Count: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, db := range []*DB{a, b} {
		changes, err := db.Changes(ctx, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(changes) != all.Total {
			t.Fatalf("%d changes for %d versions", len(changes), all.Total)
		}
		seen := map[string]bool{}
		for i, c := range changes {
			if i > 0 && c.Seq <= changes[i-1].Seq {
				t.Fatalf("feed out of order at %d: %d after %d", i, c.Seq, changes[i-1].Seq)
			}
			seen[c.Type+"/"+c.ID+"/"+c.VersionID] = true
		}
		for _, r := range all.Resources {
			if !seen[r.Type+"/"+r.ID+"/"+r.VersionID] {
				t.Errorf("version %s/%s/%s has no change", r.Type, r.ID, r.VersionID)
			}
		}
		last, err := db.LastSeq(ctx)
		if err != nil || last != changes[len(changes)-1].Seq {
			t.Errorf("LastSeq = %d, %v; want %d", last, err, changes[len(changes)-1].Seq)
		}
	}
}

// reservePending inserts a pending change the way a writer does before
// it inserts its version, and returns its seq.
func reservePending(t *testing.T, db *DB, typ, id string, vid int64) int64 {
	t.Helper()
	c := &changeDoc{
		State: statePending, Type: typ, ID: id, Vid: vid,
		Interaction: string(fhirstore.InteractionCreate), Time: fhirstore.Now(), Reserved: time.Now().UTC(),
	}
	seq, err := db.reserve(testCtx(t), c)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

func seqs(changes []fhirstore.Change) []int64 {
	out := make([]int64, len(changes))
	for i, c := range changes {
		out[i] = c.Seq
	}
	return out
}

// TestDeadWriterBeforeVersion: a writer reserved a seq and died before
// inserting its version. Readers stop at that seq until the commit
// timeout, then abort it with a placeholder version, which makes the
// writer's late insert fail, and go on.
func TestDeadWriterBeforeVersion(t *testing.T) {
	ctx := testCtx(t)
	const timeout = 400 * time.Millisecond
	db := openFerret(t, Config{CommitTimeout: timeout})
	reader := secondNode(t, db, Config{CommitTimeout: timeout, PollInterval: 20 * time.Millisecond})
	first, err := db.Create(ctx, patientBody(t, "First"))
	if err != nil {
		t.Fatal(err)
	}
	dead := reservePending(t, db, "Patient", "dead", 1)
	after, err := db.Create(ctx, patientBody(t, "After"))
	if err != nil {
		t.Fatal(err)
	}
	changes, err := reader.Changes(ctx, 0, 10)
	if err != nil || len(changes) != 1 || changes[0].ID != first.ID {
		t.Fatalf("Changes with seq %d pending = %v, %v; want only seq 1", dead, seqs(changes), err)
	}
	if last, err := reader.LastSeq(ctx); err != nil || last != 1 {
		t.Fatalf("LastSeq with seq %d pending = %d, %v; want 1", dead, last, err)
	}
	// Wait(1) must not return before the pending seq is settled.
	start := time.Now()
	if err := reader.Wait(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < timeout/2 {
		t.Errorf("Wait(1) returned after %v, before the pending seq could be settled", waited)
	}
	changes, err = reader.Changes(ctx, 0, 10)
	if err != nil || len(changes) != 2 || changes[1].ID != after.ID || changes[1].Seq != dead+1 {
		t.Fatalf("Changes after the timeout = %+v, %v; want seq 1 and %d", changes, err, dead+1)
	}
	var c changeDoc
	if err := db.changes.FindOne(ctx, bson.D{{Key: "_id", Value: dead}}).Decode(&c); err != nil || c.State != stateAborted {
		t.Fatalf("abandoned change = %+v, %v; want aborted", c, err)
	}
	// The aborted seq's placeholder is no change of the type.
	if tc, err := reader.TypeChanges(ctx, "Patient", 0, 10); err != nil || !slices.Equal(seqs(tc), []int64{1, dead + 1}) {
		t.Fatalf("TypeChanges(Patient) after the abort = %v, %v; want seq 1 and %d", seqs(tc), err, dead+1)
	}
	// The dead writer wakes up and inserts its version: too late.
	late := &versionDoc{Key: versionKey("Patient", "dead", 1), Type: "Patient", ID: "dead", Vid: 1, Seq: dead, LastUpdated: fhirstore.Now()}
	if _, err := db.versions.InsertOne(ctx, late); !isDup(err) {
		t.Fatalf("late version insert: %v, want a duplicate key", err)
	}
	if _, err := db.VRead(ctx, "Patient", "dead", "1"); !errors.Is(err, fhirstore.ErrNotFound) {
		t.Errorf("VRead of the placeholder: %v, want ErrNotFound", err)
	}
	// The id is still free; its first real version skips the placeholder's number.
	res, created, err := db.Update(ctx, "dead", patientBody(t, "Alive"), fhirstore.WriteOptions{})
	if err != nil || !created || res.VersionID != "2" {
		t.Fatalf("Update after the placeholder = %+v, %v, %v; want version 2 created", res, created, err)
	}
	hist, err := db.History(ctx, fhirstore.HistoryRequest{Type: "Patient", ID: "dead"})
	if err != nil || hist.Total != 1 {
		t.Fatalf("history = %v, %v; want only version 2", versionsOf(hist), err)
	}
}

func versionsOf(p *fhirstore.Page) []string {
	if p == nil {
		return nil
	}
	out := make([]string, len(p.Resources))
	for i, r := range p.Resources {
		out[i] = r.ID + "/" + r.VersionID
	}
	return out
}

// TestDeadWriterAfterVersion: a writer inserted its version and died
// before updating the resource and committing the change. After the
// timeout a reader finishes the write: the change commits and the
// resource becomes current and searchable.
func TestDeadWriterAfterVersion(t *testing.T) {
	ctx := testCtx(t)
	db := openFerret(t, Config{CommitTimeout: 300 * time.Millisecond})
	seq := reservePending(t, db, "Patient", "halfway", 1)
	e, err := newEntry(fhirstore.Op{Method: fhirstore.MethodUpdate, ID: "halfway", Body: patientBody(t, "Halfway")}, fhirstore.Now())
	if err != nil {
		t.Fatal(err)
	}
	v, _, err := e.build(plan{vid: 1, created: true, interaction: fhirstore.InteractionCreate})
	if err != nil {
		t.Fatal(err)
	}
	v.Seq = seq
	if _, err := db.versions.InsertOne(ctx, v); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Read(ctx, "Patient", "halfway"); !errors.Is(err, fhirstore.ErrNotFound) {
		t.Fatalf("Read before settling: %v, want ErrNotFound", err)
	}
	if ch, err := db.Changes(ctx, 0, 10); err != nil || len(ch) != 0 {
		t.Fatalf("Changes before the timeout = %v, %v", seqs(ch), err)
	}
	if tc, err := db.TypeChanges(ctx, "Patient", 0, 10); err != nil || len(tc) != 0 {
		t.Fatalf("TypeChanges(Patient) with the change pending = %v, %v; want none", seqs(tc), err)
	}
	time.Sleep(400 * time.Millisecond)
	ch, err := db.Changes(ctx, 0, 10)
	if err != nil || len(ch) != 1 || ch[0].Seq != seq || ch[0].ID != "halfway" || ch[0].VersionID != "1" {
		t.Fatalf("Changes after the timeout = %+v, %v; want the rolled-forward change", ch, err)
	}
	if tc, err := db.TypeChanges(ctx, "Patient", 0, 10); err != nil || !slices.Equal(seqs(tc), []int64{seq}) {
		t.Fatalf("TypeChanges(Patient) after settling = %v, %v; want seq %d", seqs(tc), err, seq)
	}
	cur, err := db.Read(ctx, "Patient", "halfway")
	if err != nil || cur.VersionID != "1" {
		t.Fatalf("Read after settling = %+v, %v", cur, err)
	}
	q, err := search.Parse("Patient", url.Values{"family": {"Halfway"}})
	if err != nil {
		t.Fatal(err)
	}
	page, err := db.Search(ctx, q)
	if err != nil || page.Total != 1 {
		t.Fatalf("Search after settling = %+v, %v", page, err)
	}
	// The next write builds on the rolled-forward version.
	res, created, err := db.Update(ctx, "halfway", patientBody(t, "Whole"), fhirstore.WriteOptions{IfMatch: "1"})
	if err != nil || created || res.VersionID != "2" {
		t.Fatalf("Update = %+v, %v, %v", res, created, err)
	}
}

// TestPutCurrentNeverGoesBack: a late writer of an older version must not
// replace a newer current resource (the upsert hits the _id and fails
// with a duplicate key, which putCurrent expects).
func TestPutCurrentNeverGoesBack(t *testing.T) {
	ctx := testCtx(t)
	db := openFerret(t, Config{})
	doc := func(vid int64) *resourceDoc {
		return &resourceDoc{Key: "Patient/p", Type: "Patient", ID: "p", Vid: vid, Seq: vid,
			LastUpdated: fhirstore.Now(), Body: fmt.Sprintf(`{"resourceType":"Patient","id":"p","v":%d}`, vid), Keys: []string{}}
	}
	for _, vid := range []int64{1, 3, 2} {
		if err := db.putCurrent(ctx, doc(vid)); err != nil {
			t.Fatalf("putCurrent %d: %v", vid, err)
		}
	}
	cur, err := db.Read(ctx, "Patient", "p")
	if err != nil || cur.VersionID != "3" {
		t.Fatalf("Read = %+v, %v; want version 3", cur, err)
	}
	n, err := db.resources.CountDocuments(ctx, bson.D{})
	if err != nil || n != 1 {
		t.Fatalf("%d resource documents, %v; want 1", n, err)
	}
}

// TestWaitSeesOtherNode: a write through one DB wakes Wait on another by
// polling.
func TestWaitSeesOtherNode(t *testing.T) {
	ctx := testCtx(t)
	a := openFerret(t, Config{})
	b := secondNode(t, a, Config{PollInterval: 20 * time.Millisecond})
	woken := make(chan error, 1)
	go func() { woken <- b.Wait(ctx, 0) }()
	time.Sleep(60 * time.Millisecond)
	select {
	case err := <-woken:
		t.Fatalf("Wait returned %v before any write", err)
	default:
	}
	if _, err := a.Create(ctx, patientBody(t, "Elsewhere")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-woken:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait on the other node not woken within 5 s")
	}
}

func TestCloseAndErrors(t *testing.T) {
	ctx := testCtx(t)
	db := openTest(t, ferretBackend(), Config{})
	done := make(chan error, 1)
	go func() { done <- db.Wait(ctx, 0) }()
	time.Sleep(20 * time.Millisecond)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, fhirstore.ErrClosed) {
		t.Fatalf("Wait during Close = %v, want ErrClosed", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := db.Create(ctx, patientBody(t, "Late")); !errors.Is(err, fhirstore.ErrClosed) {
		t.Errorf("Create after Close: %v, want ErrClosed", err)
	}
	if _, err := db.Read(ctx, "Patient", "x"); !errors.Is(err, fhirstore.ErrClosed) {
		t.Errorf("Read after Close: %v, want ErrClosed", err)
	}

	// A canceled context stays visible; the driver's error types do not.
	live := openFerret(t, Config{})
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	_, err := live.Read(canceled, "Patient", "x")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Read with a canceled context: %v, want context.Canceled", err)
	}
	var se mongo.ServerError
	var ce mongo.CommandError
	if errors.As(err, &se) || errors.As(err, &ce) {
		t.Errorf("a driver error type leaked: %T", err)
	}

	if _, err := Open(ctx, Config{}); err == nil {
		t.Error("Open without URI succeeded")
	}
	short, cancel2 := context.WithTimeout(ctx, time.Second)
	defer cancel2()
	if db, err := Open(short, Config{URI: "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300"}); err == nil {
		_ = db.Close()
		t.Error("Open of a closed port succeeded")
	}
}

func TestOpenIsIdempotent(t *testing.T) {
	ctx := testCtx(t)
	db := openFerret(t, Config{})
	if _, err := db.Create(ctx, patientBody(t, "Kept")); err != nil {
		t.Fatal(err)
	}
	again := secondNode(t, db, Config{}) // creates the same indexes again
	if last, err := again.LastSeq(ctx); err != nil || last != 1 {
		t.Fatalf("LastSeq through a second Open = %d, %v", last, err)
	}
	cur, err := db.indexNames(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"resources.type_keys", "resources.type_lastUpdated", "versions.type_id_vid",
		"versions.type_seq", "versions.seq", "changes.state_seq", "events.seq_sub", "events.sub_number"} {
		if !cur[want] {
			t.Errorf("index %s missing; have %v", want, cur)
		}
	}
}
