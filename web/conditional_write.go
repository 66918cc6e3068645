package web

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fhirsub/fhirsub/fhirstore"
)

// conditionFromURL reads the search of PUT or DELETE /Type?criteria.
func (s *Server) conditionFromURL(c echo.Context) (string, *condition, error) {
	t, err := s.resourceType(c)
	if err != nil {
		return "", nil, err
	}
	raw := c.Request().URL.RawQuery
	if raw == "" {
		return "", nil, errorf(http.StatusBadRequest, "invalid",
			"%s /%s needs a resource id (/%s/id) or a search (/%s?identifier=…)", c.Request().Method, t, t, t)
	}
	cond, err := parseCondition(t, raw)
	return t, cond, err
}

// updateConditionalHTTP answers PUT /Type?criteria.
func (s *Server) updateConditionalHTTP(c echo.Context) error {
	t, cond, err := s.conditionFromURL(c)
	if err != nil {
		return err
	}
	body, err := s.readBodyOf(c, t)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	res, created, err := s.updateConditional(ctx, cond, body, ifMatch(c))
	if err != nil {
		return err
	}
	status, in := http.StatusOK, fhirstore.InteractionUpdate
	if created {
		status, in = http.StatusCreated, fhirstore.InteractionCreate
	}
	if err := s.committed(ctx, res, in); err != nil {
		return err
	}
	return s.respondWrite(c, status, res)
}

// updateConditional is the conditional update: one resource answering
// cond is updated (body's id, if any, must be its id), none creates body
// under its id or a new one (claiming cond like a conditional create),
// several give 412. The write is authorized and validated as a plain
// update or create. The update carries the version the search found as
// If-Match, so a resource changed meanwhile makes the decision run again.
func (s *Server) updateConditional(ctx context.Context, cond *condition, body map[string]any, wantVersion string) (*fhirstore.Resource, bool, error) {
	t := cond.q.Type
	bodyID, _ := body["id"].(string)
	if v, ok := body["id"]; ok && (bodyID == "" || !idPattern.MatchString(bodyID)) {
		return nil, false, errorf(http.StatusBadRequest, "invalid", "invalid resource id %v in the body", v)
	}
	// Every version conflict means another writer's update of the target
	// went through, so the loop makes progress; but with n concurrent
	// updaters one of them may lose n-1 times, so conflicts are bounded
	// by time (claimWait), not by claimAttempts.
	deadline := time.Now().Add(claimWait)
	for attempt := 0; attempt < claimAttempts || time.Now().Before(deadline); attempt++ {
		page, err := s.matches(ctx, cond, 2)
		if err != nil {
			return nil, false, err
		}
		if page.Total > 1 {
			return nil, false, errMultipleMatches(cond)
		}
		var target *fhirstore.Resource
		if page.Total == 1 && len(page.Resources) == 1 {
			target = page.Resources[0]
		} else {
			id := bodyID
			if id == "" {
				id = fhirstore.NewID()
			} else if _, err := s.store.Read(ctx, t, id); err == nil || errors.Is(err, fhirstore.ErrGone) {
				return nil, false, errorf(http.StatusConflict, "conflict",
					"no resource answers %s and %s/%s exists: the body's id must name the resource the condition finds", cond.key, t, id)
			}
			res, created, err := s.createClaimed(ctx, cond, id, body, wantVersion)
			if err != nil || res != nil && created {
				return res, created, err
			}
			target = res // another writer's resource answers cond now
		}
		if bodyID != "" && bodyID != target.ID {
			return nil, false, errorf(http.StatusBadRequest, "invalid",
				"id %q in the body is not %s/%s, the resource the condition %s finds", bodyID, t, target.ID, cond.key)
		}
		if wantVersion != "" && wantVersion != target.VersionID {
			return nil, false, fhirstore.ErrVersionConflict
		}
		body["id"] = target.ID
		if err := s.authorizeWrite(ctx, t, target.ID, body); err != nil {
			return nil, false, err
		}
		current, err := s.currentFor(ctx, t, target.ID)
		if err != nil {
			return nil, false, err
		}
		if err := s.validate(ctx, body, current); err != nil {
			return nil, false, err
		}
		res, created, err := s.store.Update(ctx, target.ID, body, fhirstore.WriteOptions{IfMatch: target.VersionID})
		if errors.Is(err, fhirstore.ErrVersionConflict) {
			continue // changed since the search: decide again
		}
		return res, created, err
	}
	return nil, false, errorf(http.StatusConflict, "conflict",
		"the condition %s kept changing under concurrent writes: try again", cond.key)
}

// createClaimed creates body as t/id unless a resource answers cond:
// it returns (that resource, false) then, or (the new version, true).
func (s *Server) createClaimed(ctx context.Context, cond *condition, id string, body map[string]any, wantVersion string) (*fhirstore.Resource, bool, error) {
	if wantVersion != "" {
		return nil, false, errorf(http.StatusPreconditionFailed, "conflict",
			"If-Match %q, but no resource answers the condition %s", wantVersion, cond.key)
	}
	probe := body
	if _, ok := body["id"]; ok {
		probe = make(map[string]any, len(body))
		for k, v := range body {
			if k != "id" {
				probe[k] = v
			}
		}
	}
	if err := s.authorizeWrite(ctx, cond.q.Type, "", probe); err != nil {
		return nil, false, err
	}
	body["id"] = id
	if err := s.validate(ctx, body, nil); err != nil {
		return nil, false, err
	}
	existing, err := s.claimCondition(ctx, cond, id)
	if err != nil || existing != nil {
		return existing, false, err
	}
	results, err := s.store.Transaction(ctx, []fhirstore.Op{{Method: fhirstore.MethodCreate, Type: cond.q.Type, ID: id, Body: body}})
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

// deleteConditionalHTTP answers DELETE /Type?criteria.
func (s *Server) deleteConditionalHTTP(c echo.Context) error {
	_, cond, err := s.conditionFromURL(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	deleted, err := s.deleteConditional(ctx, cond)
	if err != nil {
		return err
	}
	for _, r := range deleted {
		if err := s.committed(ctx, r, fhirstore.InteractionDelete); err != nil {
			return err
		}
	}
	if len(deleted) == 1 {
		setVersionHeaders(c, deleted[0])
	}
	msg := "no resource matched " + cond.key + ": nothing deleted"
	if len(deleted) > 0 {
		msg = "deleted " + strconv.Itoa(len(deleted)) + " resource(s) matching " + cond.key
	}
	return writeJSON(c, http.StatusOK, outcome("information", "informational", msg))
}

// deleteConditional deletes the resources answering cond: one, or every
// one (at most fhirstore.MaxCount, in one transaction) when
// Config.ConditionalDeleteMultiple is set; several otherwise give 412.
// The caller reports the deletions to the interceptors (committed).
// Each delete carries the version the search found as If-Match, so a
// resource changed meanwhile makes the decision run again.
func (s *Server) deleteConditional(ctx context.Context, cond *condition) ([]*fhirstore.Resource, error) {
	limit := 2
	if s.cfg.ConditionalDeleteMultiple {
		limit = fhirstore.MaxCount
	}
	for range claimAttempts {
		page, err := s.matches(ctx, cond, limit)
		if err != nil {
			return nil, err
		}
		switch {
		case page.Total > 1 && !s.cfg.ConditionalDeleteMultiple:
			return nil, errMultipleMatches(cond)
		case page.Total > len(page.Resources):
			return nil, errorf(http.StatusPreconditionFailed, "too-costly",
				"the condition %s matches %d resources, more than %d deleted at once", cond.key, page.Total, limit)
		case page.Total == 0:
			return nil, nil
		}
		ops := make([]fhirstore.Op, 0, len(page.Resources))
		for _, r := range page.Resources {
			if err := s.authorizeWrite(ctx, r.Type, r.ID, nil); err != nil {
				return nil, err
			}
			ops = append(ops, fhirstore.Op{Method: fhirstore.MethodDelete, Type: r.Type, ID: r.ID, IfMatch: r.VersionID})
		}
		results, err := s.store.Transaction(ctx, ops)
		if errors.Is(err, fhirstore.ErrVersionConflict) || errors.Is(err, fhirstore.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out := make([]*fhirstore.Resource, len(results))
		for i, r := range results {
			out[i] = r.Resource
		}
		return out, nil
	}
	return nil, errorf(http.StatusConflict, "conflict",
		"the condition %s kept changing under concurrent writes: try again", cond.key)
}
