package match

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/fhirsub/fhirsub/fhirstore"
)

// Feed is the change feed a Tail reads (fhirstore.Store has it).
type Feed interface {
	// Changes returns up to limit changes after seq after, oldest first.
	Changes(ctx context.Context, after int64, limit int) ([]fhirstore.Change, error)
	// Wait returns when a change after seq after may exist, or when ctx
	// ends.
	Wait(ctx context.Context, after int64) error
	// Ping reports whether the store answers.
	Ping(ctx context.Context) error
}

// Handler is what a Tail hands each change to: the subscription pipeline
// matches, records and dispatches it.
type Handler interface {
	// Handle processes one change. stored reports that it stored the
	// cursor at c (with the change's events); when false, the Tail saves
	// the cursor later with SaveCursor.
	Handle(ctx context.Context, c fhirstore.Change) (stored bool, err error)
	// SetAside records that c failed attempts times in a row while the
	// store answered, and moves the cursor past it.
	SetAside(ctx context.Context, c fhirstore.Change, attempts int, cause error) error
	// SaveCursor stores the cursor at c.
	SaveCursor(ctx context.Context, c fhirstore.Change) error
	// Reading reports the commit time of the change being processed, or
	// the zero time when the Tail has caught up with the feed.
	Reading(at time.Time)
}

// BatchHandler is a Handler that can also process several changes with
// one commit of their events, so that the Tail keeps pace with writes
// arriving faster than commits can follow one another.
type BatchHandler interface {
	Handler
	// HandleBatch processes changes[:n] in order (1 ≤ n ≤ len(changes)
	// when err is nil): it may stop early, e.g. before a change that
	// must go alone or that fails. stored reports that the cursor is
	// stored at changes[n-1]. On an error nothing of the batch counts,
	// and the Tail hands changes[0] to Handle.
	HandleBatch(ctx context.Context, changes []fhirstore.Change) (n int, stored bool, err error)
}

// TailConfig configures a Tail. Zero values mean the defaults given.
type TailConfig struct {
	// BatchSize is how many changes are read at once (default 256); it
	// also bounds how many changes may wait for SaveCursor.
	BatchSize int
	// PollInterval bounds an idle wait without a wake-up (default 1 s).
	PollInterval time.Duration
	// CursorEvery bounds how long the cursor stays unsaved past changes
	// that stored nothing (default 1 s).
	CursorEvery time.Duration
	// MaxAttempts is how many times in a row a failing change is tried,
	// while the store answers, before it is set aside (default 8).
	MaxAttempts int
	// Logger receives failures (default: discard).
	Logger *slog.Logger
}

// Tail is the one reader of the change feed: it reads each change once,
// in order, and hands it to its Handler. A change that stores nothing
// does not write the cursor on its own: the cursor moves with the next
// change that stores it, or is saved after CursorEvery or BatchSize such
// changes, and as the Tail stops, so that a change nobody is interested
// in costs no write. After a crash the changes after the saved cursor are
// handed over again; the Handler makes that idempotent.
type Tail struct {
	feed Feed
	h    Handler
	cfg  TailConfig
}

// NewTail returns a Tail of feed handing changes to h.
func NewTail(feed Feed, h Handler, cfg TailConfig) *Tail {
	cfg.BatchSize = orDefault(cfg.BatchSize, 256)
	cfg.PollInterval = orDefault(cfg.PollInterval, time.Second)
	cfg.CursorEvery = orDefault(cfg.CursorEvery, time.Second)
	cfg.MaxAttempts = orDefault(cfg.MaxAttempts, 8)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Tail{feed: feed, h: h, cfg: cfg}
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Run reads the feed after cursor until ctx ends, then saves the cursor.
// A change that keeps failing while the store answers is set aside after
// MaxAttempts; while the store does not answer, the Tail waits and tries
// again (an outage must not skip changes).
func (t *Tail) Run(ctx context.Context, cursor int64) {
	var retry time.Duration
	var failing int64 // the seq that failed last, and how many times in a row
	attempts := 0
	lazy := lazyCursor{t: t, last: time.Now()}
	defer lazy.save(context.WithoutCancel(ctx))
	for ctx.Err() == nil {
		changes, err := t.feed.Changes(ctx, cursor, t.cfg.BatchSize)
		if err != nil {
			retry = t.pause(ctx, retry, "read change feed", err)
			continue
		}
		if len(changes) == 0 {
			t.h.Reading(time.Time{}) // caught up
			lazy.maybeSave(ctx)
			wctx, cancel := context.WithTimeout(ctx, lazy.wait(t.cfg.PollInterval))
			err := t.feed.Wait(wctx, cursor)
			cancel()
			if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				retry = t.pause(ctx, retry, "wait for changes", err)
			}
			continue
		}
		bh, batches := t.h.(BatchHandler)
		for i := 0; i < len(changes); i++ {
			c := changes[i]
			t.h.Reading(c.Time)
			if batches && failing != c.Seq {
				n, stored, err := bh.HandleBatch(ctx, changes[i:])
				if err == nil && n >= 1 && n <= len(changes)-i {
					last := changes[i+n-1]
					cursor, retry = last.Seq, 0
					if stored {
						lazy.stored()
					} else {
						lazy.add(last, n)
					}
					i += n - 1
					continue
				}
				if ctx.Err() != nil {
					break
				}
				// The batch failed: this change goes alone, below.
			}
			stored, err := t.h.Handle(ctx, c)
			if err != nil {
				if ctx.Err() != nil {
					break
				}
				if failing != c.Seq {
					failing, attempts = c.Seq, 0
				}
				attempts++
				if attempts >= t.cfg.MaxAttempts && t.feed.Ping(ctx) == nil {
					serr := t.h.SetAside(ctx, c, attempts, err)
					if serr == nil {
						cursor, retry = c.Seq, 0
						lazy.stored()
						continue
					}
					err = serr
				}
				lazy.save(ctx)
				retry = t.pause(ctx, retry, "process change", err)
				break
			}
			cursor, retry = c.Seq, 0
			if stored {
				lazy.stored()
			} else {
				lazy.add(c, 1)
			}
		}
		lazy.maybeSave(ctx)
	}
}

// pause logs a failure and sleeps a growing interval (capped at 5 s)
// before the next try.
func (t *Tail) pause(ctx context.Context, last time.Duration, what string, err error) time.Duration {
	d := min(max(2*last, 50*time.Millisecond), 5*time.Second)
	t.cfg.Logger.Error("matcher: "+what, "err", err, "retry_in", d)
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
	case <-tm.C:
	}
	return d
}

// lazyCursor is the cursor past changes that stored nothing.
type lazyCursor struct {
	t       *Tail
	pending fhirstore.Change // the last such change (zero Seq: none)
	n       int              // how many since the stored cursor
	last    time.Time        // when the cursor was last stored
}

// add notes n more changes, up to c, that stored nothing.
func (l *lazyCursor) add(c fhirstore.Change, n int) { l.pending, l.n = c, l.n+n }

// stored notes that the cursor is stored.
func (l *lazyCursor) stored() { l.pending, l.n, l.last = fhirstore.Change{}, 0, time.Now() }

// maybeSave stores the cursor when CursorEvery has passed or BatchSize
// changes wait.
func (l *lazyCursor) maybeSave(ctx context.Context) {
	if l.n > 0 && (l.n >= l.t.cfg.BatchSize || time.Since(l.last) >= l.t.cfg.CursorEvery) {
		l.save(ctx)
	}
}

// wait bounds an idle wait so that a pending cursor is stored in time.
func (l *lazyCursor) wait(poll time.Duration) time.Duration {
	if l.n == 0 {
		return poll
	}
	return max(min(poll, l.t.cfg.CursorEvery-time.Since(l.last)), time.Millisecond)
}

// save stores the pending cursor; a failure is logged and the next save
// covers it (until then a restart hands more changes over again).
func (l *lazyCursor) save(ctx context.Context) {
	if l.n == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c := l.pending
	if err := l.t.h.SaveCursor(ctx, c); err != nil {
		l.t.cfg.Logger.Warn("matcher: save cursor", "seq", c.Seq, "err", err)
		return
	}
	l.stored()
}
