package subscriptions

import (
	"fmt"
	"net/http"
	"time"

	"github.com/fhirsub/fhirsub/conformance/smart"
)

// quotaHoldTTL is how long a create that passed hold counts against
// its owner's quota while it is being written: the hold ends when the
// subscription registers (Committed), or after this long if the write
// failed.
const quotaHoldTTL = 30 * time.Second

// quotaHolds are the creates in flight per owner (quotaKey), as expiry
// times; guarded by registry.mu.
type quotaHolds map[string][]time.Time

func quotaKey(a *smart.Access) string { return a.Subject + "\x00" + a.Patient }

// hold refuses (429) a new subscription for owner when it already
// holds limit of them, counting the creates of that owner in
// flight (so concurrent creates cannot pass the cap together). Owners are
// told apart by subject and patient; the anonymous access of a server
// without authentication is not counted. On success the create holds one
// place until it registers (putCreated) or quotaHoldTTL passes. A limit
// of 0 means no cap.
func (r *registry) hold(owner *smart.Access, limit int, now time.Time) error {
	if limit <= 0 || owner == nil || owner.Subject == smart.Anonymous {
		return nil
	}
	key := quotaKey(owner)
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.subs {
		if s := e.sub; s.Access != nil && s.Access.Subject == owner.Subject && s.Access.Patient == owner.Patient {
			n++
		}
	}
	if r.holds == nil {
		r.holds = quotaHolds{}
	}
	live := r.holds[key][:0]
	for _, exp := range r.holds[key] {
		if exp.After(now) {
			live = append(live, exp)
		}
	}
	if n+len(live) >= limit {
		r.holds[key] = live
		return &Error{Status: http.StatusTooManyRequests, Code: "too-costly",
			Message: fmt.Sprintf("this owner already holds %d subscriptions, the limit per owner (max-subscriptions-per-owner): delete some first", n+len(live))}
	}
	r.holds[key] = append(live, now.Add(quotaHoldTTL))
	return nil
}

// releaseQuota is releaseQuotaLocked for a create the registry filed
// already (the matcher met it first).
func (r *registry) releaseQuota(owner *smart.Access) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.releaseQuotaLocked(owner)
}

// releaseQuotaLocked ends the oldest hold of owner: its create registered
// and is now counted among the subscriptions. r.mu is held.
func (r *registry) releaseQuotaLocked(owner *smart.Access) {
	if owner == nil || r.holds == nil {
		return
	}
	key := quotaKey(owner)
	if h := r.holds[key]; len(h) > 1 {
		r.holds[key] = h[1:]
	} else {
		delete(r.holds, key)
	}
}
