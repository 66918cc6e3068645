package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the test writes raw bytes into the server's SQLite file
)

// TestPoisonChangeSkipped writes an undecodable version straight into the
// server's SQLite file (a change the matcher cannot process) and checks
// that the feed goes on: a later matching write is delivered, the change
// is counted (fhirsub_matcher_skipped_changes_total) and listed on
// /readyz. Then the bad version is repaired with the server stopped, and
// the restart processes the set-aside change: its event is delivered and
// the list is empty.
func TestPoisonChangeSkipped(t *testing.T) {
	if testing.Short() {
		t.Skip("poison change test skipped in -short mode (starts the binary)")
	}
	rcv := newHookReceiver(t)
	srv := startServerProc(t, "--log-level", "error")
	dbPath := filepath.Join(srv.args[slices.Index(srv.args, "--data")+1], "fhirsub.db")

	patient := mustFHIR(t, http.StatusCreated, "POST", srv.base+"/Patient",
		map[string]any{"resourceType": "Patient", "name": []any{map[string]any{"family": "Poison"}}})["id"].(string)
	id := mustFHIR(t, http.StatusCreated, "POST", srv.base+"/Subscription",
		topicSubscription(rcv.URL(), criticalTopic, "id-only", "Observation?patient=Patient/"+patient))["id"].(string)
	waitStatus(t, srv.base, id, "active", 10*time.Second)
	mustFHIR(t, http.StatusCreated, "POST", srv.base+"/Observation", criticalObservation(patient, loincPotassium, "p1"))
	if !rcv.waitUntil(15*time.Second, func() bool { return contiguous(rcv.snapshot(id).deliveries, 1) }) {
		t.Fatalf("event 1 not delivered: %v", sortedKeys(rcv.snapshot(id).deliveries))
	}

	seq := injectVersion(t, dbPath, "Observation", "poison-1", []byte{0xff, '{', 0x00, 'n', 'o', 't', ' ', 'j', 's', 'o', 'n'})
	began := time.Now()
	mustFHIR(t, http.StatusCreated, "POST", srv.base+"/Observation", criticalObservation(patient, loincPotassium, "p2"))
	laterDelivered := rcv.waitUntil(60*time.Second, func() bool { return contiguous(rcv.snapshot(id).deliveries, 2) })
	after := time.Since(began)
	counter := scrapeCounter(t, srv.base, "fhirsub_matcher_skipped_changes_total")
	listed := readySkipped(t, srv.base)
	// A subscription made while the change is set aside did not exist
	// when it was written: processing it again must not match this one.
	newer := mustFHIR(t, http.StatusCreated, "POST", srv.base+"/Subscription",
		topicSubscription(rcv.URL(), criticalTopic, "id-only", "Observation?patient=Patient/"+patient))["id"].(string)
	waitStatus(t, srv.base, newer, "active", 10*time.Second)

	// The operator repairs the version and restarts: the change is
	// processed again and its event delivered.
	srv.stop()
	repair := criticalObservation(patient, loincPotassium, "poison")
	repair["id"] = "poison-1"
	body, _ := json.Marshal(repair)
	execSQL(t, dbPath, `UPDATE versions SET body = ? WHERE seq = ?`, body, seq)
	srv.start()
	reprocessed := rcv.waitUntil(30*time.Second, func() bool { return contiguous(rcv.snapshot(id).deliveries, 3) })
	focus3 := rcv.snapshot(id).focus[3]
	listedAfter := readySkipped(t, srv.base)
	// Events are numbered in the feed's order: had the set-aside change
	// matched the newer subscription, this write would be its event 2.
	p3 := mustFHIR(t, http.StatusCreated, "POST", srv.base+"/Observation", criticalObservation(patient, loincPotassium, "p3"))["id"].(string)
	newerGot := rcv.waitUntil(30*time.Second, func() bool { return contiguous(rcv.snapshot(newer).deliveries, 1) })
	newerFocus1 := rcv.snapshot(newer).focus[1]

	line := fmt.Sprintf("skipped changes: undecodable change seq=%d set aside, later change delivered=%v (after %v), "+
		"fhirsub_matcher_skipped_changes_total=%v, /readyz listed seqs %v; after repair and restart: event 3 focus %q, /readyz lists %v; "+
		"a subscription made meanwhile: event 1 focus %q (want the write after the restart, %s)",
		seq, laterDelivered, after.Round(time.Millisecond), counter, listed, focus3, listedAfter, newerFocus1, p3)
	t.Log(line)
	reportFigure(line)

	if !laterDelivered {
		t.Errorf("the change after the poison one was not delivered: events %v", sortedKeys(rcv.snapshot(id).deliveries))
	}
	if counter != 1 {
		t.Errorf("fhirsub_matcher_skipped_changes_total = %v, want 1", counter)
	}
	if !slices.Equal(listed, []int64{seq}) {
		t.Errorf("/readyz lists skipped changes %v, want [%d]", listed, seq)
	}
	if !reprocessed || !strings.HasSuffix(focus3, "/Observation/poison-1") {
		t.Errorf("after the repair: events %v, event 3 focus %q; want the repaired Observation/poison-1",
			sortedKeys(rcv.snapshot(id).deliveries), focus3)
	}
	if len(listedAfter) != 0 {
		t.Errorf("/readyz still lists %v after the repair", listedAfter)
	}
	if !newerGot || !strings.HasSuffix(newerFocus1, "/Observation/"+p3) {
		t.Errorf("the subscription made while the change was set aside: events %v, event 1 focus %q; want Observation/%s",
			sortedKeys(rcv.snapshot(newer).deliveries), newerFocus1, p3)
	}
}

// injectVersion appends a change and a version with the given raw body to
// the feed of a SQLite store (as a corrupt write would leave it) and
// returns its seq.
func injectVersion(t *testing.T, path, typ, id string, body []byte) int64 {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var seq int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) + 1 FROM changes`).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixMilli()
	if _, err := tx.ExecContext(ctx, `INSERT INTO changes (seq, type, id, version, prev_version, interaction, time)
		VALUES (?, ?, ?, 1, NULL, 'create', ?)`, seq, typ, id, now); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO versions (seq, type, id, version, time, body) VALUES (?, ?, ?, 1, ?, ?)`,
		seq, typ, id, now, body); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return seq
}

func execSQL(t *testing.T, path, query string, args ...any) {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(query, args...); err != nil {
		t.Fatal(err)
	}
}

// scrapeCounter reads one unlabelled sample from /metrics (-1 if absent).
func scrapeCounter(t *testing.T, base, name string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// readySkipped returns the seqs /readyz lists as set aside.
func readySkipped(t *testing.T, base string) []int64 {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Skipped []struct {
			Seq int64 `json:"seq"`
		} `json:"skipped_changes"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("/readyz: %v", err)
	}
	var seqs []int64
	for _, s := range out.Skipped {
		seqs = append(seqs, s.Seq)
	}
	return seqs
}
