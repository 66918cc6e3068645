package subscriptions

import (
	"context"
	"errors"

	"github.com/fhirsub/fhirsub/conformance/search"
	"github.com/fhirsub/fhirsub/conformance/smart"
	"github.com/fhirsub/fhirsub/fhirstore"
)

// ownerResolver follows the chained and _has parameters of classic
// criteria at match time as the subscription's owner: a resource the
// owner may not read is as good as missing, so criteria are no oracle on
// hidden data.
type ownerResolver struct {
	store fhirstore.Store
	acc   *smart.Access
}

func (r ownerResolver) sees(typ string, body map[string]any) bool {
	if !r.acc.Allows(typ, readPerms) {
		return false
	}
	return !r.acc.Restricted(typ, readPerms) || r.acc.CanSee(body)
}

// Read implements search.Resolver.
func (r ownerResolver) Read(ctx context.Context, typ, id string) (map[string]any, error) {
	res, err := r.store.Read(ctx, typ, id)
	if errors.Is(err, fhirstore.ErrNotFound) || errors.Is(err, fhirstore.ErrGone) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	body, err := fhirstore.Decode(res.Body)
	if err != nil || !r.sees(typ, body) {
		return nil, err
	}
	return body, nil
}

// Search implements search.Resolver with one store page of
// fhirstore.MaxCount: a _has at match time asks about one resource, so
// the page holds every candidate.
func (r ownerResolver) Search(ctx context.Context, sub *search.Query) ([]map[string]any, error) {
	q := *sub
	q.Count, q.Offset = fhirstore.MaxCount, 0
	page, err := r.store.Search(ctx, &q)
	if err != nil {
		return nil, err
	}
	var out []map[string]any
	for _, res := range page.Resources {
		body, err := fhirstore.Decode(res.Body)
		if err != nil {
			return nil, err
		}
		if r.sees(res.Type, body) {
			out = append(out, body)
		}
	}
	return out, nil
}

// matchCriteria applies classic criteria to the new version of a change,
// the focus the criteria of every candidate share; chained and _has
// parameters are followed now, as the owner.
func matchCriteria(ctx context.Context, store fhirstore.Store, s *Subscription, cur *search.Focus) (bool, error) {
	if !s.Criteria.HasLinks() {
		return s.Criteria.MatchFocus(cur)
	}
	acc := s.Access
	if acc == nil {
		return false, errors.New("subscription without an access: chained criteria not followed")
	}
	return s.Criteria.MatchLinked(ctx, cur.Resource(), ownerResolver{store: store, acc: acc})
}
