package web

import (
	"context"
	"fmt"
	"net/http"

	"github.com/fhirsub/fhirsub/fhirstore"
)

// createEntry runs the POST entry of a batch: a plain create, or a
// conditional one when it carries request.ifNoneExist (created is false
// when an existing resource answers it).
func (s *Server) createEntry(ctx context.Context, e entryIn) (*fhirstore.Resource, bool, error) {
	if e.IfNoneExist != "" {
		return s.createIfNoneExist(ctx, e.Type, e.IfNoneExist, e.Resource)
	}
	res, err := s.store.Create(ctx, e.Resource)
	return res, err == nil, err
}

// settleConditionalCreates decides the POST entries of a transaction that
// carry request.ifNoneExist before anything is written: an entry that a
// resource answers gets Existing set (no write; its fullUrl now names
// that resource), the others hold the claim of their condition for the id
// the transaction assigned them. The returned func releases those claims;
// the caller runs it when the transaction does not commit.
func (s *Server) settleConditionalCreates(ctx context.Context, entries []entryIn, ids map[string]string) (release func(), err error) {
	type held struct {
		cond *condition
		id   string
	}
	var claims []held
	release = func() {
		for _, h := range claims {
			s.release(ctx, h.cond, h.id)
		}
	}
	seen := map[string]int{}
	for i := range entries {
		e := &entries[i]
		if e.Method != http.MethodPost || e.IfNoneExist == "" {
			continue
		}
		cond, err := parseCondition(e.Type, e.IfNoneExist)
		if err == nil {
			if j, dup := seen[cond.key]; dup {
				err = errorf(http.StatusBadRequest, "invalid", "entries %d and %d have the same ifNoneExist %s", j, i, cond.key)
			}
			seen[cond.key] = i
		}
		var existing *fhirstore.Resource
		if err == nil {
			existing, err = s.claimCondition(ctx, cond, e.ID)
		}
		if err != nil {
			release()
			return nil, fmt.Errorf("Bundle.entry[%d].request.ifNoneExist: %w", i, err)
		}
		if existing == nil {
			claims = append(claims, held{cond, e.ID})
			continue
		}
		e.Existing = existing
		if e.FullURL != "" {
			ids[e.FullURL] = existing.Type + "/" + existing.ID
		}
	}
	return release, nil
}
