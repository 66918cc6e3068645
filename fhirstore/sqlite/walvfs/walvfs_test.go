package walvfs_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
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

func exec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
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
			exec(t, open(t, path, false), `CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, sync TEXT, v BLOB) WITHOUT ROWID`)
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
				exec(t, w, `INSERT INTO t VALUES (?, ?, ?)`, fmt.Sprintf("%s-one-%04d", sync, i), sync, pad)
				if n := count(t, r, `WHERE sync = '`+sync+`'`); n != 101+i {
					t.Fatalf("the reader sees %d rows after commit %d, want %d", n, i, 101+i)
				}
			}

			// a transaction larger than the page cache (20 pages):
			// frames spill before the commit and are rewritten in place
			exec(t, w, `PRAGMA cache_size = 20`)
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
			exec(t, w, `PRAGMA wal_checkpoint(TRUNCATE)`)
			exec(t, w, `INSERT INTO t VALUES (?, ?, ?)`, sync+"-after-restart", sync, pad)
			if n := count(t, r, `WHERE sync = '`+sync+`'`); n != 601 {
				t.Fatalf("the reader sees %d rows after the log restarted, want 601", n)
			}
			_ = w.Close()
			_ = r.Close()

			again := open(t, path, false)
			var ok string
			if err := again.QueryRow(`PRAGMA integrity_check`).Scan(&ok); err != nil || ok != "ok" {
				t.Fatalf("integrity_check after reopening: %q, %v", ok, err)
			}
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
	exec(t, w, `CREATE TABLE t (k TEXT PRIMARY KEY, sync TEXT, v BLOB) WITHOUT ROWID`)
	for i := range 50 {
		exec(t, w, `INSERT INTO t VALUES (?, 'n', ?)`, fmt.Sprint("k", (i*13)%50), strings.Repeat("z", 3000))
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
	var ok string
	if err := r.QueryRow(`PRAGMA integrity_check`).Scan(&ok); err != nil || ok != "ok" {
		t.Fatalf("integrity_check: %q, %v", ok, err)
	}
}
