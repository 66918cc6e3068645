package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fhirsub/fhirsub/conformance/search"
	"github.com/fhirsub/fhirsub/fhirstore"
)

// Conditional writes (If-None-Exist, PUT and DELETE on Type?criteria)
// decide "which resource answers this search" once for every concurrent
// caller: the search runs first; when nothing answers, the caller claims
// the normalised condition in the store (Store.Claim: a unique key) for
// the id it is about to write, and only the claim's winner writes. A
// loser waits for the winner's resource and answers with it. A claim
// whose resource no longer answers the condition (deleted, changed) or
// never appeared within claimWait (its writer died) is released and the
// whole decision runs again.

const (
	// claimWait bounds how long a conditional write waits for the
	// resource of a claim another writer holds.
	claimWait = 5 * time.Second
	// claimPoll is the interval of that wait.
	claimPoll = 10 * time.Millisecond
	// claimAttempts bounds how often a conditional write re-runs after
	// releasing stale claims.
	claimAttempts = 8
)

// condition is a parsed conditional-write search.
type condition struct {
	q      *search.Query
	params url.Values
	key    string // the normalised search, the claim's key
}

// parseCondition reads the search of a conditional write on typ: "a=b&c=d",
// "Type?a=b" or "/Type?a=b". It must filter on something and may not page
// or sort.
func parseCondition(typ, raw string) (*condition, error) {
	bad := func(msg string) error {
		return errorf(http.StatusBadRequest, "invalid", "conditional %s search %q: %s", typ, raw, msg)
	}
	query := strings.TrimSpace(raw)
	if before, after, ok := strings.Cut(query, "?"); ok {
		before = strings.TrimPrefix(before, "/")
		if i := strings.LastIndex(before, "/"); i >= 0 {
			before = before[i+1:]
		}
		if before != typ {
			return nil, bad("the search is on " + before + ", not " + typ)
		}
		query = after
	}
	params, err := url.ParseQuery(query)
	if err != nil {
		return nil, bad("malformed query string")
	}
	for _, k := range []string{"_count", "_offset", "_sort", "_include", "_revinclude", "_summary", "_elements", "_total"} {
		if _, ok := params[k]; ok {
			return nil, bad(k + " has no meaning in a condition")
		}
	}
	q, err := search.Parse(typ, params)
	if err != nil {
		return nil, err
	}
	if len(q.Params()) == 0 {
		return nil, bad("a condition needs at least one search parameter")
	}
	return &condition{q: q, params: params, key: q.String()}, nil
}

// errMultipleMatches is the 412 of a condition that several resources answer.
func errMultipleMatches(cond *condition) error {
	return errorf(http.StatusPreconditionFailed, "multiple-matches",
		"the condition %s matches more than one resource: make it more selective", cond.key)
}

// matches runs the condition as the caller's search, at most limit
// results (the total counts them all).
func (s *Server) matches(ctx context.Context, cond *condition, limit int) (*fhirstore.Page, error) {
	params := url.Values{}
	for k, vs := range cond.params {
		params[k] = vs
	}
	q, err := search.Parse(cond.q.Type, params)
	if err != nil {
		return nil, err
	}
	q.Count = limit
	return s.searchResolved(ctx, q, params)
}

// claimCondition returns the one resource answering cond, or nil when none
// does and the caller now holds the claim of cond for id: it must write
// typ/id (and Release the claim if that write fails). Several answers give
// a 412.
func (s *Server) claimCondition(ctx context.Context, cond *condition, id string) (*fhirstore.Resource, error) {
	for range claimAttempts {
		page, err := s.matches(ctx, cond, 2)
		if err != nil {
			return nil, err
		}
		switch {
		case page.Total > 1:
			return nil, errMultipleMatches(cond)
		case page.Total == 1 && len(page.Resources) == 1:
			return page.Resources[0], nil
		}
		holder, err := s.store.Claim(ctx, cond.key, id)
		if err != nil {
			return nil, err
		}
		if holder == id {
			return nil, nil
		}
		res, err := s.awaitHolder(ctx, cond, holder)
		if err != nil {
			return nil, err
		}
		if res != nil {
			if err := s.authorizeRead(ctx, res); err != nil {
				return nil, errorf(http.StatusPreconditionFailed, "conflict",
					"a resource the token may not see answers the condition %s", cond.key)
			}
			return res, nil
		}
		if err := s.store.Release(ctx, cond.key, holder); err != nil {
			return nil, err
		}
	}
	return nil, errorf(http.StatusConflict, "conflict",
		"the condition %s kept changing under concurrent writes: try again", cond.key)
}

// awaitHolder waits up to claimWait for the resource of a claim another
// writer holds and returns it if it answers cond; nil means the claim is
// stale (its resource is gone, no longer answers, or never appeared).
func (s *Server) awaitHolder(ctx context.Context, cond *condition, holder string) (*fhirstore.Resource, error) {
	deadline := time.Now().Add(claimWait)
	for {
		res, err := s.store.Read(ctx, cond.q.Type, holder)
		switch {
		case err == nil:
			body, err := fhirstore.Decode(res.Body)
			if err != nil {
				return nil, err
			}
			ok, err := cond.q.Match(body)
			if err != nil || !ok {
				return nil, err
			}
			return res, nil
		case errors.Is(err, fhirstore.ErrGone):
			return nil, nil
		case !errors.Is(err, fhirstore.ErrNotFound):
			return nil, err
		}
		if time.Now().After(deadline) {
			s.log.WarnContext(ctx, "conditional-write claim without its resource; released",
				"condition", cond.key, "holder", holder)
			return nil, nil
		}
		t := time.NewTimer(claimPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// createIfNoneExist creates body (already validated and authorized) unless
// a resource answers the condition raw: created is false when res is that
// resource.
func (s *Server) createIfNoneExist(ctx context.Context, typ, raw string, body map[string]any) (res *fhirstore.Resource, created bool, err error) {
	cond, err := parseCondition(typ, raw)
	if err != nil {
		return nil, false, err
	}
	id := fhirstore.NewID()
	existing, err := s.claimCondition(ctx, cond, id)
	if err != nil || existing != nil {
		return existing, false, err
	}
	results, err := s.store.Transaction(ctx, []fhirstore.Op{{Method: fhirstore.MethodCreate, Type: typ, ID: id, Body: body}})
	if err != nil {
		s.release(ctx, cond, id)
		var oe *fhirstore.OpError
		if errors.As(err, &oe) {
			err = oe.Err
		}
		return nil, false, err
	}
	return results[0].Resource, true, nil
}

// release gives up a claim whose write failed; a failure is logged (the
// claim is then stale and the next conditional write releases it).
func (s *Server) release(ctx context.Context, cond *condition, id string) {
	if err := s.store.Release(context.WithoutCancel(ctx), cond.key, id); err != nil {
		s.log.WarnContext(ctx, "release conditional-write claim", "condition", cond.key, "id", id, "err", err)
	}
}

// createConditional answers POST /Type with If-None-Exist: 201 for a new
// resource, 200 with the one resource that answers the condition, 412
// when several do.
func (s *Server) createConditional(c echo.Context, typ, raw string, body map[string]any) error {
	ctx := c.Request().Context()
	res, created, err := s.createIfNoneExist(ctx, typ, raw, body)
	if err != nil {
		return err
	}
	if !created {
		return s.respondWrite(c, http.StatusOK, res)
	}
	if err := s.committed(ctx, res, fhirstore.InteractionCreate); err != nil {
		return err
	}
	return s.respondWrite(c, http.StatusCreated, res)
}
