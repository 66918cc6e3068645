package subscriptions

import (
	"context"

	"github.com/fhirsub/fhirsub/fhirstore"
)

// The change feed is tailed once, by the matcher. Every change it reads
// is handed, with its versions, to the taps (Config.Taps: the legacy
// channel's feed) before it is matched; a version a tap or the matcher
// asks for is read from the store and decoded once for all of them.

// Versions are the versions of one change, read from the store and
// decoded at most once, on first use. They are valid only during the
// Tap.Change call they are given to.
type Versions interface {
	// Resource returns the new version (a tombstone for a delete). An
	// error wrapping fhirstore.ErrNotFound means the version is gone.
	Resource() (*fhirstore.Resource, error)
	// Current returns the new version decoded (nil for a delete).
	Current() (map[string]any, error)
	// Previous returns the decoded version the change replaced (nil for
	// a create or when it was a tombstone).
	Previous() (map[string]any, error)
}

// Tap receives every change of the feed the matcher reads, in seq order,
// on the matcher's goroutine, before the change is matched: Change must
// not block on a client. A change may be handed again (after a failure or
// a restart, from the matcher's stored cursor on): a tap ignores a seq it
// has seen. An error makes the matcher retry the change (and, if it keeps
// failing while the store answers, set it aside: see skipped.go).
type Tap interface {
	Change(ctx context.Context, c fhirstore.Change, v Versions) error
}

var _ Versions = (*loaded)(nil)
