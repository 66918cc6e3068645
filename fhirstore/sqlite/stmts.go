package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// maxKeyRows is the largest multi-row search_keys insert; longer key lists
// are inserted in chunks.
const maxKeyRows = 32

// writeStmts are the statements of the write path, prepared once on the
// writer connection and used under the write lock only.
type writeStmts struct {
	current    *sql.Stmt
	insChange  *sql.Stmt
	insVersion *sql.Stmt
	putRes     *sql.Stmt
	insRes     *sql.Stmt
	delKey     *sql.Stmt
	savepoint  *sql.Stmt
	release    *sql.Stmt
	rollbackTo *sql.Stmt
	insKeys    [maxKeyRows + 1]*sql.Stmt // insKeys[n] inserts n rows
}

func (s *writeStmts) prepare(ctx context.Context, db *sql.DB) error {
	for _, p := range []struct {
		dst   **sql.Stmt
		query string
	}{
		{&s.current, `SELECT r.version, r.deleted, v.time, r.keys FROM resources r JOIN versions v ON v.seq = r.seq
			WHERE r.type = ? AND r.id = ?`},
		{&s.insChange, `INSERT INTO changes (type, id, version, prev_version, interaction, time) VALUES (?, ?, ?, ?, ?, ?)`},
		{&s.insVersion, `INSERT INTO versions (seq, type, id, version, time, body) VALUES (?, ?, ?, ?, ?, ?)`},
		{&s.putRes, `INSERT INTO resources (type, id, version, seq, deleted, keys) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (type, id) DO UPDATE SET version = excluded.version, seq = excluded.seq,
			deleted = excluded.deleted, keys = excluded.keys`},
		{&s.insRes, `INSERT INTO resources (type, id, version, seq, deleted, keys) VALUES (?, ?, ?, ?, ?, ?)`},
		{&s.delKey, `DELETE FROM search_keys WHERE type = ? AND param = ? AND value = ? AND id = ?`},
		{&s.savepoint, `SAVEPOINT request`},
		{&s.release, `RELEASE request`},
		{&s.rollbackTo, `ROLLBACK TO request`},
	} {
		st, err := db.PrepareContext(ctx, p.query)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", p.query, err)
		}
		*p.dst = st
	}
	for n := 1; n <= maxKeyRows; n++ {
		q := "INSERT OR IGNORE INTO search_keys (type, param, value, id) VALUES " +
			strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?), ", n), ", ")
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("prepare key insert: %w", err)
		}
		s.insKeys[n] = st
	}
	return nil
}

func (s *writeStmts) all() []*sql.Stmt {
	out := []*sql.Stmt{s.current, s.insChange, s.insVersion, s.putRes, s.insRes, s.delKey, s.savepoint, s.release, s.rollbackTo}
	return append(out, s.insKeys[:]...)
}

func (s *writeStmts) close() {
	for _, st := range s.all() {
		if st != nil {
			_ = st.Close()
		}
	}
}
