package sqlite

import (
	"context"
	"database/sql"
)

// The writer's transactions run on one pinned connection (DB.wconn)
// with prepared BEGIN IMMEDIATE, COMMIT and ROLLBACK statements, not
// through database/sql's Tx. The driver compiles a Tx's BEGIN and COMMIT
// again for every transaction, and a Tx wraps every prepared statement
// anew on each use (Tx.Stmt); with one or two creates a commit, as at a
// steady rate of writes, that was ~7% of the server's CPU.
//
// Only the group-commit leader uses the connection, with wmu held, so a
// transaction begun on it cannot interleave with another; and a pinned
// sql.Conn never hands its statements to a fresh connection, so a
// statement meant for the transaction cannot run outside it.

// wtx is the open write transaction, handed to the requests of a group
// commit (request.fn). Its methods run on the writer's connection; every
// statement prepared on that connection runs as it is.
type wtx struct {
	conn *sql.Conn
}

// StmtContext returns s: the writer's statements are prepared on the
// connection the transaction runs on.
func (t *wtx) StmtContext(_ context.Context, s *sql.Stmt) *sql.Stmt { return s }

// ExecContext runs query inside the transaction.
func (t *wtx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return t.conn.ExecContext(ctx, query, args...)
}

// QueryContext runs query inside the transaction.
func (t *wtx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.conn.QueryContext(ctx, query, args...)
}

// QueryRowContext runs query inside the transaction.
func (t *wtx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return t.conn.QueryRowContext(ctx, query, args...)
}

// txStmts are the writer's transaction control statements.
type txStmts struct {
	begin, commit, rollback *sql.Stmt
}

func (s *txStmts) prepare(ctx context.Context, c *sql.Conn) error {
	return prepareAll(ctx, c.PrepareContext, []stmtSQL{
		{&s.begin, "BEGIN IMMEDIATE"}, // the write lock at once: no upgrade from a read that could fail busy
		{&s.commit, "COMMIT"},
		{&s.rollback, "ROLLBACK"},
	})
}

func (s *txStmts) close() { closeAll(s.begin, s.commit, s.rollback) }

// begin starts the write transaction. Called with wmu held.
func (db *DB) begin() (*wtx, error) {
	if _, err := db.txs.begin.ExecContext(db.wctx); err != nil {
		return nil, err
	}
	return &db.tx, nil
}

// commitTx commits the write transaction. A COMMIT that failed may leave
// the transaction open: it is rolled back then, so that the connection is
// outside any transaction again, as after a commit.
func (db *DB) commitTx() error {
	if _, err := db.txs.commit.ExecContext(db.wctx); err != nil {
		db.rollbackTx()
		return err
	}
	return nil
}

// rollbackTx rolls the write transaction back. Its error is not worth
// reporting: SQLite may have rolled the transaction back already (after
// an I/O error, say), and the caller fails the batch either way.
func (db *DB) rollbackTx() {
	_, _ = db.txs.rollback.ExecContext(db.wctx)
}
