package channels

import (
	"context"
	"slices"
)

// match reports whether any subscription of s wants ev, and which of the
// event's patients it matched (the index of the frame to send). With a
// token, the event must also be visible to it.
func (s *legacySession) match(ev *LegacyEvent, subs []legacySub) (int, bool) {
	if !s.visible(ev) {
		return 0, false
	}
	for i := range subs {
		if j, ok := s.matchSub(ev, &subs[i]); ok {
			return j, true
		}
	}
	return 0, false
}

// visible reports whether the caller's token may see ev.
func (s *legacySession) visible(ev *LegacyEvent) bool {
	t := s.access.Token
	return t == nil || ev.visibleTo(t)
}

// matchSub is match for one subscription, without the visibility check.
func (s *legacySession) matchSub(ev *LegacyEvent, sub *legacySub) (int, bool) {
	if !sub.allTypes && !slices.Contains(sub.types, ev.ResourceType) {
		return 0, false
	}
	switch {
	case sub.patients != nil:
		for j, p := range ev.PatientIDs {
			if slices.Contains(sub.patients, p) {
				return j, true
			}
		}
	case s.access.AllPatients:
		return 0, true
	default:
		for j, p := range ev.PatientIDs {
			if slices.Contains(s.access.Patients, p) {
				return j, true
			}
		}
	}
	return 0, false
}

// deliver is called by Publish (under pubMu) with the events of one change.
func (s *legacySession) deliver(events []*LegacyEvent) {
	subs := s.subs.Load().list
	if len(subs) == 0 {
		return
	}
	s.mu.Lock()
	if s.replaying {
		if len(s.pending)+len(events) > s.l.cfg.ReplayLimit {
			s.markLostLocked(events[0].Seq)
			s.mu.Unlock()
			s.conn.Close(CloseTryAgainLater, ReasonSlowConsumer)
			return
		}
		s.pending = append(s.pending, events...)
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	for _, ev := range events {
		if i, ok := s.match(ev, subs); ok && !s.conn.notify(ev.DialectFrame(s.dialect, i), ev.Seq) {
			s.mu.Lock()
			s.markLostLocked(ev.Seq)
			s.mu.Unlock()
			return
		}
	}
}

func (s *legacySession) markLostLocked(seq int64) {
	if s.lost == 0 || seq < s.lost {
		s.lost = seq
	}
}

// startReplayLocked switches the session to replaying: live events are
// held until runReplay has sent the replayed ones. Called under pubMu, with
// head read under it.
func (s *legacySession) startReplayLocked(since, head int64) {
	s.mu.Lock()
	s.replaying, s.pending, s.replayPos = true, nil, min(since, head)
	s.mu.Unlock()
}

// replayFrom is where a replay starts and what it sends.
type replayFrom struct {
	// since: the replay sends the events with since < seq <= head.
	since int64
	// skip: the first skip matching messages of change since+1 were
	// written before (a saved LegacyPosition).
	skip int
	// explicit: a resume, closed by a "resumed" message.
	explicit bool
	// only: replay the events of this one subscription that no other
	// subscription of the connection already delivered (a re-subscribed
	// subscription_id); nil: those of every subscription.
	only *legacySub
}

// replayScanFactor bounds how far back a replay that wants at least
// dialect.replayAtLeast messages may read: replayScanFactor × ReplayLimit
// changes.
const replayScanFactor = 20

// runReplay sends the matching events with since < seq <= head, then the
// live events that arrived meanwhile, and goes back to live delivery. It
// goes back at most ReplayLimit changes, or in the original dialect as
// many windows of ReplayLimit changes as it takes to find the last
// replayAtLeast messages (up to replayScanFactor windows). It runs on the
// reader goroutine and blocks it (with flow control) until done. When
// explicit, a "resumed" message follows the replayed events and precedes
// the live ones.
func (s *legacySession) runReplay(ctx context.Context, rf replayFrom, head int64) {
	l := s.l
	since, explicit := rf.since, rf.explicit
	count, truncated := 0, false
	var err error
	if since < head && l.cfg.Replayer != nil {
		var picked []frame
		var from int64
		picked, from, err = s.collect(ctx, rf, head)
		truncated = from > since
		if err == nil {
			count, err = s.sendPicked(ctx, picked)
		} else {
			l.log.Warn("legacy replay failed", "conn", s.conn.ID(), "after", from, "error", err)
			s.fail(LegacyErrReplayFailed, "the change feed could not be read; fetch the resources instead")
			s.mu.Lock()
			s.markLostLocked(from + 1)
			s.mu.Unlock()
		}
	}
	if err == nil {
		s.mu.Lock()
		s.replayPos = max(s.replayPos, head)
		s.mu.Unlock()
	}
	// "resumed" closes the replayed part (seq <= head): everything after it
	// is live, so a client sees it at one well-defined place.
	if explicit && err == nil {
		// paced like the replay: the queue may be full of it
		if werr := s.conn.SendWait(ctx, controlMessage("resumed", head, map[string]any{"since": since, "replayed": count, "truncated": truncated}), 0); werr != nil {
			s.mu.Lock()
			s.replaying = false
			s.mu.Unlock()
			return
		}
	}
	// Hand the live events that arrived meanwhile over, then go live. The
	// last check and the switch happen under the same lock that deliver
	// takes, so no event falls between.
	for {
		s.mu.Lock()
		pending := s.pending
		s.pending = nil
		if len(pending) == 0 {
			s.mu.Unlock()
			// Let the writer take the replay's frames first: live
			// frames never wait, and must not find the queue full.
			if werr := s.conn.WaitEmpty(ctx); werr != nil {
				s.mu.Lock()
				s.replaying = false
				s.mu.Unlock()
				return
			}
			s.mu.Lock()
			if len(s.pending) > 0 {
				s.mu.Unlock()
				continue
			}
			s.replaying = false
			s.mu.Unlock()
			break
		}
		s.mu.Unlock()
		if _, perr := s.sendPicked(ctx, s.pick(pending, head, 0, nil)); perr != nil {
			s.mu.Lock()
			s.replaying = false
			s.mu.Unlock()
			return
		}
	}
}

// collect reads the replayed events back, newest window of ReplayLimit
// changes first, and returns the frames to send in seq order and the seq
// after which they start (since, unless truncated).
func (s *legacySession) collect(ctx context.Context, rf replayFrom, head int64) ([]frame, int64, error) {
	limit := int64(s.l.cfg.ReplayLimit)
	var out []frame
	hi := head
	for hi > rf.since {
		lo := max(rf.since, hi-limit)
		events, err := s.l.cfg.Replayer.Replay(ctx, lo, hi)
		if err != nil {
			return nil, lo, err
		}
		skip := 0
		if lo == rf.since {
			skip = rf.skip
		}
		out = append(s.pick(events, lo, skip, rf.only), out...)
		hi = lo
		if len(out) >= s.d.replayAtLeast || head-hi >= replayScanFactor*limit {
			break
		}
	}
	return out, hi, nil
}

// pick returns the frames of the matching events with seq > after, but
// the first skip of change after+1: with only, those of that subscription
// that no other subscription delivered live (see replayFrom).
func (s *legacySession) pick(events []*LegacyEvent, after int64, skip int, only *legacySub) []frame {
	subs := s.subs.Load().list
	var others []legacySub
	if only != nil {
		others = slices.DeleteFunc(slices.Clone(subs), func(o legacySub) bool { return o.id == only.id })
	}
	var out []frame
	for _, ev := range events {
		if ev.Seq <= after {
			continue
		}
		var i int
		var ok bool
		if only == nil {
			i, ok = s.match(ev, subs)
		} else {
			i, ok = s.matchReplayOf(ev, only, others)
		}
		if ok && ev.Seq == after+1 && skip > 0 {
			skip--
			ok = false
		}
		if ok {
			out = append(out, frame{data: ev.DialectFrame(s.dialect, i), seq: ev.Seq})
		}
	}
	return out
}

// sendPicked queues frames, waiting for room, and moves the replay
// position along.
func (s *legacySession) sendPicked(ctx context.Context, frames []frame) (int, error) {
	for n, f := range frames {
		if err := s.conn.notifyWait(ctx, f.data, f.seq); err != nil {
			s.mu.Lock()
			s.markLostLocked(f.seq)
			s.mu.Unlock()
			return n, err
		}
		// Every frame up to the next one's change is handed over (the
		// next frame may be of the same change).
		pos := f.seq
		if n+1 < len(frames) {
			pos = frames[n+1].seq - 1
		}
		s.mu.Lock()
		s.replayPos = max(s.replayPos, pos)
		s.mu.Unlock()
	}
	return len(frames), nil
}

// matchReplayOf matches ev against sub alone, unless another subscription
// of the connection, live at ev's seq, has already delivered it.
func (s *legacySession) matchReplayOf(ev *LegacyEvent, sub *legacySub, others []legacySub) (int, bool) {
	if !s.visible(ev) {
		return 0, false
	}
	i, ok := s.matchSub(ev, sub)
	if !ok {
		return 0, false
	}
	for k := range others {
		if others[k].from < ev.Seq {
			if _, dup := s.matchSub(ev, &others[k]); dup {
				return 0, false
			}
		}
	}
	return i, true
}
