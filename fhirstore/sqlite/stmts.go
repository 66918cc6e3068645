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

func (s *writeStmts) prepare(ctx context.Context, c *sql.Conn) error {
	err := prepareAll(ctx, c.PrepareContext, []stmtSQL{
		{&s.current, `SELECT r.version, r.deleted, v.time, r.keys FROM resources r JOIN versions v ON v.seq = r.seq
			WHERE r.type = ? AND r.id = ?`},
		{&s.insChange, `INSERT INTO changes (type, id, version, prev_version, interaction, time) VALUES (?, ?, ?, ?, ?, ?)`},
		{&s.insVersion, `INSERT INTO versions (seq, type, id, version, time, body) VALUES (?, ?, ?, ?, ?, ?)`},
		{&s.putRes, `INSERT INTO resources (type, id, version, seq, deleted, keys) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (type, id) DO UPDATE SET version = excluded.version, seq = excluded.seq,
			deleted = excluded.deleted, keys = excluded.keys`},
		{&s.insRes, `INSERT INTO resources (type, id, version, seq, deleted, keys) VALUES (?, ?, ?, ?, ?, ?)`},
		{&s.delKey, `DELETE FROM search_keys WHERE type = ? AND param = ? AND value = ? AND sys = ? AND id = ?`},
		{&s.savepoint, `SAVEPOINT request`},
		{&s.release, `RELEASE request`},
		{&s.rollbackTo, `ROLLBACK TO request`},
	})
	if err != nil {
		return err
	}
	for n := 1; n <= maxKeyRows; n++ {
		q := "INSERT OR IGNORE INTO search_keys (type, param, value, sys, id) VALUES " +
			strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?), ", n), ", ")
		st, err := c.PrepareContext(ctx, q)
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

func (s *writeStmts) close() { closeAll(s.all()...) }

// readStmts are the statements of the hot read paths (Read, VRead,
// Changes, TypeChanges, LastSeq), prepared once on the reader pool:
// database/sql then prepares each on a pool connection the first time it
// runs there and reuses it, instead of parsing the SQL text at every call
// (a VRead per change, for every consumer of the change feed).
type readStmts struct {
	read        *sql.Stmt
	vread       *sql.Stmt
	changes     *sql.Stmt
	typeChanges *sql.Stmt
	lastSeq     *sql.Stmt
}

func (s *readStmts) prepare(ctx context.Context, db *sql.DB) error {
	return prepareAll(ctx, db.PrepareContext, []stmtSQL{
		{&s.read, `SELECT v.id, v.version, v.time, v.body
			FROM resources r JOIN versions v ON v.seq = r.seq WHERE r.type = ? AND r.id = ?`},
		{&s.vread, `SELECT id, version, time, body FROM versions WHERE type = ? AND id = ? AND version = ?`},
		{&s.changes, `SELECT ` + changeColumns + ` FROM changes WHERE seq > ? ORDER BY seq LIMIT ?`},
		// served by changes_type_seq
		{&s.typeChanges, `SELECT ` + changeColumns + ` FROM changes WHERE type = ? AND seq > ? ORDER BY seq LIMIT ?`},
		{&s.lastSeq, `SELECT max(seq) FROM changes`},
	})
}

func (s *readStmts) close() { closeAll(s.read, s.vread, s.changes, s.typeChanges, s.lastSeq) }

// stmtSQL is a statement to prepare and where to keep it.
type stmtSQL struct {
	dst   **sql.Stmt
	query string
}

// prepareAll prepares each statement with prepare (a connection's or a
// pool's PrepareContext) and keeps it at its dst.
func prepareAll(ctx context.Context, prepare func(context.Context, string) (*sql.Stmt, error), stmts []stmtSQL) error {
	for _, p := range stmts {
		st, err := prepare(ctx, p.query)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", p.query, err)
		}
		*p.dst = st
	}
	return nil
}

// closeAll closes the statements that were prepared (nil ones were not).
func closeAll(stmts ...*sql.Stmt) {
	for _, st := range stmts {
		if st != nil {
			_ = st.Close()
		}
	}
}
