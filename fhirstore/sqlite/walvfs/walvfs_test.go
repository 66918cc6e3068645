package walvfs_test

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fhirsub/fhirsub/fhirstore/sqlite/walvfs"
	_ "modernc.org/sqlite"
)

// open opens path in WAL mode, through the VFS or not, with one
// connection.
func open(t *testing.T, path string, through bool, pragmas ...string) *sql.DB {
	t.Helper()
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "wal_autocheckpoint(0)")
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	if through {
		name, err := walvfs.Register()
		if err != nil {
			t.Fatal(err)
		}
		q.Set("vfs", name)
	}
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func mustExec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// mustIntact fails the test unless db passes integrity_check.
func mustIntact(t *testing.T, db *sql.DB, what string) {
	t.Helper()
	var ok string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&ok); err != nil || ok != "ok" {
		t.Fatalf("integrity_check %s: %q, %v", what, ok, err)
	}
}

func count(t *testing.T, db *sql.DB, where string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM t ` + where).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCommitsWriteOnceAndShow: a commit of many pages reaches the file
// with one write call, and every commit is seen at once by a connection
// that reads the file with the default VFS (as the store's readers do);
// small commits, commits larger than the page cache (which rewrite frames
// in place and their checksums), a checkpoint that restarts the log and a
// reopen all leave a database that passes integrity_check with every row.
func TestCommitsWriteOnceAndShow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	for _, sync := range []string{"NORMAL", "FULL"} {
		t.Run(sync, func(t *testing.T) {
			mustExec(t, open(t, path, false), `CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, sync TEXT, v BLOB) WITHOUT ROWID`)
			w := open(t, path, true, "synchronous("+sync+")")
			r := open(t, path, false)
			pad := strings.Repeat("x", 900)

			// 100 rows with random-ish keys: one commit dirties dozens of pages
			w0, c0 := walvfs.Stats()
			tx, err := w.Begin()
			if err != nil {
				t.Fatal(err)
			}
			for i := range 100 {
				if _, err := tx.Exec(`INSERT INTO t VALUES (?, ?, ?)`, fmt.Sprintf("%s-%03d-%d", sync, (i*37)%100, i), sync, pad); err != nil {
					t.Fatal(err)
				}
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			w1, c1 := walvfs.Stats()
			t.Logf("synchronous=%s: one commit of 100 rows: %d WAL writes by SQLite, %d write calls", sync, w1-w0, c1-c0)
			if w1-w0 < 40 || c1-c0 > (w1-w0)/20 {
				t.Errorf("%d write calls for %d WAL writes of one commit, want 20 or more writes a call", c1-c0, w1-w0)
			}
			if n := count(t, r, `WHERE sync = '`+sync+`'`); n != 100 {
				t.Fatalf("the reader sees %d rows after the commit, want 100", n)
			}

			// commits of one row each, each seen by the reader at once
			for i := range 200 {
				mustExec(t, w, `INSERT INTO t VALUES (?, ?, ?)`, fmt.Sprintf("%s-one-%04d", sync, i), sync, pad)
				if n := count(t, r, `WHERE sync = '`+sync+`'`); n != 101+i {
					t.Fatalf("the reader sees %d rows after commit %d, want %d", n, i, 101+i)
				}
			}

			// a transaction larger than the page cache (20 pages):
			// frames spill before the commit and are rewritten in place
			mustExec(t, w, `PRAGMA cache_size = 20`)
			tx, err = w.Begin()
			if err != nil {
				t.Fatal(err)
			}
			for i := range 300 {
				if _, err := tx.Exec(`INSERT INTO t VALUES (?, ?, ?)`, fmt.Sprintf("%s-big-%04d", sync, (i*7919)%300), sync, pad); err != nil {
					t.Fatal(err)
				}
				if _, err := tx.Exec(`UPDATE t SET v = ? WHERE k = ?`, pad+"y", fmt.Sprintf("%s-one-%04d", sync, i%200)); err != nil {
					t.Fatal(err)
				}
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			if n := count(t, r, `WHERE sync = '`+sync+`'`); n != 600 {
				t.Fatalf("the reader sees %d rows after the large commit, want 600", n)
			}

			// a checkpoint of the whole log, then a commit that restarts it
			mustExec(t, w, `PRAGMA wal_checkpoint(TRUNCATE)`)
			mustExec(t, w, `INSERT INTO t VALUES (?, ?, ?)`, sync+"-after-restart", sync, pad)
			if n := count(t, r, `WHERE sync = '`+sync+`'`); n != 601 {
				t.Fatalf("the reader sees %d rows after the log restarted, want 601", n)
			}
			_ = w.Close()
			_ = r.Close()

			again := open(t, path, false)
			mustIntact(t, again, "after reopening")
			if n := count(t, again, `WHERE sync = '`+sync+`'`); n != 601 {
				t.Fatalf("%d rows after reopening, want 601", n)
			}
		})
	}
}

// TestRecoversWithoutCheckpoint: a log the VFS wrote is replayed by a
// connection that opens the file after the writer left without a
// checkpoint (the frames are all SQLite finds then).
func TestRecoversWithoutCheckpoint(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "r.db")
	w := open(t, path, true, "synchronous(NORMAL)")
	mustExec(t, w, `CREATE TABLE t (k TEXT PRIMARY KEY, sync TEXT, v BLOB) WITHOUT ROWID`)
	for i := range 50 {
		mustExec(t, w, `INSERT INTO t VALUES (?, 'n', ?)`, fmt.Sprint("k", (i*13)%50), strings.Repeat("z", 3000))
	}
	// keep the log: a reader of another process would find it as is
	conn, err := w.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := open(t, path, false)
	if n := count(t, r, ""); n != 50 {
		t.Fatalf("a second connection reads %d rows from the log, want 50", n)
	}
	mustIntact(t, r, "after the replay")
}

// TestKilledWriterLosesNoCommit: a process that commits through the VFS
// (synchronous=FULL, as the store's resource writes) and is killed with
// SIGKILL mid-stream leaves a file in which every commit it reported
// survives and integrity_check passes. The writer is this test binary
// run again (walvfsChild).
func TestKilledWriterLosesNoCommit(t *testing.T) {
	if os.Getenv("WALVFS_CHILD") != "" {
		walvfsChild(t, os.Getenv("WALVFS_CHILD"))
		return
	}
	path := filepath.Join(t.TempDir(), "k.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledWriterLosesNoCommit$", "-test.v")
	cmd.Env = append(os.Environ(), "WALVFS_CHILD="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked []string
	sc := bufio.NewScanner(out)
	for sc.Scan() && len(acked) < 300 {
		if k, ok := strings.CutPrefix(sc.Text(), "committed "); ok {
			acked = append(acked, k)
		}
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	t.Logf("killed the writer after %d reported commits", len(acked))
	if len(acked) < 300 {
		t.Fatalf("the writer reported %d commits before it ended, want 300", len(acked))
	}
	db := open(t, path, false)
	mustIntact(t, db, "after the kill")
	n := count(t, db, "")
	t.Logf("%d rows in the file (reported: %d)", n, len(acked))
	for _, k := range acked {
		var got int
		if err := db.QueryRow(`SELECT count(*) FROM t WHERE k = ?`, k).Scan(&got); err != nil || got != 1 {
			t.Fatalf("reported commit %s: %d rows, %v", k, got, err)
		}
	}
}

// walvfsChild commits rows of ~8 pages each and reports each commit on
// stdout until it is killed.
func walvfsChild(t *testing.T, path string) {
	w := open(t, path, true, "synchronous(FULL)")
	mustExec(t, w, `CREATE TABLE t (k TEXT PRIMARY KEY, sync TEXT, v BLOB) WITHOUT ROWID`)
	pad := strings.Repeat("k", 30000)
	for i := 0; ; i++ {
		k := fmt.Sprintf("%08d", (i*7919)%100000000)
		mustExec(t, w, `INSERT INTO t VALUES (?, 'full', ?)`, k, pad)
		fmt.Printf("committed %s\n", k)
	}
}
