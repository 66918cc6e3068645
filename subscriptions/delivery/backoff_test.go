package delivery

import (
	"testing"
	"time"
)

func TestBackoffCapped(t *testing.T) {
	for _, f := range []int{1, 2, 5, 64, 1 << 30} {
		d := Backoff(f, time.Second, time.Minute)
		if d <= 0 || d > time.Minute {
			t.Errorf("Backoff(%d) = %v, want in (0, 1m]", f, d)
		}
	}
	if d := Backoff(1, time.Second, time.Minute); d < 500*time.Millisecond || d > time.Second {
		t.Errorf("first retry %v, want between base/2 and base", d)
	}
}
