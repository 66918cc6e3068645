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
func (d *deliverer) scheduleLoop(ctx context.Context) {
	t := time.NewTimer(d.cfg.HeartbeatTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-d.sched.Kick():
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		}
		t.Reset(d.tick())
	}
}

// tick is one look of the schedule loop: it queues the subscriptions
// whose timer is due and returns how long to wait until the next look.
func (d *deliverer) tick() time.Duration {
	now := d.cfg.Now()
	d.queue.Migrate(time.Now())
	for _, id := range d.sched.Due(now, d.cfg.HeartbeatTick, d.owns) {
		d.queue.Push(id)
	}
	wait := d.cfg.HeartbeatTick
	if first := d.sched.Earliest(); !first.IsZero() {
		wait = min(wait, max(first.Sub(d.cfg.Now()), time.Millisecond))
	}
	d.sched.Plan(d.cfg.Now().Add(wait))
	return wait
}

// timingOf is what the timers of s depend on.
func timingOf(s *Subscription) delivery.Timing {
	return delivery.Timing{Off: s.Status == StatusOff, RestHook: s.ChannelType == ChannelRestHook,
		Beats: s.Status == StatusActive || s.Status == StatusError, Heartbeat: s.Heartbeat, End: s.End()}
}
