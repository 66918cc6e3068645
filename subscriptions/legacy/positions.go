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

// skipRadix encodes a position in one cursor value: Seq*skipRadix + Skip.
// The order of positions is kept, so the cursor's "only forward" rule
// applies to them. A change yields at most one update and one clinical
// event per built-in topic, far fewer than skipRadix messages.
const skipRadix = 1024

// Position implements channels.LegacyPositions.
func (p *Positions) Position(ctx context.Context, owner, subscriptionID string) (channels.LegacyPosition, error) {
	v, err := p.store.Cursor(ctx, cursorName(owner, subscriptionID))
	if err != nil {
		return channels.LegacyPosition{}, err
	}
	return channels.LegacyPosition{Seq: v / skipRadix, Skip: int(v % skipRadix)}, nil
}

// SavePosition implements channels.LegacyPositions (an earlier position
// than the saved one changes nothing).
func (p *Positions) SavePosition(ctx context.Context, owner, subscriptionID string, pos channels.LegacyPosition) error {
	v := pos.Seq*skipRadix + int64(min(max(pos.Skip, 0), skipRadix-1))
	if v < 1 {
		return nil
	}
	_, err := p.store.Record(ctx, cursorName(owner, subscriptionID), v, p.now(), nil)
	return err
}

// cursorName names the cursor of one caller's subscription_id. The caller
// (token subject and patient) is hashed: cursor names are not secrets,
// but need not carry who the users are.
func cursorName(owner, subscriptionID string) string {
	h := sha256.Sum256([]byte(owner))
	return "legacy-ws/" + hex.EncodeToString(h[:12]) + "/" + subscriptionID
}
