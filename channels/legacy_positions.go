package channels

import (
	"context"
	"time"
)

// departureWait bounds how long a re-subscribe waits for the closing
// session that held the same subscription_id to save its position.
const departureWait = 5 * time.Second

// positionKey names a subscription of a caller among the departures.
func positionKey(owner, subscriptionID string) string {
	return owner + "\x00" + subscriptionID
}

// depart announces that the session is closing: a re-subscribe of one of
// its subscription_ids (the original client reconnects at once, maybe
// before this session has seen its socket close) waits until Closed has
// saved the position. Called when the session closes its socket itself
// (token expiry) and at the start of Closed; only the first call counts.
// Takes l.mu: never call it from a Publish fan-out.
func (s *legacySession) depart() {
	if !s.d.persistPositions || s.l.cfg.Positions == nil || s.authState.Load() != authDone {
		return
	}
	s.departOnce.Do(func() {
		l, owner := s.l, s.access.owner()
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, sub := range s.subs.Load().list {
			key := positionKey(owner, sub.id)
			ch := make(chan struct{})
			l.departing[key] = ch
			s.departures = append(s.departures, departure{key: key, done: ch})
		}
	})
}

// departure is one announced departure of a subscription.
type departure struct {
	key  string
	done chan struct{}
}

// departed ends the session's departures once its positions are saved.
func (s *legacySession) departed() {
	l := s.l
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, d := range s.departures {
		if l.departing[d.key] == d.done {
			delete(l.departing, d.key)
		}
		close(d.done)
	}
	s.departures = nil
}

// awaitDeparture waits (at most departureWait) until no closing session
// is still saving the position of the caller's subscriptionID.
func (s *legacySession) awaitDeparture(ctx context.Context, subscriptionID string) {
	key := positionKey(s.access.owner(), subscriptionID)
	s.l.mu.RLock()
	done := s.l.departing[key]
	s.l.mu.RUnlock()
	if done == nil {
		return
	}
	t := time.NewTimer(departureWait)
	defer t.Stop()
	select {
	case <-done:
	case <-ctx.Done():
	case <-t.C:
		s.l.log.Warn("legacy: re-subscribed before the previous connection saved its position", "subscription_id", subscriptionID)
	}
}

// savePositions saves the position of every subscription of the closing
// session, then ends its departures.
func (s *legacySession) savePositions(pos LegacyPosition) {
	defer s.departed()
	if pos.Seq <= 0 && pos.Skip <= 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, sub := range s.subs.Load().list {
		if err := s.l.cfg.Positions.SavePosition(ctx, s.access.owner(), sub.id, pos); err != nil {
			s.l.log.Warn("legacy: cannot save a subscription's position", "subscription_id", sub.id, "seq", pos.Seq, "error", err)
		}
	}
}
