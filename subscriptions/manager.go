package subscriptions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fhirsub/fhirsub/conformance/search"
	"github.com/fhirsub/fhirsub/fhirstore"
	"github.com/fhirsub/fhirsub/subscriptions/delivery"
	"github.com/fhirsub/fhirsub/subscriptions/match"
	"github.com/fhirsub/fhirsub/topics"
)

// Sender delivers one rest-hook request (cmd/fhirsub adapts
// channels.RestHook). A failure may implement RetryHint to say whether a
// retry can succeed and how long the receiver asked to wait.
type Sender interface {
	Send(ctx context.Context, req Request) error
}

// Request is one rest-hook HTTP request.
type Request struct {
	// Method is "POST" or "PUT".
	Method string
	// URL is the absolute http or https URL.
	URL string
	// Headers are the Subscription's channel.header lines, "Name: value".
	Headers []string
	// ContentType is the Content-Type header; empty sends none.
	ContentType string
	// Body is the request body.
	Body []byte
	// Timeout bounds the whole request.
	Timeout time.Duration
	// Secret, when not empty, is the HMAC key of the signature headers.
	Secret []byte
}

// RetryHint is implemented by Sender failures that know whether a retry
// can succeed (permanent: it cannot) and how long the receiver asked to
// wait (0: no Retry-After).
type RetryHint interface {
	RetryHint() (permanent bool, after time.Duration)
}

// noSender is the failure of a delivery without a Sender configured.
type noSender struct{}

func (noSender) Error() string                    { return "no rest-hook sender configured" }
func (noSender) RetryHint() (bool, time.Duration) { return true, 0 }

// Config configures a Manager. Zero values mean the defaults given.
type Config struct {
	// Store holds the resources and the change feed (required).
	Store fhirstore.Store
	// Events holds cursors, event logs and delivery state (required).
	Events fhirstore.EventStore
	// Sender delivers rest-hook notifications (required for rest-hook
	// subscriptions to be delivered).
	Sender Sender
	// Topics is the topic registry shared with the caller (default: a new
	// one). Built-in and stored topics are loaded into it by Run.
	Topics *topics.Registry
	// BaseURL is the server's FHIR base as clients see it (required); it
	// makes the absolute references of notifications.
	BaseURL string
	// Logger receives lifecycle and delivery messages (default: discard).
	Logger *slog.Logger
	// ValidateEndpoint checks a rest-hook endpoint when a subscription is
	// submitted (required: the rest-hook sender's SSRF guard, e.g.
	// channels.RestHook.ValidateEndpoint).
	ValidateEndpoint func(url string) error
	// MaxFailures is the number of consecutive failed deliveries after
	// which a subscription goes to status error (default 5).
	MaxFailures int
	// RetryBase and RetryMax bound the exponential backoff between
	// attempts (defaults 1 s and 10 min).
	RetryBase, RetryMax time.Duration
	// Timeout is the per-attempt timeout when a subscription gives no
	// backport-timeout (default 30 s).
	Timeout time.Duration
	// MaxTimeout caps the per-attempt timeout, whatever backport-timeout
	// a subscription asks for (default 30 s).
	MaxTimeout time.Duration
	// Retention is the number of delivered events kept per subscription
	// for $events (default 1000).
	Retention int
	// HeartbeatTick is how often the scheduler looks for due heartbeats,
	// retries and ended subscriptions (default 1 s).
	HeartbeatTick time.Duration
	// PollInterval bounds how long the matcher sleeps without a wake-up
	// (default 1 s); writes of this process wake it at once.
	PollInterval time.Duration
	// Workers is the number of concurrent rest-hook deliveries to
	// receivers that answer in time (default 64). Slow receivers get a
	// separate pool of Workers/4 (at least 1), and an attempt running
	// longer than SlowAfter leaves the Workers (see queue).
	Workers int
	// PerHostWorkers bounds the concurrent deliveries to one slow
	// destination host:port (default Workers/4, at least 1).
	PerHostWorkers int
	// SlowAfter is how long an attempt may take before its destination
	// counts as slow (default 2 s).
	SlowAfter time.Duration
	// BatchSize is the number of changes the matcher reads at once
	// (default 256).
	BatchSize int
	// MaxChangeAttempts is how many times in a row the matcher tries a
	// change that fails, while the store answers, before it sets the
	// change aside (default 8; see skipped.go).
	MaxChangeAttempts int
	// Cursor names the matcher's cursor in the event store (default
	// "matcher").
	Cursor string
	// CursorEvery bounds how long the matcher keeps its cursor in memory
	// past changes that recorded no event before it stores it (default
	// 1 s); a crash makes it process those changes again.
	CursorEvery time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// NewID makes Bundle and Parameters ids (default fhirstore.NewID).
	NewID func() string
	// Taps receive every change the matcher reads, with its versions
	// (see Tap): the one tail of the change feed serves them too.
	Taps []Tap
	// Cluster shares rest-hook delivery with the other nodes of the store
	// (default: this node delivers every subscription).
	Cluster Cluster
	// MaxPerOwner caps the subscriptions one owner (the subject and
	// patient of the creating token) holds; a create past it is refused
	// with 429. 0 means no cap. Without authentication (smart.Anonymous)
	// there is no owner to count and no cap.
	MaxPerOwner int
}

// Manager assembles the subscription pipeline and is its face to the
// rest of the server. A write stored through web becomes a change in the
// feed; match.Tail reads it once and hands it to the matcher (matcher.go),
// which asks the registry (registry.go) for candidates, records the
// events of the subscriptions it triggers in the event log, and hands
// them on (route.go): rest-hook ones to the delivery queue, where the
// deliverer's workers (delivery.go) send them under the lease
// delivery.Keeper holds; websocket ones to the listeners (listen.go) that
// wsbridge and the legacy channel registered. The Manager itself keeps
// the write hooks (interceptor.go), the notification Bundles
// (notification.go) and $status / $events (operations.go). Create it with
// New, start it with Run and stop it with Shutdown.
type Manager struct {
	cfg    Config
	store  fhirstore.Store
	events fhirstore.EventStore
	topics *topics.Registry
	log    *slog.Logger
	base   string

	reg  *registry   // the known subscriptions and topics, and the index
	mt   *matcher    // turns each change into recorded events
	dl   *deliverer  // delivers rest-hook events, heartbeats and status changes
	tail *match.Tail // the one reader of the change feed, feeding mt

	queue  *delivery.Queue
	bodies *bodies      // requested subscriptions' bodies, for their activation (bodies.go)
	buf    *stateBuffer // delivery states saved behind the deliveries (savebuffer.go)
	// accesses shares the decoded owner access of subscriptions (access.go)
	accesses *accesses
	lag      *lagTracker // what Lag is computed from (lag.go)
	sched    *delivery.Schedule
	keeper   *delivery.Keeper // the partitions held (nil without Cluster.Leases)
	stats    counters         // running totals of Stats (stats.go)
	skipped  skippedSet       // changes the matcher set aside (skipped.go)

	lmu       sync.Mutex
	listeners map[string]map[*listener]struct{}

	started  atomic.Bool
	stopOnce sync.Once
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	workers  sync.WaitGroup // the delivery workers (also in wg)
}

// New checks cfg and returns a Manager; it does no I/O.
func New(cfg Config) (*Manager, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("subscriptions: store required")
	case cfg.Events == nil:
		return nil, errors.New("subscriptions: event store required")
	case cfg.BaseURL == "":
		return nil, errors.New("subscriptions: base URL required")
	case cfg.ValidateEndpoint == nil:
		return nil, errors.New("subscriptions: endpoint validator required")
	case cfg.Cluster.Leases != nil && cfg.Cluster.NodeID == "":
		return nil, errors.New("subscriptions: node id required with leases")
	}
	cfg.Cluster.defaults()
	if cfg.Topics == nil {
		cfg.Topics = topics.NewRegistry()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.MaxFailures = cmpOr(cfg.MaxFailures, 5)
	cfg.RetryBase = cmpOr(cfg.RetryBase, time.Second)
	cfg.RetryMax = cmpOr(cfg.RetryMax, 10*time.Minute)
	cfg.MaxTimeout = cmpOr(cfg.MaxTimeout, 30*time.Second)
	cfg.Timeout = min(cmpOr(cfg.Timeout, 30*time.Second), cfg.MaxTimeout)
	cfg.SlowAfter = cmpOr(cfg.SlowAfter, 2*time.Second)
	cfg.Retention = cmpOr(cfg.Retention, 1000)
	cfg.HeartbeatTick = cmpOr(cfg.HeartbeatTick, time.Second)
	cfg.PollInterval = cmpOr(cfg.PollInterval, time.Second)
	cfg.Workers = cmpOr(cfg.Workers, 64)
	cfg.PerHostWorkers = cmpOr(cfg.PerHostWorkers, max(cfg.Workers/4, 1))
	cfg.BatchSize = cmpOr(cfg.BatchSize, 256)
	cfg.Cursor = cmpOr(cfg.Cursor, "matcher")
	cfg.CursorEvery = cmpOr(cfg.CursorEvery, time.Second)
	cfg.MaxChangeAttempts = cmpOr(cfg.MaxChangeAttempts, 8)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NewID == nil {
		cfg.NewID = fhirstore.NewID
	}
	sched := delivery.NewSchedule()
	m := &Manager{
		cfg:       cfg,
		store:     cfg.Store,
		events:    cfg.Events,
		topics:    cfg.Topics,
		log:       cfg.Logger.With("component", "subscriptions"),
		base:      strings.TrimRight(cfg.BaseURL, "/"),
		reg:       newRegistry(sched),
		sched:     sched,
		lag:       newLagTracker(),
		listeners: map[string]map[*listener]struct{}{},
		bodies:    newBodies(),
	}
	m.mt = &matcher{store: cfg.Store, events: cfg.Events, reg: m.reg, taps: cfg.Taps, cursor: cfg.Cursor,
		now: cfg.Now, log: m.log, lag: m.lag, stats: &m.stats, skipped: &m.skipped, bodies: m.bodies, next: m}
	m.tail = match.NewTail(cfg.Store, m.mt, match.TailConfig{BatchSize: cfg.BatchSize, PollInterval: cfg.PollInterval,
		CursorEvery: cfg.CursorEvery, MaxAttempts: cfg.MaxChangeAttempts, Logger: m.log})
	m.queue = delivery.NewQueue(m.destination, m.limits())
	m.lag.stalled = m.queue.Stalled
	lanes := newLanes() // the in-memory delivery work of the subscription a worker is on
	m.accesses = newAccesses()
	m.buf = newStateBuffer(cfg.Events, m.log)
	m.dl = &deliverer{cfg: &m.cfg, store: cfg.Store, events: cfg.Events, sender: cfg.Sender, reg: m.reg, bodies: m.bodies, buf: m.buf,
		queue: m.queue, sched: m.sched, lanes: lanes, lag: m.lag, owns: m.owns, notes: m, parse: m.parse, topic: m.topics.Get, log: m.log}
	if c := cfg.Cluster; c.Leases != nil {
		m.keeper = delivery.NewKeeper(delivery.LeaseConfig{Store: c.Leases, NodeID: c.NodeID, Partitions: c.Partitions,
			TTL: c.LeaseTTL, Logger: m.log},
			partitions{reg: m.reg, lanes: lanes, queue: m.queue, sched: m.sched, buf: m.buf, n: c.Partitions})
	}
	return m, nil
}

// limits are the fairness limits of the delivery queue.
func (m *Manager) limits() delivery.Limits {
	return delivery.Limits{Fast: m.cfg.Workers, Slow: max(m.cfg.Workers/4, 1), PerHost: m.cfg.PerHostWorkers,
		SlowAfter: m.cfg.SlowAfter}
}

// destination is the host:port a subscription delivers to ("" for none).
func (m *Manager) destination(id string) string {
	s, ok := m.Subscription(id)
	if !ok {
		return ""
	}
	return s.dest // set for rest-hook only
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Topics returns the registry the manager keeps up to date.
func (m *Manager) Topics() *topics.Registry { return m.topics }

// Run loads the topics (creating the built-in ones in the store when they
// are absent) and the subscriptions, then starts the matcher, the delivery
// workers and the scheduler in the background. They stop when ctx is done
// or Shutdown is called. Run may be called once.
func (m *Manager) Run(ctx context.Context) error {
	if !m.started.CompareAndSwap(false, true) {
		return errors.New("subscriptions: Run called twice")
	}
	if err := m.loadTopics(ctx); err != nil {
		return err
	}
	// The cursor is read first: a subscription another node writes
	// meanwhile is then either loaded or met in the feed.
	cursor, err := m.events.Cursor(ctx, m.cfg.Cursor)
	if err != nil {
		return fmt.Errorf("subscriptions: read matcher cursor: %w", err)
	}
	if err := m.loadSubscriptions(ctx, cursor); err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel = cancel
	stop := context.AfterFunc(ctx, cancel)
	workers := m.limits().Goroutines()
	m.wg.Add(3 + workers)
	flushed := make(chan struct{}) // the last delivery states are stored
	go func() {
		defer m.wg.Done()
		defer close(flushed)
		m.buf.run(rctx)
		m.workers.Wait()
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := m.buf.flush(fctx); err != nil {
			m.log.Warn("save delivery states at shutdown", "err", err)
		}
	}()
	go func() {
		defer m.wg.Done()
		defer stop()
		m.tail.Run(rctx, cursor)
	}()
	go func() {
		defer m.wg.Done()
		m.dl.scheduleLoop(rctx)
	}()
	m.workers.Add(workers)
	for range workers {
		go func() {
			defer m.wg.Done()
			defer m.workers.Done()
			m.dl.workLoop(rctx)
		}()
	}
	if m.keeper != nil {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.keeper.Run(rctx)
			// Release once the workers stopped, so that the other nodes
			// take over at once instead of after LeaseTTL.
			m.workers.Wait()
			<-flushed
			m.keeper.ReleaseAll()
		}()
	}
	m.log.Info("subscriptions started", "subscriptions", m.reg.len(), "topics", len(m.topics.All()), "cursor", cursor)
	return nil
}

// Shutdown stops the goroutines and waits for them (in-flight deliveries
// are cancelled and retried by the next run; the matcher saves its cursor
// as it stops, and a change processed after the last saved cursor is
// processed again, idempotently, by the next run). It
// returns ctx.Err() if ctx ends first. It is idempotent.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.stopOnce.Do(func() {
		if m.cancel != nil {
			m.cancel()
		}
	})
	return waitGroup(ctx, &m.wg)
}

// waitGroup waits for wg, or returns ctx.Err() if ctx ends first.
func waitGroup(ctx context.Context, wg *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// loadTopics stores the built-in topics that are absent and loads every
// stored SubscriptionTopic into the registry.
func (m *Manager) loadTopics(ctx context.Context) error {
	for _, res := range topics.BuiltInResources() {
		id, _ := res["id"].(string)
		_, err := m.store.Read(ctx, "SubscriptionTopic", id)
		if !errors.Is(err, fhirstore.ErrNotFound) {
			if err != nil && !errors.Is(err, fhirstore.ErrGone) {
				return fmt.Errorf("subscriptions: read built-in topic %s: %w", id, err)
			}
			continue
		}
		if _, _, err := m.store.Update(ctx, id, res, fhirstore.WriteOptions{}); err != nil {
			return fmt.Errorf("subscriptions: store built-in topic %s: %w", id, err)
		}
	}
	return m.each(ctx, "SubscriptionTopic", func(res *fhirstore.Resource, body map[string]any) {
		t, err := topics.Parse(body)
		if err != nil {
			m.log.Warn("stored SubscriptionTopic ignored", "id", res.ID, "err", err)
			return
		}
		m.topics.Put(t)
		m.reg.knowTopic(res.ID, t, versionNumber(res.VersionID))
	})
}

// loadSubscriptions parses every stored Subscription and indexes those
// that match. cursor is the matcher's stored cursor: a subscription
// created after it, or after a change set aside, is filed as starting at
// its creation (starts).
func (m *Manager) loadSubscriptions(ctx context.Context, cursor int64) error {
	p := m.parser(false)
	var subs []*Subscription
	err := m.each(ctx, "Subscription", func(res *fhirstore.Resource, body map[string]any) {
		s, err := p.parse(body, res)
		if err != nil {
			m.log.Warn("stored Subscription ignored", "id", res.ID, "err", err)
			return
		}
		subs = append(subs, s)
	})
	if err != nil {
		return err
	}
	states, err := m.events.States(ctx)
	if err != nil {
		return fmt.Errorf("subscriptions: load delivery states: %w", err)
	}
	// from: the changes processed again are those after the cursor and
	// those set aside (reprocessSkipped)
	from := cursor
	for _, st := range states {
		if seq, ok := m.mt.skippedSeq(st.SubscriptionID); ok {
			from = min(from, seq-1)
		} else if !isSkippedState(st.SubscriptionID) {
			m.sched.Restore(st.SubscriptionID, st.NextAttempt, st.LastSuccess)
		}
	}
	// after the subscriptions are read: each one loaded was committed
	// before the feed is read to its head
	starts, err := m.starts(ctx, from)
	if err != nil {
		return err
	}
	now := m.cfg.Now()
	m.reg.putAll(subs, starts)
	if err := m.mt.reprocessSkipped(ctx, states); err != nil {
		return fmt.Errorf("subscriptions: reprocess skipped changes: %w", err)
	}
	for _, s := range subs {
		m.sched.Touch(s.ID, now)
		m.queue.Push(s.ID)
	}
	return nil
}

// starts reads the Subscription changes of the feed after from, where the
// matcher is about to process changes again, and returns the seq of the
// latest create of each Subscription created there (the feed records a
// write with no live version before it, an update of a deleted one too,
// as a create). Filed as starting there, such a subscription matches
// none of the changes from before it, as when the matcher meets a new one
// in the feed: neither one the process had not matched yet when it
// stopped, nor one set aside before the subscription was made. The read
// goes through the feed's index by type, so a set-aside change left
// unrepaired for long costs the Subscription changes since, not every
// change.
func (m *Manager) starts(ctx context.Context, from int64) (map[string]int64, error) {
	starts := map[string]int64{}
	for after := from; ; {
		page, err := m.store.TypeChanges(ctx, "Subscription", after, fhirstore.MaxCount)
		if err != nil {
			return nil, fmt.Errorf("subscriptions: read the Subscription changes after seq %d: %w", after, err)
		}
		if len(page) == 0 { // a short page need not be the last
			return starts, nil
		}
		for _, c := range page {
			if c.Interaction == fhirstore.InteractionCreate {
				starts[c.ID] = c.Seq
			}
		}
		after = page[len(page)-1].Seq
	}
}

// each calls fn for every current resource of a type, page by page.
func (m *Manager) each(ctx context.Context, typ string, fn func(*fhirstore.Resource, map[string]any)) error {
	for offset := 0; ; {
		q, err := search.Parse(typ, map[string][]string{
			"_count":  {fmt.Sprint(fhirstore.MaxCount)},
			"_offset": {fmt.Sprint(offset)},
		})
		if err != nil {
			return fmt.Errorf("subscriptions: list %s: %w", typ, err)
		}
		page, err := m.store.Search(ctx, q)
		if err != nil {
			return fmt.Errorf("subscriptions: list %s: %w", typ, err)
		}
		for _, res := range page.Resources {
			body, err := fhirstore.Decode(res.Body)
			if err != nil {
				m.log.Warn("undecodable resource ignored", "type", typ, "id", res.ID, "err", err)
				continue
			}
			fn(res, body)
		}
		offset += len(page.Resources)
		if len(page.Resources) == 0 || offset >= page.Total {
			return nil
		}
	}
}

func (m *Manager) parser(client bool) *parser {
	return &parser{topics: m.topics, endpoint: m.cfg.ValidateEndpoint, client: client, accesses: m.accesses}
}

// Subscription returns the current parsed state of a subscription.
func (m *Manager) Subscription(id string) (*Subscription, bool) { return m.reg.get(id) }

// Subscriptions returns every known subscription (any status), in no
// particular order.
func (m *Manager) Subscriptions() []*Subscription { return m.reg.all() }

// State returns the delivery state of a subscription (its event count;
// zero values when none is stored yet).
func (m *Manager) State(ctx context.Context, id string) (fhirstore.SubscriptionState, error) {
	return m.buf.state(ctx, id)
}

// now returns the clock's time in UTC at millisecond precision.
func (m *Manager) now() time.Time { return m.cfg.Now().UTC().Truncate(time.Millisecond) }
