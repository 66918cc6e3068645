package subscriptions

import (
	"fmt"
	"net/http"
	"time"

	"github.com/fhirsub/fhirsub/conformance/smart"
)

// quotaHoldTTL is how long a create that passed checkQuota counts against
// its owner's quota while it is being written: the hold ends when the
// subscription registers (Committed), or after this long if the write
// failed.
const quotaHoldTTL = 30 * time.Second

// quotaHolds are the creates in flight per owner (quotaKey), as expiry
// times; guarded by Manager.mu.
type quotaHolds map[string][]time.Time

func quotaKey(a *smart.Access) string { return a.Subject + "\x00" + a.Patient }

// checkQuota refuses (429) a new subscription for owner when it already
// holds Config.MaxPerOwner of them, counting the creates of that owner in
// flight (so concurrent creates cannot pass the cap together). Owners are
// told apart by subject and patient; the anonymous access of a server
// without authentication is not counted. On success the create holds one
// place until it registers (releaseQuota) or quotaHoldTTL passes.
func (m *Manager) checkQuota(owner *smart.Access) error {
	limit := m.cfg.MaxPerOwner
	if limit <= 0 || owner == nil || owner.Subject == smart.Anonymous {
		return nil
	}
	key, now := quotaKey(owner), m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, s := range m.subs {
		if s.Access != nil && s.Access.Subject == owner.Subject && s.Access.Patient == owner.Patient {
			n++
		}
	}
	if m.holds == nil {
		m.holds = quotaHolds{}
	}
	live := m.holds[key][:0]
	for _, exp := range m.holds[key] {
		if exp.After(now) {
			live = append(live, exp)
		}
	}
	if n+len(live) >= limit {
		m.holds[key] = live
		return &Error{Status: http.StatusTooManyRequests, Code: "too-costly",
			Message: fmt.Sprintf("this owner already holds %d subscriptions, the limit per owner (max-subscriptions-per-owner): delete some first", n+len(live))}
	}
	m.holds[key] = append(live, now.Add(quotaHoldTTL))
	return nil
}

// releaseQuotaLocked ends the oldest hold of owner: its create registered
// and is now counted among the subscriptions. m.mu is held.
func (m *Manager) releaseQuotaLocked(owner *smart.Access) {
	if owner == nil || m.holds == nil {
		return
	}
	key := quotaKey(owner)
	if h := m.holds[key]; len(h) > 1 {
		m.holds[key] = h[1:]
	} else {
		delete(m.holds, key)
	}
}
