package delivery

import (
	"math"
	"math/rand/v2"
	"time"
)

// Backoff is the delay before retry number failures (1 = first retry):
// base·2^(failures-1), capped at max, with the attempt count capped before
// the power is computed, and "equal jitter" (half fixed, half random).
func Backoff(failures int, base, maxDelay time.Duration) time.Duration {
	n := min(max(failures-1, 0), 30)
	d := float64(base) * math.Pow(2, float64(n))
	if d > float64(maxDelay) {
		d = float64(maxDelay)
	}
	half := time.Duration(d / 2)
	return half + rand.N(half+1)
}
