package walvfs_test

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fhirsub/fhirsub/fhirstore/sqlite/walvfs"
)

// summary is what the random workload compares: rows, bytes and a sum
// weighted by key.
const summary = `SELECT count(*) || ':' || ifnull(sum(length(v)), 0) || ':' || ifnull(sum(k * length(v)), 0) FROM t`

// TestRandomWorkloadAgrees runs the same random transactions (inserts,
// updates and deletes of rows from a few bytes to several pages, savepoints
// rolled back, transactions larger than the page cache, checkpoints of
// every kind from a second connection) against one file written through
// the VFS and one written without it, and after every commit compares
// what a reader of each file sees; every tenth commit, a copy of the
// first file and its log, recovered as after a crash, must show the same;
// both end with integrity_check ok.
func TestRandomWorkloadAgrees(t *testing.T) {
	for _, seed := range []uint64{1, 2} {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			dir := t.TempDir()
			type side struct {
				w, r, ck *sql.DB
			}
			var sides [2]side
			for i, through := range []bool{true, false} {
				path := filepath.Join(dir, fmt.Sprint(i, ".db"))
				w := open(t, path, through, "synchronous(NORMAL)", "cache_size(30)")
				mustExec(t, w, `CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)`)
				mustExec(t, w, `CREATE INDEX t_v ON t (substr(v, 1, 8))`)
				sides[i] = side{w: w, r: open(t, path, false), ck: open(t, path, through)}
			}
			rng := rand.New(rand.NewPCG(seed, 42))
			w0, c0 := walvfs.Stats()
			val := func() string {
				n := []int{5, 300, 3000, 9000}[rng.IntN(4)]
				return fmt.Sprintf("%08x", rng.Uint32()) + strings.Repeat(string(rune('a'+rng.IntN(26))), n)
			}
			var commits int
			for step := range 100 {
				// one random transaction, the same on both files
				ops := 1 + rng.IntN([]int{3, 30, 200}[rng.IntN(3)])
				type op struct {
					q    string
					args []any
				}
				var tx []op
				for range ops {
					k := rng.IntN(500)
					switch rng.IntN(10) {
					case 0, 1, 2, 3, 4:
						tx = append(tx, op{`INSERT OR REPLACE INTO t VALUES (?, ?)`, []any{k, val()}})
					case 5, 6:
						tx = append(tx, op{`UPDATE t SET v = ? WHERE k = ?`, []any{val(), k}})
					case 7:
						tx = append(tx, op{`DELETE FROM t WHERE k BETWEEN ? AND ?`, []any{k, k + rng.IntN(5)}})
					case 8:
						tx = append(tx, op{`SAVEPOINT s`, nil}, op{`INSERT OR REPLACE INTO t VALUES (?, ?)`, []any{k, val()}},
							op{`ROLLBACK TO s`, nil}, op{`RELEASE s`, nil})
					case 9:
						tx = append(tx, op{`UPDATE t SET v = v || 'x' WHERE k % 7 = ?`, []any{k % 7}})
					}
				}
				ckpt := []string{"", "", "", "", "PASSIVE", "FULL", "RESTART", "TRUNCATE"}[rng.IntN(8)]
				var seen [2]string
				for i, s := range sides {
					conn, err := s.w.Begin()
					if err != nil {
						t.Fatal(err)
					}
					for _, o := range tx {
						if _, err := conn.Exec(o.q, o.args...); err != nil {
							t.Fatalf("step %d: %s: %v", step, o.q, err)
						}
					}
					if err := conn.Commit(); err != nil {
						t.Fatalf("step %d: commit: %v", step, err)
					}
					if err := s.r.QueryRow(summary).Scan(&seen[i]); err != nil {
						t.Fatal(err)
					}
					if ckpt != "" {
						if _, err := s.ck.Exec(`PRAGMA wal_checkpoint(` + ckpt + `)`); err != nil {
							t.Fatalf("step %d: checkpoint %s: %v", step, ckpt, err)
						}
					}
				}
				commits++
				if seen[0] != seen[1] {
					t.Fatalf("step %d (%d statements): the reader of the file written through the VFS sees %s, of the other %s", step, len(tx), seen[0], seen[1])
				}
				if step%10 == 9 {
					// what a crash now would leave: the file and its log
					// as they are, recovered by a new connection
					if got := recovered(t, filepath.Join(dir, "0.db"), filepath.Join(dir, fmt.Sprint("crash", step))); got != seen[1] {
						t.Fatalf("step %d: a copy of the file and its log taken now recovers to %s, want %s", step, got, seen[1])
					}
				}
			}
			for i, s := range sides {
				mustIntact(t, s.r, fmt.Sprint("file ", i))
			}
			w1, c1 := walvfs.Stats()
			t.Logf("%d random transactions agree; %d WAL writes through the VFS in %d calls", commits, w1-w0, c1-c0)
			if c1-c0 >= w1-w0 {
				t.Errorf("the VFS wrote %d WAL writes in %d calls: it held nothing", w1-w0, c1-c0)
			}
		})
	}
}

// recovered copies the database file at path and its WAL into dir (not
// the shared-memory index, so SQLite rebuilds it from the log's frames and
// checksums, as after a crash), opens the copy and returns the summary the
// test compares, after an integrity_check.
func recovered(t *testing.T, path, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(path + suffix)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "c.db"+suffix), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	db := open(t, filepath.Join(dir, "c.db"), false)
	defer db.Close()
	mustIntact(t, db, "the recovered copy")
	var got string
	if err := db.QueryRow(summary).Scan(&got); err != nil {
		t.Fatal(err)
	}
	return got
}
