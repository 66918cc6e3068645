package subscriptions

import (
	"context"
	"sync"

	"github.com/fhirsub/fhirsub/fhirstore"
)

// readAhead is how many undelivered events a deliverer reads at once and
// keeps in memory: with max-count 1, one read of the event log serves up
// to readAhead deliveries.
const readAhead = 64

// pruneEvery is how many delivered events go by between two prunes of a
// subscription's event log.
const pruneEvery = 64

// lane is what the deliverer of one rest-hook subscription keeps in memory
// between deliveries, so that a delivery does not re-read the store: the
// delivery state as last saved and the undelivered events read ahead.
// Only the subscription's worker (the queue allows one at a time) uses it.
//
// The store stays the truth: a lane is dropped when the subscription
// disappears, when its version changes (a status change, a client update,
// a delete and re-create under the same id all make a new version) and
// when a save fails; the next delivery then reads the state again.
type lane struct {
	version string
	st      fhirstore.SubscriptionState // EventCount is not kept up to date
	ahead   []fhirstore.Event           // numbered st.Delivered+1, st.Delivered+2, …
}

// lanes holds the lanes of the subscriptions that have one.
type lanes struct {
	mu sync.Mutex
	m  map[string]*lane
}

func newLanes() *lanes { return &lanes{m: map[string]*lane{}} }

func (l *lanes) get(id string) *lane {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.m[id]
}

func (l *lanes) put(id string, ln *lane) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.m[id] = ln
}

func (l *lanes) drop(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, id)
}

// lane returns the lane of s: the cached one if it was filled under s's
// current version, else a new one with the delivery state read from the
// store.
func (d *deliverer) lane(ctx context.Context, s *Subscription) (*lane, error) {
	if ln := d.lanes.get(s.ID); ln != nil && ln.version == s.VersionID {
		return ln, nil
	}
	st, err := deliveryState(ctx, d.events, s.ID)
	if err != nil {
		d.lanes.drop(s.ID)
		return nil, err
	}
	ln := &lane{version: s.VersionID, st: st}
	d.lanes.put(s.ID, ln)
	return ln, nil
}

// pending returns the next at most batch undelivered events of the lane's
// subscription, reading ahead from the event log when the lane holds
// fewer than batch.
func (d *deliverer) pending(ctx context.Context, id string, ln *lane, batch int) ([]fhirstore.Event, error) {
	if len(ln.ahead) < batch {
		evs, err := d.events.Events(ctx, id, ln.st.Delivered+1, 0, max(batch, readAhead))
		if err != nil {
			return nil, err
		}
		ln.ahead = evs
	}
	return ln.ahead[:min(batch, len(ln.ahead))], nil
}

// delivered moves the lane past the events up to number last (saved).
func (ln *lane) delivered(last int64) {
	i := 0
	for i < len(ln.ahead) && ln.ahead[i].Number <= last {
		i++
	}
	ln.ahead = ln.ahead[i:]
	if len(ln.ahead) == 0 {
		ln.ahead = nil // let the array go
	}
}
