package channels

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Error codes of the legacy protocol's error messages.
const (
	LegacyErrInvalidJSON          = "invalid_json"
	LegacyErrUnknownType          = "unknown_type"
	LegacyErrMissingField         = "missing_field"
	LegacyErrInvalidField         = "invalid_field"
	LegacyErrTooManySubscriptions = "too_many_subscriptions"
	LegacyErrRateLimited          = "rate_limited"
	LegacyErrNotSubscribed        = "not_subscribed"
	LegacyErrForbidden            = "forbidden"
	LegacyErrReplayUnavailable    = "replay_unavailable"
	LegacyErrReplayFailed         = "replay_failed"
)

// legacySub is one subscription of a connection. Immutable.
type legacySub struct {
	id       string
	allTypes bool
	types    []string
	patients []string // nil: every patient the caller may see

	// echoTypes and echoPatients are the lists as the client sent them
	// (never nil), echoed by the original dialect's ack.
	echoTypes, echoPatients []string
	// from is the seq after which every matching message goes (or went)
	// to this connection: the head when it was subscribed, or the
	// position its replay started from.
	from int64
}

// same reports whether a and b are the same subscription (a re-subscribe
// that changes nothing).
func (a *legacySub) same(b *legacySub) bool {
	return a.id == b.id && a.sameFilter(b)
}

// sameFilter reports whether a and b filter alike.
func (a *legacySub) sameFilter(b *legacySub) bool {
	return a.allTypes == b.allTypes && slices.Equal(a.types, b.types) &&
		(a.patients == nil) == (b.patients == nil) && slices.Equal(a.patients, b.patients)
}

// maxRemembered is how many unsubscribed subscriptions an original-dialect
// session remembers (see legacySession.removed).
const maxRemembered = 8

// subSet is a connection's subscriptions, replaced as a whole (copy on
// write) so that the fan-out reads it without a lock.
type subSet struct{ list []legacySub }

// legacySession is the per-connection state of the legacy protocol.
type legacySession struct {
	l           *Legacy
	d           *dialect // &dialects[dialect]
	dialect     LegacyDialect
	conn        *Conn
	clientID    string
	reconnected bool // original dialect: opened on /api/ws/{client_id}
	access      LegacyAccess
	limiter     *rate.Limiter
	subs        atomic.Pointer[subSet]

	// removed are the last subscriptions unsubscribed (original dialect),
	// with from set to the head at their removal. Its hooks unsubscribe
	// and subscribe the same filter under a new id on every render: such
	// a subscribe replays what fell between the two. Reader goroutine
	// only.
	removed []legacySub

	// resumeFrom is the remembered position of a reconnecting client whose
	// subscriptions were forgotten: its first subscribe replays from it.
	// -1 when there is none. Reader goroutine only.
	resumeFrom int64

	// authState is authPending until a Verifier-checked token is
	// accepted (authDone) or refused (authFailed); sessions that need no
	// authentication start authDone. access is written only while
	// pending, before any subscription exists.
	authState atomic.Int32
	authTimer *time.Timer

	mu        sync.Mutex
	replaying bool           // live events go to pending
	pending   []*LegacyEvent // live events that arrived during a replay
	replayPos int64          // during a replay: the last seq handed to the socket
	lost      int64          // first seq that could not be queued (0: none)
	heartbeat *time.Timer    // original dialect's JSON ping; nil once stopped

	departOnce sync.Once
	departures []departure // guarded by l.mu
}

// Open implements Session: an authenticated session starts at once; a
// pending one waits for its auth message; one whose URL token was refused
// (original dialect) is closed 4001.
func (s *legacySession) Open(c *Conn) {
	s.conn = c
	s.resumeFrom = -1
	switch s.authState.Load() {
	case authFailed:
		s.refuse(LegacyErrInvalidToken, "token rejected", ReasonInvalidToken)
		return
	case authPending:
		s.startAuthTimer()
		return
	}
	s.armExpiry()
	s.begin()
}

// begin starts the authenticated session: the welcome message (original
// dialect), the heartbeat, and the registration for live messages. It
// restores a reconnecting client_id's subscriptions (extended dialect;
// only those the new connection may hold, and only for the same token
// subject and patient).
func (s *legacySession) begin() {
	c, l := s.conn, s.l
	if s.d.welcome {
		var claims map[string]any
		if s.access.Token != nil {
			claims = s.access.Token.Claims
		}
		s.send(welcomeMessage(s.clientID, claims, s.reconnected))
	}
	s.startHeartbeat()
	var rec *clientRecord
	if s.d.restoreClientID && s.clientID != "" {
		rec = l.clients.take(s.clientID)
		if rec != nil && rec.owner != s.access.owner() {
			// another caller's record: leave it alone, and do not
			// overwrite it when this connection closes
			l.clients.save(s.clientID, rec)
			s.clientID, rec = "", nil
		}
	}
	if rec != nil {
		// The new connection may carry another token: keep only what it
		// may see.
		rec.subs = slices.DeleteFunc(rec.subs, func(sub legacySub) bool { return s.access.check(sub) != "" })
	}
	// The acks of restored subscriptions, the switch to replaying and the
	// registration happen under pubMu: no live message can precede them.
	l.pubMu.Lock()
	head := l.head.Load()
	restore := rec != nil && len(rec.subs) > 0
	if restore {
		for i := range rec.subs {
			rec.subs[i].from = rec.pos
			s.send(s.d.subscribedAck(rec.subs[i], head, true))
		}
		s.subs.Store(&subSet{list: rec.subs})
		s.startReplayLocked(rec.pos, head)
	}
	l.addSession(s)
	l.pubMu.Unlock()
	switch {
	case restore:
		s.runReplay(c.Context(), replayFrom{since: rec.pos}, head)
	case rec != nil:
		s.resumeFrom = rec.pos
	}
}

// startHeartbeat arms the original dialect's JSON ping.
func (s *legacySession) startHeartbeat() {
	if !s.d.heartbeat {
		return
	}
	every, conn := s.l.cfg.Heartbeat, s.conn
	s.mu.Lock()
	defer s.mu.Unlock()
	s.heartbeat = time.AfterFunc(every, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.heartbeat == nil {
			return // stopped
		}
		conn.Send(originalMessage("ping", nil, true), 0)
		s.heartbeat.Reset(every)
	})
}

// Closed implements Session: it remembers the client's position and
// subscriptions for a reconnect (in memory for a client_id, durably per
// subscription_id in the original dialect).
func (s *legacySession) Closed(c *Conn) {
	s.stopTimers()
	s.depart()
	head := s.l.removeSession(s)
	if s.authState.Load() != authDone {
		return
	}
	keepClient := s.d.restoreClientID && s.clientID != ""
	positions := s.l.cfg.Positions
	keepSubs := s.d.persistPositions && positions != nil
	if !keepClient && !keepSubs {
		return
	}
	s.mu.Lock()
	pos := head
	if s.replaying {
		pos = s.replayPos
	}
	if s.lost > 0 {
		pos = min(pos, s.lost-1)
	}
	s.mu.Unlock()
	skip := 0
	if fu := c.FirstUnsent(); fu > 0 && fu-1 <= pos {
		pos = fu - 1
		// Some messages of change fu may have been written before the
		// close: a replay from pos skips them.
		if c.Written() == fu {
			skip = c.WrittenOfLast()
		}
	}
	if s.resumeFrom >= 0 && s.resumeFrom <= pos {
		pos, skip = s.resumeFrom, 0 // never subscribed again: keep the old position
	}
	subs := s.subs.Load().list
	if keepClient {
		s.l.clients.save(s.clientID, &clientRecord{pos: pos, subs: subs, owner: s.access.owner()})
	}
	if keepSubs {
		s.savePositions(LegacyPosition{Seq: pos, Skip: skip})
	}
}

// Message implements Session.
func (s *legacySession) Message(ctx context.Context, data []byte) {
	switch s.authState.Load() {
	case authPending:
		if s.allow(ctx) {
			s.authenticate(ctx, data)
		}
		return
	case authFailed:
		return
	}
	req, perr := parseLegacyRequest(data, s.l.cfg.MaxPatients)
	if perr != nil {
		if perr.code == LegacyErrUnknownType && s.d.ignoreUnknown {
			return
		}
		if s.allow(ctx) {
			s.fail(perr.code, perr.message)
		}
		return
	}
	switch req.typ {
	case "pong":
		return // the answer to a heartbeat: nothing to do
	case "subscribe":
		// Re-subscribing what is held (the original client's hooks do it
		// on every render) is acknowledged and free.
		if held := s.held(req.sub.id); held != nil && held.same(&req.sub) {
			s.send(s.d.subscribedAck(*held, s.l.Head(), false))
			return
		}
	case "auth", "resume":
		if !s.d.seq {
			return // the original dialect has no resume, and sends its token again
		}
	}
	if !s.allow(ctx) {
		return
	}
	switch req.typ {
	case "auth":
		s.fail(LegacyErrInvalidField, "this connection is already authenticated")
	case "ping":
		if s.d.seq {
			s.send([]byte(`{"type":"pong"}`))
		} else {
			s.send(originalMessage("pong", nil, true))
		}
	case "subscribe":
		s.subscribe(ctx, req.sub)
	case "unsubscribe":
		s.unsubscribe(req.id)
	case "resume":
		s.resume(ctx, req.since)
	}
}

// allow applies the message rate: over it, the extended dialect answers
// rate_limited (and the message is ignored); the original dialect, whose
// client cannot handle that, waits (the reader pauses, so a flooding client
// is slowed down). False when the message must be dropped.
func (s *legacySession) allow(ctx context.Context) bool {
	if s.d.paced {
		return s.limiter.Wait(ctx) == nil
	}
	if s.limiter.Allow() {
		return true
	}
	s.fail(LegacyErrRateLimited, fmt.Sprintf("more than %g messages per second", s.l.cfg.MessageRate))
	return false
}

// held returns the subscription held under id, or nil.
func (s *legacySession) held(id string) *legacySub {
	list := s.subs.Load().list
	if i := slices.IndexFunc(list, func(o legacySub) bool { return o.id == id }); i >= 0 {
		return &list[i]
	}
	return nil
}

func (s *legacySession) subscribe(ctx context.Context, sub legacySub) {
	if why := s.access.check(sub); why != "" {
		s.fail(LegacyErrForbidden, why)
		return
	}
	old := s.subs.Load().list
	i := slices.IndexFunc(old, func(o legacySub) bool { return o.id == sub.id })
	if i < 0 && len(old) >= s.l.cfg.MaxSubscriptions {
		s.fail(LegacyErrTooManySubscriptions, fmt.Sprintf("a connection may hold at most %d subscriptions", s.l.cfg.MaxSubscriptions))
		return
	}
	// Original dialect: a subscription_id new on this connection that the
	// caller held before resumes from its saved position.
	saved := LegacyPosition{Seq: -1}
	if i < 0 && s.d.persistPositions && s.l.cfg.Positions != nil {
		s.awaitDeparture(ctx, sub.id)
		p, err := s.l.cfg.Positions.Position(ctx, s.access.owner(), sub.id)
		switch {
		case err != nil:
			s.l.log.Warn("legacy: cannot read a subscription's position", "subscription_id", sub.id, "error", err)
		case p.Seq > 0 || p.Skip > 0:
			saved = p
		}
	}
	l := s.l
	// The ack, the new set and the switch to replaying happen under pubMu,
	// so that no live message precedes the ack and none is missed.
	l.pubMu.Lock()
	head := l.head.Load()
	sub.from = head
	from, skip, only := int64(-1), 0, (*legacySub)(nil)
	switch {
	case s.resumeFrom >= 0: // extended: a reconnecting client_id's first subscribe
		from, sub.from = s.resumeFrom, s.resumeFrom
		s.resumeFrom = -1
	case saved.Seq >= 0 && saved.Seq < head:
		from, skip, sub.from = saved.Seq, saved.Skip, saved.Seq
		only = &sub
	case i < 0 && s.d.persistPositions:
		// The same filter, unsubscribed a moment ago under another id.
		if k := slices.IndexFunc(s.removed, func(o legacySub) bool { return o.sameFilter(&sub) }); k >= 0 {
			if r := s.removed[k].from; r < head {
				from, sub.from = r, r
				only = &sub
			}
			s.removed = slices.Delete(s.removed, k, k+1)
		}
	}
	next := slices.Clone(old)
	if i >= 0 {
		next[i] = sub
	} else {
		next = append(next, sub)
	}
	s.subs.Store(&subSet{list: next})
	s.send(s.d.subscribedAck(sub, head, false))
	if from >= 0 {
		s.startReplayLocked(from, head)
	}
	l.pubMu.Unlock()
	if from >= 0 {
		s.runReplay(ctx, replayFrom{since: from, skip: skip, only: only}, head)
	}
}

func (s *legacySession) unsubscribe(id string) {
	l := s.l
	l.pubMu.Lock() // no message of id after the ack
	defer l.pubMu.Unlock()
	old := s.subs.Load().list
	i := slices.IndexFunc(old, func(o legacySub) bool { return o.id == id })
	if i < 0 && s.d.seq {
		s.fail(LegacyErrNotSubscribed, fmt.Sprintf("no subscription %q on this connection", id))
		return
	}
	head := l.head.Load()
	if i >= 0 {
		s.subs.Store(&subSet{list: slices.Delete(slices.Clone(old), i, i+1)})
		if s.d.persistPositions {
			gone := old[i]
			gone.from = head
			if len(s.removed) == maxRemembered {
				s.removed = slices.Delete(s.removed, 0, 1)
			}
			s.removed = append(s.removed, gone)
		}
	}
	s.send(s.d.unsubscribedAck(id, head))
}

func (s *legacySession) resume(ctx context.Context, since int64) {
	if len(s.subs.Load().list) == 0 {
		s.fail(LegacyErrNotSubscribed, "subscribe before resume")
		return
	}
	if s.l.cfg.Replayer == nil {
		s.fail(LegacyErrReplayUnavailable, "this server keeps no change feed to replay from")
		return
	}
	s.resumeFrom = -1
	l := s.l
	l.pubMu.Lock()
	head := l.head.Load()
	s.startReplayLocked(since, head)
	l.pubMu.Unlock()
	s.runReplay(ctx, replayFrom{since: since, explicit: true}, head)
}

// send queues a control or error frame.
func (s *legacySession) send(b []byte) {
	s.conn.Send(b, 0)
}

// fail sends an error message; the connection stays open.
func (s *legacySession) fail(code, message string) {
	s.send(errorMessage(code, message))
}

func errorMessage(code, message string) []byte {
	b, _ := json.Marshal(map[string]any{"type": "error", "data": map[string]string{"code": code, "message": message}})
	return b
}

func controlMessage(typ string, seq int64, data map[string]any) []byte {
	b, _ := json.Marshal(struct {
		Type string         `json:"type"`
		Seq  int64          `json:"seq"`
		Data map[string]any `json:"data"`
	}{typ, seq, data})
	return b
}
