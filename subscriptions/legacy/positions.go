package legacy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/fhirsub/fhirsub/channels"
	"github.com/fhirsub/fhirsub/fhirstore"
)

// CursorStore is the part of fhirstore.EventStore that keeps named
// consumer positions in the change feed.
type CursorStore interface {
	Cursor(ctx context.Context, name string) (int64, error)
	Record(ctx context.Context, cursor string, seq int64, at time.Time, matches []fhirstore.Match) ([]fhirstore.Event, error)
}

// Positions keeps the position of each original-dialect subscription
// (caller, subscription_id) as a named cursor of the event store, in the
// same database as the change feed: it survives restarts and is shared by
// every node. A cursor only moves forward. Create it with NewPositions.
type Positions struct {
	store CursorStore
	now   func() time.Time
}

var _ channels.LegacyPositions = (*Positions)(nil)

// NewPositions returns the positions kept in store.
func NewPositions(store CursorStore) *Positions {
	return &Positions{store: store, now: time.Now}
}

// Position implements channels.LegacyPositions.
func (p *Positions) Position(ctx context.Context, owner, subscriptionID string) (int64, error) {
	return p.store.Cursor(ctx, cursorName(owner, subscriptionID))
}

// SavePosition implements channels.LegacyPositions (a lower seq than the
// saved one changes nothing).
func (p *Positions) SavePosition(ctx context.Context, owner, subscriptionID string, seq int64) error {
	if seq < 1 {
		return nil
	}
	_, err := p.store.Record(ctx, cursorName(owner, subscriptionID), seq, p.now(), nil)
	return err
}

// cursorName names the cursor of one caller's subscription_id. The caller
// (token subject and patient) is hashed: cursor names are not secrets,
// but need not carry who the users are.
func cursorName(owner, subscriptionID string) string {
	h := sha256.Sum256([]byte(owner))
	return "legacy-ws/" + hex.EncodeToString(h[:12]) + "/" + subscriptionID
}
