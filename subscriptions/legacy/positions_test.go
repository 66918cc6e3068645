package legacy_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/fhirsub/fhirsub/channels"
	"github.com/fhirsub/fhirsub/subscriptions/legacy"
)

// TestPositionsInTheStore saves positions as store cursors: per caller and
// subscription_id, only forward (by seq, then skip), and still there after
// the store is reopened.
func TestPositionsInTheStore(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fhir.db")
	db := mustOpenStore(t, path)
	p := legacy.NewPositions(db)
	if got, err := p.Position(ctx, "alice", "sub_1"); err != nil || got != (channels.LegacyPosition{}) {
		t.Fatalf("unknown position: %+v %v", got, err)
	}
	for _, pos := range []channels.LegacyPosition{{Seq: 5}, {Seq: 7, Skip: 1}, {Seq: 7}, {Seq: 6, Skip: 3}} {
		if err := p.SavePosition(ctx, "alice", "sub_1", pos); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.SavePosition(ctx, "bob", "sub_1", channels.LegacyPosition{Seq: 2}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = mustOpenStore(t, path)
	t.Cleanup(func() { _ = db.Close() })
	p = legacy.NewPositions(db)
	for owner, want := range map[string]channels.LegacyPosition{"alice": {Seq: 7, Skip: 1}, "bob": {Seq: 2}, "carol": {}} {
		if got, err := p.Position(ctx, owner, "sub_1"); err != nil || got != want {
			t.Errorf("%s: %+v %v, want %+v", owner, got, err, want)
		}
	}
}
