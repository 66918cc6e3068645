package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/fhirsub/fhirsub/fhirstore"
)

// Claim records id as the holder of the conditional-write key unless a
// claim exists; the insert and the read of the holder run in one write
// transaction, so concurrent claims see one holder.
func (db *DB) Claim(ctx context.Context, key, id string) (string, error) {
	if key == "" || !fhirstore.ValidID(id) {
		return "", fmt.Errorf("%w: claim %q for id %q", fhirstore.ErrInvalid, key, id)
	}
	if db.closed() {
		return "", fhirstore.ErrClosed
	}
	var holder string
	err := db.writeFunc(ctx, func(ctx context.Context, tx *wtx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO claims (key, id, time) VALUES (?, ?, ?)
			ON CONFLICT (key) DO NOTHING`, key, id, time.Now().UnixMilli()); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT id FROM claims WHERE key = ?`, key).Scan(&holder)
	})
	if err != nil {
		return "", fmt.Errorf("claim %q: %w", key, err)
	}
	return holder, nil
}

// Release removes the claim on key if id holds it.
func (db *DB) Release(ctx context.Context, key, id string) error {
	if db.closed() {
		return fhirstore.ErrClosed
	}
	err := db.writeFunc(ctx, func(ctx context.Context, tx *wtx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM claims WHERE key = ? AND id = ?`, key, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("release claim %q: %w", key, err)
	}
	return nil
}
