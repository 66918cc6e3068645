package subscriptions

import (
	"context"
	"time"

	"github.com/fhirsub/fhirsub/subscriptions/delivery"
)

// scheduleLoop wakes the deliverers for due retries and heartbeats and
// for subscriptions whose end has passed. The due times live in a heap
// (delivery.Schedule), so a look costs the number of subscriptions due, not the
// number known. It looks every HeartbeatTick (the queue's slow-attempt
// check runs then too) and when the earliest timer is due; a timer set
// earlier than the next look wakes it to recompute.
func (m *Manager) scheduleLoop(ctx context.Context) {
	t := time.NewTimer(m.cfg.HeartbeatTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.sched.Kick():
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		}
		t.Reset(m.tick())
	}
}

// tick is one look of the schedule loop: it queues the subscriptions
// whose timer is due and returns how long to wait until the next look.
func (m *Manager) tick() time.Duration {
	now := m.cfg.Now()
	m.queue.Migrate(time.Now())
	for _, id := range m.sched.Due(now, m.cfg.HeartbeatTick, m.owns) {
		m.queue.Push(id)
	}
	wait := m.cfg.HeartbeatTick
	if first := m.sched.Earliest(); !first.IsZero() {
		wait = min(wait, max(first.Sub(m.cfg.Now()), time.Millisecond))
	}
	m.sched.Plan(m.cfg.Now().Add(wait))
	return wait
}

// timingOf is what the timers of s depend on.
func timingOf(s *Subscription) delivery.Timing {
	return delivery.Timing{Off: s.Status == StatusOff, RestHook: s.ChannelType == ChannelRestHook,
		Beats: s.Status == StatusActive || s.Status == StatusError, Heartbeat: s.Heartbeat, End: s.End}
}
