package subscriptions

import (
	"fmt"
	"net/http"

	"github.com/fhirsub/fhirsub/conformance/smart"
)

// checkQuota refuses (429) a new subscription for owner when it already
// holds Config.MaxPerOwner of them. Owners are told apart by subject and
// patient; the anonymous access of a server without authentication is
// not counted. The count is of the subscriptions registered so far, so
// concurrent creates of one owner may pass the cap by the number in
// flight.
func (m *Manager) checkQuota(owner *smart.Access) error {
	limit := m.cfg.MaxPerOwner
	if limit <= 0 || owner == nil || owner.Subject == smart.Anonymous {
		return nil
	}
	n := 0
	m.mu.RLock()
	for _, s := range m.subs {
		if s.Access != nil && s.Access.Subject == owner.Subject && s.Access.Patient == owner.Patient {
			n++
		}
	}
	m.mu.RUnlock()
	if n >= limit {
		return &Error{Status: http.StatusTooManyRequests, Code: "too-costly",
			Message: fmt.Sprintf("this owner already holds %d subscriptions, the limit per owner (max-subscriptions-per-owner): delete some first", n)}
	}
	return nil
}
