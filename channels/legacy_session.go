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
}

// subSet is a connection's subscriptions, replaced as a whole (copy on
// write) so that the fan-out reads it without a lock.
type subSet struct{ list []legacySub }

// legacySession is the per-connection state of the legacy protocol.
type legacySession struct {
	l        *Legacy
	conn     *Conn
	clientID string
	access   LegacyAccess
	limiter  *rate.Limiter
	subs     atomic.Pointer[subSet]

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
}

// Open implements Session: an authenticated session starts at once; a
// pending one waits for its auth message.
func (s *legacySession) Open(c *Conn) {
	s.conn = c
	s.resumeFrom = -1
	if s.authState.Load() != authDone {
		s.startAuthTimer()
		return
	}
	s.armExpiry()
	s.begin()
}

// begin registers the authenticated session and restores a reconnecting
// client's subscriptions (only those the new connection may hold, and only
// for the same token subject and patient).
func (s *legacySession) begin() {
	c := s.conn
	var rec *clientRecord
	if s.clientID != "" {
		rec = s.l.clients.take(s.clientID)
		if rec != nil && rec.owner != s.access.owner() {
			// another caller's record: leave it alone, and do not
			// overwrite it when this connection closes
			s.l.clients.save(s.clientID, rec)
			s.clientID, rec = "", nil
		}
	}
	if rec != nil {
		// The new connection may carry another token: keep only what it
		// may see.
		rec.subs = slices.DeleteFunc(rec.subs, func(sub legacySub) bool { return s.access.check(sub) != "" })
		if len(rec.subs) > 0 {
			s.subs.Store(&subSet{list: rec.subs})
		}
	}
	s.l.addSession(s)
	if rec == nil {
		return
	}
	if len(rec.subs) == 0 {
		s.resumeFrom = rec.pos
		return
	}
	for _, sub := range rec.subs {
		s.send(controlMessage("subscribed", s.l.Head(), map[string]any{"subscription_id": sub.id, "restored": true}))
	}
	s.replay(c.Context(), rec.pos, false)
}

// Closed implements Session: it remembers the client's position and
// subscriptions for a reconnect.
func (s *legacySession) Closed(c *Conn) {
	s.stopTimers()
	head := s.l.removeSession(s)
	if s.clientID == "" || s.authState.Load() != authDone {
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
	if fu := c.FirstUnsent(); fu > 0 {
		pos = min(pos, fu-1)
	}
	if s.resumeFrom >= 0 {
		pos = min(pos, s.resumeFrom) // never subscribed again: keep the old position
	}
	s.l.clients.save(s.clientID, &clientRecord{pos: pos, subs: s.subs.Load().list, owner: s.access.owner()})
}

// Message implements Session.
func (s *legacySession) Message(ctx context.Context, data []byte) {
	if !s.limiter.Allow() {
		s.fail(LegacyErrRateLimited, fmt.Sprintf("more than %g messages per second", s.l.cfg.MessageRate))
		return
	}
	switch s.authState.Load() {
	case authPending:
		s.authenticate(ctx, data)
		return
	case authFailed:
		return
	}
	req, perr := parseLegacyRequest(data, s.l.cfg.MaxPatients)
	if perr != nil {
		s.fail(perr.code, perr.message)
		return
	}
	switch req.typ {
	case "auth":
		s.fail(LegacyErrInvalidField, "this connection is already authenticated")
	case "ping":
		s.send([]byte(`{"type":"pong"}`))
	case "subscribe":
		s.subscribe(ctx, req.sub)
	case "unsubscribe":
		s.unsubscribe(req.id)
	case "resume":
		s.resume(ctx, req.since)
	}
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
	next := slices.Clone(old)
	if i >= 0 {
		next[i] = sub
	} else {
		next = append(next, sub)
	}
	s.subs.Store(&subSet{list: next})
	s.send(controlMessage("subscribed", s.l.Head(), map[string]any{"subscription_id": sub.id}))
	if s.resumeFrom >= 0 {
		from := s.resumeFrom
		s.resumeFrom = -1
		s.replay(ctx, from, false)
	}
}

func (s *legacySession) unsubscribe(id string) {
	old := s.subs.Load().list
	i := slices.IndexFunc(old, func(o legacySub) bool { return o.id == id })
	if i < 0 {
		s.fail(LegacyErrNotSubscribed, fmt.Sprintf("no subscription %q on this connection", id))
		return
	}
	s.subs.Store(&subSet{list: slices.Delete(slices.Clone(old), i, i+1)})
	s.send(controlMessage("unsubscribed", s.l.Head(), map[string]any{"subscription_id": id}))
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
	s.replay(ctx, since, true)
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
