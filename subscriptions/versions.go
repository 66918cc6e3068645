package subscriptions

import (
	"context"

	"github.com/fhirsub/fhirsub/conformance/search"
	"github.com/fhirsub/fhirsub/conformance/smart"
	"github.com/fhirsub/fhirsub/fhirstore"
)

// loaded is a change with its versions, each read and decoded at most
// once, on demand, for the matcher and the taps (it implements Versions).
type loaded struct {
	store   fhirstore.Store
	ctx     context.Context
	c       fhirstore.Change
	res     *fhirstore.Resource // the new version (a tombstone for delete), once read
	cur     map[string]any      // nil for delete
	resErr  error               // reading or decoding the new version failed
	resOK   bool                // res, cur and resErr are set
	prev    map[string]any
	prevErr error
	prevOK  bool
	keys    []search.Key
	keysOK  bool
	seen    map[*smart.Access]bool // visible decisions by access
}

// load makes the change's versions available, and reads the new version
// at once unless nothing the matcher holds can be interested in the type.
func (mt *matcher) load(ctx context.Context, c fhirstore.Change) (*loaded, error) {
	ch := &loaded{store: mt.store, ctx: ctx, c: c}
	if !mt.reg.interested(c.Type) && c.Type != "Subscription" && c.Type != "SubscriptionTopic" {
		return ch, nil
	}
	if c.Type == "Subscription" && !mt.reg.interested(c.Type) && mt.reg.reflects(c.ID, c.VersionID) {
		// the server's own write (a create through the API, a status
		// change by the deliverer), already in the registry: nothing to
		// read unless a tap asks
		return ch, nil
	}
	if _, err := ch.Current(); err != nil {
		return nil, err
	}
	return ch, nil
}

// Resource returns the new version (a tombstone for a delete).
func (ch *loaded) Resource() (*fhirstore.Resource, error) {
	if ch.resOK {
		return ch.res, ch.resErr
	}
	ch.resOK = true
	res, err := ch.store.VRead(ch.ctx, ch.c.Type, ch.c.ID, ch.c.VersionID)
	if err != nil {
		ch.resErr = err
		return nil, err
	}
	ch.res = res
	if !res.Deleted {
		ch.cur, ch.resErr = fhirstore.Decode(res.Body)
	}
	return ch.res, ch.resErr
}

// Current returns the new version decoded (nil for a delete).
func (ch *loaded) Current() (map[string]any, error) {
	if _, err := ch.Resource(); err != nil {
		return nil, err
	}
	return ch.cur, nil
}

// Previous returns the version the change replaced (nil for none).
func (ch *loaded) Previous() (map[string]any, error) {
	return ch.previous()
}

// previous returns the version the change replaced (nil for none).
func (ch *loaded) previous() (map[string]any, error) {
	if ch.prevOK {
		return ch.prev, ch.prevErr
	}
	ch.prevOK = true
	if ch.c.PreviousVersionID == "" {
		return nil, nil
	}
	res, err := ch.store.VRead(ch.ctx, ch.c.Type, ch.c.ID, ch.c.PreviousVersionID)
	if err != nil {
		ch.prevErr = err
		return nil, err
	}
	if !res.Deleted {
		ch.prev, ch.prevErr = fhirstore.Decode(res.Body)
	}
	return ch.prev, ch.prevErr
}

// focus is the resource subscriptions filter on: the new version, or the
// previous one for a delete.
func (ch *loaded) focus() map[string]any {
	if ch.cur != nil {
		return ch.cur
	}
	p, _ := ch.previous()
	return p
}

// focusKeys returns the exact search keys of the focus, computed once.
func (ch *loaded) focusKeys() []search.Key {
	if !ch.keysOK {
		ch.keysOK = true
		if f := ch.focus(); f != nil {
			ch.keys, _ = search.Keys(f)
		}
	}
	return ch.keys
}
