package legacy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/fhirsub/fhirsub/channels"
	"github.com/fhirsub/fhirsub/fhirstore"
	"github.com/fhirsub/fhirsub/subscriptions"
	"github.com/fhirsub/fhirsub/topics"
)

// Store is the part of fhirstore.Store the feed reads: the end of the
// change feed at start, and changes and versions for replays older than
// the cache.
type Store interface {
	Changes(ctx context.Context, after int64, limit int) ([]fhirstore.Change, error)
	VRead(ctx context.Context, typ, id, versionID string) (*fhirstore.Resource, error)
	LastSeq(ctx context.Context) (int64, error)
}

// Sink receives the legacy messages of every change, in seq order, from the
// matcher's goroutine. *channels.Legacy implements it; neither method may
// block. PublishLazy calls build only when a connection holds a
// subscription.
type Sink interface {
	Publish(seq int64, events []*channels.LegacyEvent)
	PublishLazy(seq int64, build func() ([]*channels.LegacyEvent, error)) error
}

var _ Sink = (*channels.Legacy)(nil)

// Config configures a Feed. Store and Sink are required; the zero value of
// every other field means its default.
type Config struct {
	// Store is read for the end of the feed and for replays.
	Store Store
	// Sink receives the messages (the legacy websocket protocol).
	Sink Sink
	// Topics fire clinical_event messages; only topics with an EventType
	// do. Default topics.BuiltIn().
	Topics []*topics.Topic
	// Logger receives lifecycle and error messages; nil discards them.
	Logger *slog.Logger
	// BatchSize is how many changes one read of the change feed returns
	// in a replay (default 256).
	BatchSize int
	// RetryInterval is the pause after a store error at Start (default
	// 1 s).
	RetryInterval time.Duration
	// CacheSize is how many recent changes are kept in memory to serve
	// replays without reading the store (default 1000; older replays read
	// the store).
	CacheSize int
	// Redact, when set, turns a stored version's JSON into what clients
	// may see (for a Subscription: its secrets masked, its creator's
	// access removed); connections still decide their access on the
	// stored version. nil sends it as stored.
	Redact func(resourceType string, body []byte) []byte
}

// Feed turns the store's ordered change feed into legacy messages. It does
// not tail the feed itself: it is a tap of the subscription matcher
// (subscriptions.Tap), which reads each change and its versions once for
// both. For each change after its start (Start) it builds the update
// message from those versions, evaluates the topics, and hands the
// messages to the Sink — only when a legacy client holds a subscription;
// otherwise only the head moves. It also serves replays
// (channels.LegacyReplayer). Create it with New.
type Feed struct {
	cfg   Config
	log   *slog.Logger
	store Store

	mu      sync.Mutex
	started bool
	stopped bool
	after   int64 // the last seq published
	ready   chan struct{}

	cache cache
}

var (
	_ channels.LegacyReplayer = (*Feed)(nil)
	_ subscriptions.Tap       = (*Feed)(nil)
)

// New checks cfg and returns a Feed; call Start to start it.
func New(cfg Config) (*Feed, error) {
	if cfg.Store == nil {
		return nil, errors.New("legacy feed: a store is required")
	}
	if cfg.Sink == nil {
		return nil, errors.New("legacy feed: a sink is required")
	}
	if cfg.Topics == nil {
		cfg.Topics = topics.BuiltIn()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 256
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = time.Second
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 1000
	}
	f := &Feed{cfg: cfg, log: cfg.Logger.With("component", "legacy-feed"), store: cfg.Store, ready: make(chan struct{})}
	f.cache.size = cfg.CacheSize
	return f, nil
}

// Start finds the feed's starting point, the last change committed, and
// tells the sink (Sink.Publish(lastSeq, nil)); every later change the
// matcher hands to Change is published. A change handed before Start is
// older than the starting point and ignored. Store errors are logged and
// retried until ctx ends; a closed store ends it with an error. Start may
// be called once.
func (f *Feed) Start(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.started || f.stopped {
		return errors.New("legacy feed: Start called twice or after Shutdown")
	}
	for {
		seq, err := f.store.LastSeq(ctx)
		if err == nil {
			f.after = seq
			break
		}
		if stop, err := f.pause(ctx, "read last seq", err); stop {
			if err == nil {
				err = ctx.Err()
			}
			return err
		}
	}
	f.started = true
	f.cache.reset(f.after)
	f.cfg.Sink.Publish(f.after, nil)
	close(f.ready)
	f.log.Info("legacy feed started", "after", f.after)
	return nil
}

// Change implements subscriptions.Tap: it publishes the messages of a
// change after the starting point, once. The versions are read (through v)
// only when a legacy client holds a subscription.
func (f *Feed) Change(ctx context.Context, c fhirstore.Change, v subscriptions.Versions) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.started || f.stopped || c.Seq <= f.after {
		return nil
	}
	var built []*channels.LegacyEvent
	err := f.cfg.Sink.PublishLazy(c.Seq, func() ([]*channels.LegacyEvent, error) {
		events, err := f.fromVersions(c, v)
		built = events
		return events, err
	})
	if err != nil {
		return fmt.Errorf("legacy feed: change %d: %w", c.Seq, err)
	}
	if built != nil {
		f.cache.add(c.Seq, built)
	}
	f.after = c.Seq
	return nil
}

// Ready is closed once Start has found its starting point and told the
// sink: every change committed after that is published.
func (f *Feed) Ready() <-chan struct{} { return f.ready }

// pause handles a store error: stop (with the error to return) when ctx is
// done or the store is closed, else log and wait RetryInterval.
func (f *Feed) pause(ctx context.Context, op string, err error) (bool, error) {
	if ctx.Err() != nil {
		return true, nil
	}
	if errors.Is(err, fhirstore.ErrClosed) {
		return true, fmt.Errorf("legacy feed: %s: %w", op, err)
	}
	f.log.Warn("legacy feed store error", "op", op, "error", err)
	t := time.NewTimer(f.cfg.RetryInterval)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return true, nil
	case <-t.C:
		return false, nil
	}
}

// Shutdown stops publishing: changes handed later are ignored. It returns
// at once (the feed runs no goroutine); ctx is for the caller's symmetry
// with the other components. Idempotent; safe before Start.
func (f *Feed) Shutdown(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped = true
	return nil
}

// Replay implements channels.LegacyReplayer: the events of the changes
// after < seq <= upTo, from memory when the recent-change cache covers the
// range, else read back from the durable change feed.
func (f *Feed) Replay(ctx context.Context, after, upTo int64) ([]*channels.LegacyEvent, error) {
	if upTo <= after {
		return nil, nil
	}
	if events, ok := f.cache.get(after, upTo); ok {
		return events, nil
	}
	var out []*channels.LegacyEvent
	for after < upTo {
		changes, err := f.store.Changes(ctx, after, int(min(int64(f.cfg.BatchSize), upTo-after)))
		if err != nil {
			return nil, fmt.Errorf("replay changes after %d: %w", after, err)
		}
		if len(changes) == 0 {
			break
		}
		for _, c := range changes {
			if c.Seq > upTo {
				return out, nil
			}
			events, err := f.Events(ctx, c)
			if err != nil {
				return nil, fmt.Errorf("replay change %d: %w", c.Seq, err)
			}
			out = append(out, events...)
			after = c.Seq
		}
	}
	return out, nil
}

// cache keeps the events of the last size changes, contiguous in seq.
type cache struct {
	size int

	mu      sync.Mutex
	first   int64 // seq of entries[0]; entries cover first .. first+len-1
	entries [][]*channels.LegacyEvent
}

func (c *cache) reset(after int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.first, c.entries = after+1, nil
}

func (c *cache) add(seq int64, events []*channels.LegacyEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if seq != c.first+int64(len(c.entries)) {
		c.first, c.entries = seq, nil
	}
	c.entries = append(c.entries, events)
	if len(c.entries) > 2*c.size {
		drop := len(c.entries) - c.size
		c.entries = append(c.entries[:0:0], c.entries[drop:]...)
		c.first += int64(drop)
	}
}

// get returns the cached events of after < seq <= upTo, if all are cached.
func (c *cache) get(after, upTo int64) ([]*channels.LegacyEvent, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	last := c.first + int64(len(c.entries)) - 1
	if after+1 < c.first || upTo > last {
		return nil, false
	}
	var out []*channels.LegacyEvent
	for seq := after + 1; seq <= upTo; seq++ {
		out = append(out, c.entries[seq-c.first]...)
	}
	return out, true
}
