package channels

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

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

	mu        sync.Mutex
	replaying bool           // live events go to pending
	pending   []*LegacyEvent // live events that arrived during a replay
	replayPos int64          // during a replay: the last seq handed to the socket
	lost      int64          // first seq that could not be queued (0: none)
}

// Open implements Session: it registers the session and restores a
// reconnecting client's subscriptions.
func (s *legacySession) Open(c *Conn) {
	s.conn = c
	s.resumeFrom = -1
	var rec *clientRecord
	if s.clientID != "" {
		rec = s.l.clients.take(s.clientID)
	}
	if rec != nil {
		// The new connection may carry another token: keep only what it
		// may see.
		rec.subs = slices.DeleteFunc(rec.subs, func(sub legacySub) bool { return !s.allowed(sub) })
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
	head := s.l.removeSession(s)
	if s.clientID == "" {
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
	s.l.clients.save(s.clientID, &clientRecord{pos: pos, subs: s.subs.Load().list})
}

// Message implements Session.
func (s *legacySession) Message(ctx context.Context, data []byte) {
	if !s.limiter.Allow() {
		s.fail(LegacyErrRateLimited, fmt.Sprintf("more than %g messages per second", s.l.cfg.MessageRate))
		return
	}
	req, perr := parseLegacyRequest(data, s.l.cfg.MaxPatients)
	if perr != nil {
		s.fail(perr.code, perr.message)
		return
	}
	switch req.typ {
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

// allowed reports whether the caller may hold sub: every patient it names
// is within the caller's access.
func (s *legacySession) allowed(sub legacySub) bool {
	if s.access.AllPatients {
		return true
	}
	for _, p := range sub.patients {
		if !slices.Contains(s.access.Patients, p) {
			return false
		}
	}
	return true
}

func (s *legacySession) subscribe(ctx context.Context, sub legacySub) {
	if !s.allowed(sub) {
		s.fail(LegacyErrForbidden, "patient_ids name a patient outside the caller's access")
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
	b, _ := json.Marshal(map[string]any{"type": "error", "data": map[string]string{"code": code, "message": message}})
	s.send(b)
}

func controlMessage(typ string, seq int64, data map[string]any) []byte {
	b, _ := json.Marshal(struct {
		Type string         `json:"type"`
		Seq  int64          `json:"seq"`
		Data map[string]any `json:"data"`
	}{typ, seq, data})
	return b
}
