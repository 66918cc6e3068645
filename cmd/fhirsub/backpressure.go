package main

import (
	"fmt"
	"time"

	"github.com/fhirsub/fhirsub/subscriptions"
)

// lagSource is what the write gate reads from the subscription manager.
type lagSource interface {
	Lag() subscriptions.Lag
}

// maxRetryAfter caps the Retry-After the write gate suggests.
const maxRetryAfter = 30 * time.Second

// lagGate is the web.Backpressure of the server: writes are refused while
// the notification lag of the matcher or of rest-hook delivery is over the
// bound, so that a server that cannot keep up says so instead of falling
// behind silently. The websocket lag (frames queued on sockets, see
// socketCounter) does not count: a slow consumer is disconnected by the
// hub, and one slow socket must not throttle everybody's writes.
type lagGate struct {
	lag   lagSource
	bound time.Duration // 0: never refuse
}

// Overloaded implements web.Backpressure. The suggested wait is how far
// the lag is over the bound (at least 1 s, at most maxRetryAfter): the
// backlog drains at least as fast as it grew past the bound once writes
// pause.
func (g lagGate) Overloaded() (time.Duration, string, bool) {
	if g.bound <= 0 {
		return 0, "", false
	}
	lag, channel := g.lag.Lag().Max()
	if lag <= g.bound {
		return 0, "", false
	}
	after := min(max(lag-g.bound, time.Second), maxRetryAfter)
	return after, fmt.Sprintf("notification lag (%s) is %s, over the bound of %s (--max-notification-lag)",
		channel, lag.Round(time.Millisecond), g.bound), true
}
