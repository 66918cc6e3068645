package subscriptions

import (
	"github.com/fhirsub/fhirsub/fhirstore"
	"github.com/fhirsub/fhirsub/subscriptions/delivery"
	"github.com/fhirsub/fhirsub/topics"
)

// restamp returns s as the deliverer's own status write stored it again
// (version nres), without parsing the body once more: that write changes
// only the status and the error, so the new version's Subscription is s
// with the new status, error and version, and with the end judged again
// against the new version's write time as parse judges it (an end
// already past when a version was written is ignored). Parsing the
// written body again was 3.7% of the server's CPU while subscriptions
// were created and activated.
//
// ok is false when s's topic is no longer the one the topic registry has
// for its criteria (the topic was updated since s was parsed): parsing
// binds the subscription, and its filters, to the current one.
func restamp(s *Subscription, nres *fhirstore.Resource, status Status, msg string,
	topic func(string) (*topics.Topic, bool)) (*Subscription, bool) {
	if s.Topic != nil {
		if t, found := topic(s.TopicURL()); !found || t != s.Topic {
			return nil, false
		}
	}
	ns := *s
	ns.VersionID = nres.VersionID
	ns.Status, ns.Error = status, msg
	if ns.end != 0 && !nres.LastUpdated.IsZero() && ns.end <= delivery.InstantOf(nres.LastUpdated) {
		ns.end = 0
	}
	return &ns, true
}
