package channels

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"golang.org/x/time/rate"

	"github.com/fhirsub/fhirsub/conformance/smart"
)

// LegacyReplayer reads past legacy messages back from the durable change
// feed. The subscriptions/legacy Feed implements it.
type LegacyReplayer interface {
	// Replay returns the events of the changes with after < seq <= upTo,
	// in seq order (several events may share a seq).
	Replay(ctx context.Context, after, upTo int64) ([]*LegacyEvent, error)
}

// LegacyPositions persists, per caller and subscription_id, the change seq
// up to which a subscription's messages were written to its socket, so
// that the same subscription_id subscribed again on a later connection
// (even after a restart) is first replayed what it missed. The
// subscriptions/legacy package implements it on the store.
type LegacyPositions interface {
	// Position returns the saved position, or the zero LegacyPosition when
	// there is none. owner identifies the caller (empty without
	// authentication).
	Position(ctx context.Context, owner, subscriptionID string) (LegacyPosition, error)
	// SavePosition saves pos for the subscription unless a later one is
	// saved already (positions compare by Seq, then Skip).
	SavePosition(ctx context.Context, owner, subscriptionID string, pos LegacyPosition) error
}

// LegacyPosition is how far a connection's messages were written to its
// socket: every message of the changes up to Seq, and the first Skip of
// the messages of change Seq+1 (a change may yield an update and clinical
// events, and a connection may close between them).
type LegacyPosition struct {
	Seq  int64
	Skip int
}

// LegacyAccess is what one caller of the legacy channel may see.
type LegacyAccess struct {
	// AllPatients lets the caller see every resource, including those in
	// no patient compartment.
	AllPatients bool
	// Patients lists the patients whose compartments the caller may see
	// when AllPatients is false (a patient-scoped token).
	Patients []string
	// Token, when set, is the access of the caller's token: subscriptions
	// may name only types it can read, and every message is filtered by it
	// (the resource type readable and the resource visible: CanSee on the
	// focus, for a deletion its last version; clinical events by the
	// resource that fired them). AccessFor builds the whole LegacyAccess
	// of a token.
	Token *smart.Access
}

// LegacyConfig configures the legacy protocol. The zero value of every field
// means its default.
type LegacyConfig struct {
	// Logger receives session messages; nil discards them.
	Logger *slog.Logger
	// Replayer serves resume and reconnect replays; nil disables them
	// (resume then answers the error replay_unavailable).
	Replayer LegacyReplayer
	// Positions keeps the positions of original-dialect subscriptions
	// across connections and restarts; nil disables that replay.
	Positions LegacyPositions
	// Heartbeat is how often the original dialect sends its JSON ping
	// message (default 30 s).
	Heartbeat time.Duration
	// Authorize decides what the upgrade request may see; a *RejectError
	// refuses it with its status. When nil, Verifier decides; when both
	// are nil everyone sees everything (the server's loopback-only default
	// without authentication).
	Authorize func(r *http.Request) (LegacyAccess, error)
	// Verifier checks bearer tokens (web.Authenticator). With it, every
	// connection authenticates: with the access_token or token query
	// parameter (or an Authorization: Bearer header) on the upgrade, or
	// with a first message {"type":"auth","data":{"token":"…"}} (or the
	// original client's {"type":"authenticate","token":"…"}) within
	// AuthTimeout. A refused token, any other first message or the
	// deadline passing refuse the connection: extended dialect, 401 at the
	// upgrade or an error message and close 1008; original dialect, close
	// 4001 "Unauthorized". The connection is closed (1008 "token-expired")
	// when the token expires.
	Verifier Verifier
	// AuthTimeout is how long a connection may wait before its auth
	// message (default 5 s).
	AuthTimeout time.Duration
	// MaxSubscriptions is the most subscriptions one connection may hold
	// (default 20).
	MaxSubscriptions int
	// MaxPatients is the most patient_ids one subscription may list
	// (default 1000).
	MaxPatients int
	// MessageRate is the sustained number of client messages per second a
	// connection may send (default 10); MessageBurst is the burst (default
	// 20). In the extended dialect, messages over the limit are answered
	// with the error rate_limited and ignored; the original dialect allows
	// ten times as many (its hooks unsubscribe and subscribe on every
	// render) and makes a client over the limit wait instead. A subscribe
	// identical to the one held, a pong and, in the original dialect, an
	// unknown message are not counted.
	MessageRate  float64
	MessageBurst int
	// ReplayLimit is the most changes a replay goes back (default 1000,
	// at least 100).
	ReplayLimit int
	// ClientTTL is how long the subscriptions and position of a
	// disconnected client_id are remembered (default 10 min).
	ClientTTL time.Duration
	// MaxClients bounds the remembered client_ids (default 10,000; the
	// oldest is forgotten first).
	MaxClients int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (c *LegacyConfig) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.MaxSubscriptions <= 0 {
		c.MaxSubscriptions = 20
	}
	if c.MaxPatients <= 0 {
		c.MaxPatients = 1000
	}
	if c.MessageRate <= 0 {
		c.MessageRate = 10
	}
	if c.MessageBurst <= 0 {
		c.MessageBurst = 20
	}
	if c.ReplayLimit <= 0 {
		c.ReplayLimit = 1000
	}
	c.ReplayLimit = max(c.ReplayLimit, 100)
	if c.ClientTTL <= 0 {
		c.ClientTTL = 10 * time.Minute
	}
	if c.MaxClients <= 0 {
		c.MaxClients = 10000
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.AuthTimeout <= 0 {
		c.AuthTimeout = 5 * time.Second
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = 30 * time.Second
	}
}

// Legacy is the legacy MedGenEMR JSON protocol (see the package
// documentation for the messages and the replay semantics). It is a
// Protocol for Hub.Handler and the sink of the legacy feed: Publish fans an
// event out to the matching connections without ever blocking on a socket.
// Create it with NewLegacy. Safe for concurrent use.
type Legacy struct {
	cfg LegacyConfig
	log *slog.Logger

	// pubMu is held across one Publish fan-out, and by a session while it
	// starts a replay or closes, so that head is exact for them.
	// Lock order: pubMu, then mu, then a session's mu, then a Conn's mu.
	pubMu    sync.Mutex
	head     atomic.Int64 // the seq of the last change fully published
	mu       sync.RWMutex
	sessions map[*legacySession]struct{}
	clients  clientMemory
	// departing: for each (owner, subscription_id) of an original-dialect
	// session that is closing, a channel closed once its position is
	// saved; a re-subscribe of that subscription_id waits for it. Guarded
	// by mu.
	departing map[string]chan struct{}
}

var _ Protocol = (*Legacy)(nil)

// NewLegacy returns the legacy protocol; mount it with Hub.Handler.
func NewLegacy(cfg LegacyConfig) (*Legacy, error) {
	cfg.setDefaults()
	return &Legacy{
		cfg:       cfg,
		log:       cfg.Logger,
		sessions:  make(map[*legacySession]struct{}),
		departing: make(map[string]chan struct{}),
		clients:   clientMemory{ttl: cfg.ClientTTL, max: cfg.MaxClients, now: cfg.Now, m: map[string]*clientRecord{}},
	}, nil
}

// Head returns the seq of the last change published.
func (l *Legacy) Head() int64 { return l.head.Load() }

// Publish delivers the events of change seq to every connection with a
// matching subscription, then records seq as the head. Call it once per
// change, in seq order, from one goroutine; events may be empty (the head
// still moves). It never blocks on a socket: a connection whose send buffer
// is full is closed as a slow consumer.
func (l *Legacy) Publish(seq int64, events []*LegacyEvent) {
	l.pubMu.Lock()
	defer l.pubMu.Unlock()
	l.publishLocked(seq, events)
}

// PublishLazy is Publish for a change whose events are built only when a
// connection holds a subscription: with none, the head moves and build is
// not called (a later replay reads the change back through the
// Replayer). build runs under the publishing lock, so that no subscription
// starts between the decision and the delivery; an error from it is
// returned and the head stays where it was.
func (l *Legacy) PublishLazy(seq int64, build func() ([]*LegacyEvent, error)) error {
	l.pubMu.Lock()
	defer l.pubMu.Unlock()
	var events []*LegacyEvent
	if l.subscribed() {
		var err error
		if events, err = build(); err != nil {
			return err
		}
	}
	l.publishLocked(seq, events)
	return nil
}

// subscribed reports whether a connection holds a subscription (a
// subscription starts under pubMu, so the answer holds while it is held).
func (l *Legacy) subscribed() bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	for s := range l.sessions {
		if len(s.subs.Load().list) > 0 {
			return true
		}
	}
	return false
}

// publishLocked is Publish with pubMu held.
func (l *Legacy) publishLocked(seq int64, events []*LegacyEvent) {
	if len(events) > 0 {
		l.mu.RLock()
		for s := range l.sessions {
			s.deliver(events)
		}
		l.mu.RUnlock()
	}
	if seq > l.head.Load() {
		l.head.Store(seq)
	}
}

// Accept implements Protocol for the extended dialect: it authorizes the
// request and reads its client_id query parameter. Original returns the
// original dialect.
func (l *Legacy) Accept(r *http.Request) (Session, error) {
	return l.accept(r, DialectExtended, "")
}

func (l *Legacy) accept(r *http.Request, d LegacyDialect, mount string) (Session, error) {
	clientID, reconnected := r.URL.Query().Get("client_id"), false
	if d == DialectOriginal {
		id, ok := clientIDFromPath(r.URL.Path, mount)
		if !ok {
			return nil, &RejectError{Status: http.StatusNotFound, Reason: "not found"}
		}
		clientID, reconnected = id, id != ""
	}
	if len(clientID) > 128 || !printable(clientID) {
		return nil, &RejectError{Status: http.StatusBadRequest, Reason: "client_id must be at most 128 printable ASCII characters"}
	}
	s := &legacySession{
		l:           l,
		d:           &dialects[d],
		dialect:     d,
		clientID:    clientID,
		reconnected: reconnected,
		access:      LegacyAccess{AllPatients: true},
	}
	f := dialects[d].rateFactor
	s.limiter = rate.NewLimiter(rate.Limit(l.cfg.MessageRate*float64(f)), l.cfg.MessageBurst*f)
	state := authDone
	switch {
	case l.cfg.Authorize != nil:
		var err error
		if s.access, err = l.cfg.Authorize(r); err != nil {
			return nil, err
		}
	case l.cfg.Verifier != nil:
		var err error
		if s.access, state, err = l.acceptToken(r, s.d); err != nil {
			return nil, err
		}
	}
	s.authState.Store(state)
	if d == DialectOriginal && s.clientID == "" {
		s.clientID = uuid.NewString()
	}
	s.subs.Store(&subSet{})
	return s, nil
}

func (l *Legacy) addSession(s *legacySession) {
	l.mu.Lock()
	l.sessions[s] = struct{}{}
	l.mu.Unlock()
}

// removeSession unregisters s and returns the head: every event up to it
// has been handed to s (or recorded as lost) and no later one will be.
func (l *Legacy) removeSession(s *legacySession) int64 {
	l.pubMu.Lock()
	defer l.pubMu.Unlock()
	l.mu.Lock()
	delete(l.sessions, s)
	l.mu.Unlock()
	return l.head.Load()
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// clientRecord is what is remembered of a disconnected client_id.
type clientRecord struct {
	pos   int64 // every matching event up to pos was written to the socket
	subs  []legacySub
	owner string // LegacyAccess.owner of the connection that left it
	at    time.Time
}

// clientMemory remembers disconnected client_ids, bounded in number and
// time. Expired records are dropped lazily; no goroutine.
type clientMemory struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu sync.Mutex
	m  map[string]*clientRecord
}

// take returns and forgets the record of id.
func (m *clientMemory) take(id string) *clientRecord {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec := m.m[id]
	delete(m.m, id)
	if rec == nil || m.now().Sub(rec.at) > m.ttl {
		return nil
	}
	return rec
}

func (m *clientMemory) save(id string, rec *clientRecord) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec.at = m.now()
	m.m[id] = rec
	if len(m.m) <= m.max {
		return
	}
	var oldest string
	var oldestAt time.Time
	for k, r := range m.m {
		if rec.at.Sub(r.at) > m.ttl {
			delete(m.m, k)
			continue
		}
		if oldest == "" || r.at.Before(oldestAt) {
			oldest, oldestAt = k, r.at
		}
	}
	if len(m.m) > m.max {
		delete(m.m, oldest)
	}
}

// LegacyReplayFunc adapts a function to LegacyReplayer (useful to break the
// construction cycle between Legacy and the feed that publishes to it).
type LegacyReplayFunc func(ctx context.Context, after, upTo int64) ([]*LegacyEvent, error)

// Replay implements LegacyReplayer.
func (f LegacyReplayFunc) Replay(ctx context.Context, after, upTo int64) ([]*LegacyEvent, error) {
	return f(ctx, after, upTo)
}
