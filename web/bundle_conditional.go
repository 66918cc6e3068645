package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

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

// parsePatchEntry reads the patch of PATCH entry i.
func parsePatchEntry(i int, e *entryIn) error {
	p, err := entryPatcher(e.Resource)
	if err != nil {
		return fmt.Errorf("resource of Bundle.entry[%d]: %w", i, err)
	}
	e.Patch, e.Resource = p, nil
	return nil
}

// conditionalBatchEntry runs a PATCH, or a conditional PUT or DELETE, entry of a batch
// and gives its response entry.
func (s *Server) conditionalBatchEntry(c echo.Context, e entryIn) bundleEntry {
	ctx := c.Request().Context()
	if e.Method == http.MethodPatch {
		var res *fhirstore.Resource
		var err error
		if e.ID != "" {
			res, err = s.patch(ctx, e.Type, e.ID, e.Patch, e.IfMatch)
		} else {
			var cond *condition
			if cond, err = parseCondition(e.Type, e.Query.Encode()); err == nil {
				res, err = s.patchConditional(ctx, cond, e.Patch, e.IfMatch)
			}
		}
		if err == nil {
			err = s.committed(ctx, res, fhirstore.InteractionUpdate)
		}
		if err != nil {
			return errorEntry(err)
		}
		return s.writeEntry(c, http.MethodPut, fhirstore.OpResult{Resource: res})
	}
	cond, err := parseCondition(e.Type, e.Query.Encode())
	if err != nil {
		return errorEntry(err)
	}
	if e.Method == http.MethodPut {
		res, created, err := s.updateConditional(ctx, cond, e.Resource, e.IfMatch)
		if err == nil {
			err = s.committed(ctx, res, interactionOf(fhirstore.MethodUpdate, created))
		}
		if err != nil {
			return errorEntry(err)
		}
		return s.writeEntry(c, http.MethodPut, fhirstore.OpResult{Resource: res, Created: created})
	}
	deleted, err := s.deleteConditional(ctx, cond)
	for _, r := range deleted {
		if err == nil {
			err = s.committed(ctx, r, fhirstore.InteractionDelete)
		}
	}
	if err != nil {
		return errorEntry(err)
	}
	return deletedEntry(cond, len(deleted))
}

// deletedEntry is the response entry of a conditional delete.
func deletedEntry(cond *condition, n int) bundleEntry {
	msg := "no resource matched " + cond.key + ": nothing deleted"
	if n > 0 {
		msg = "deleted " + strconv.Itoa(n) + " resource(s) matching " + cond.key
	}
	raw, _ := json.Marshal(outcome("information", "informational", msg))
	return bundleEntry{Response: &entryResponse{Status: "200 OK", Outcome: raw}}
}

// settledEntries fills the response entries of the transaction entries
// settleConditionals answered without a write.
func (s *Server) settledEntries(c echo.Context, entries []entryIn, out []bundleEntry) {
	for i, e := range entries {
		switch {
		case e.Existing != nil:
			out[i] = s.writeEntry(c, http.MethodPut, fhirstore.OpResult{Resource: e.Existing})
		case e.NoMatch:
			cond, _ := parseCondition(e.Type, e.Query.Encode())
			if cond != nil {
				out[i] = deletedEntry(cond, 0)
			}
		}
	}
}

// settleConditionals decides the conditional entries of a transaction
// before anything is written. A POST with request.ifNoneExist that a
// resource answers gets Existing set (no write; its fullUrl names that
// resource); otherwise it holds the claim of its condition for the id the
// transaction assigned it. A PUT Type?search becomes an update of its one
// match (If-Match: the version found) or, with no match, an update-as-
// create under a claimed id. A DELETE Type?search becomes a delete of its
// one match (If-Match: the version found) or NoMatch. A PATCH becomes
// the update of the patched current version (If-Match: that version).
// The returned func
// releases the claims taken; the caller runs it when the transaction does
// not commit.
func (s *Server) settleConditionals(ctx context.Context, entries []entryIn, ids map[string]string) (release func(), err error) {
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
		var raw string
		switch {
		case e.Method == http.MethodPost && e.IfNoneExist != "":
			raw = e.IfNoneExist
		case (e.Method == http.MethodPut || e.Method == http.MethodDelete) && e.ID == "":
			raw = e.Query.Encode()
		case e.Method == http.MethodPatch:
			if err := s.settlePatch(ctx, e, seen, i); err != nil {
				release()
				return nil, err
			}
			if e.FullURL != "" {
				ids[e.FullURL] = e.Type + "/" + e.ID
			}
			continue
		default:
			continue
		}
		cond, err := entryCondition(e.Type, raw, seen, i)
		var claimed string
		if err == nil {
			claimed, err = s.settleEntry(ctx, e, cond)
		}
		if err != nil {
			release()
			return nil, fmt.Errorf("request of Bundle.entry[%d]: %w", i, err)
		}
		if claimed != "" {
			claims = append(claims, held{cond, claimed})
		}
		switch {
		case e.FullURL == "":
		case e.ID != "":
			ids[e.FullURL] = e.Type + "/" + e.ID
		default:
			delete(ids, e.FullURL) // a conditional delete that matched nothing
		}
	}
	return release, nil
}

// entryCondition parses the condition of transaction entry i; seen holds
// the entries' conditions so far, of which none may repeat (two entries
// deciding on one search would each write as if alone).
func entryCondition(typ, raw string, seen map[string]int, i int) (*condition, error) {
	cond, err := parseCondition(typ, raw)
	if err != nil {
		return nil, err
	}
	if j, dup := seen[cond.key]; dup {
		return nil, errorf(http.StatusBadRequest, "invalid", "entries %d and %d have the same condition %s", j, i, cond.key)
	}
	seen[cond.key] = i
	return cond, nil
}

// settlePatch turns PATCH entry i of a transaction into the update of the
// patched current version (If-Match: that version). A conditional patch
// first finds its one resource (none: 404; several: 412) and patches the
// version found.
func (s *Server) settlePatch(ctx context.Context, e *entryIn, seen map[string]int, i int) error {
	if e.ID == "" {
		cond, err := entryCondition(e.Type, e.Query.Encode(), seen, i)
		var target *fhirstore.Resource
		if err == nil {
			target, err = s.onlyMatch(ctx, cond)
		}
		if err != nil {
			return fmt.Errorf("request of Bundle.entry[%d]: %w", i, err)
		}
		e.ID = target.ID
		if e.IfMatch == "" {
			e.IfMatch = target.VersionID
		}
	}
	body, cur, err := s.patched(ctx, e.Type, e.ID, e.Patch, e.IfMatch)
	if err != nil {
		return fmt.Errorf("patch of Bundle.entry[%d]: %w", i, err)
	}
	e.Method, e.Resource, e.IfMatch, e.Patch = http.MethodPut, body, cur.VersionID, nil
	return nil
}

// settleEntry decides one conditional transaction entry (see
// settleConditionals); claimed is the id whose claim it took, if any.
func (s *Server) settleEntry(ctx context.Context, e *entryIn, cond *condition) (claimed string, err error) {
	switch e.Method {
	case http.MethodPost:
		existing, err := s.claimCondition(ctx, cond, e.ID)
		if err != nil {
			return "", err
		}
		if existing != nil {
			e.Existing, e.ID = existing, existing.ID
			return "", nil
		}
		return e.ID, nil
	case http.MethodDelete:
		page, err := s.matches(ctx, cond, 2)
		switch {
		case err != nil:
			return "", err
		case page.Total > 1:
			return "", errMultipleMatches(cond)
		case page.Total == 0 || len(page.Resources) == 0:
			e.NoMatch = true
			return "", nil
		}
		e.ID, e.IfMatch = page.Resources[0].ID, page.Resources[0].VersionID
		return "", nil
	}
	// PUT Type?search
	page, err := s.matches(ctx, cond, 2)
	if err != nil {
		return "", err
	}
	if page.Total > 1 {
		return "", errMultipleMatches(cond)
	}
	bodyID, _ := e.Resource["id"].(string)
	var target *fhirstore.Resource
	if page.Total == 1 && len(page.Resources) == 1 {
		target = page.Resources[0]
	} else {
		if e.IfMatch != "" {
			return "", errorf(http.StatusPreconditionFailed, "conflict", "ifMatch %q, but no resource answers the condition %s", e.IfMatch, cond.key)
		}
		id := bodyID
		if id == "" {
			id = fhirstore.NewID()
		} else if _, err := s.store.Read(ctx, e.Type, id); err == nil || errors.Is(err, fhirstore.ErrGone) {
			return "", errorf(http.StatusConflict, "conflict",
				"no resource answers %s and %s/%s exists: the resource's id must name the resource the condition finds", cond.key, e.Type, id)
		}
		if target, err = s.claimCondition(ctx, cond, id); err != nil {
			return "", err
		}
		if target == nil {
			e.ID, e.Resource["id"] = id, id
			return id, nil
		}
	}
	if bodyID != "" && bodyID != target.ID {
		return "", errorf(http.StatusBadRequest, "invalid", "id %q in the resource is not %s/%s, which the condition %s finds", bodyID, e.Type, target.ID, cond.key)
	}
	if e.IfMatch != "" && e.IfMatch != target.VersionID {
		return "", fhirstore.ErrVersionConflict
	}
	e.ID, e.IfMatch, e.Resource["id"] = target.ID, target.VersionID, target.ID
	// Validated when parsed without knowing the version it replaces: the
	// type's interceptor now judges the update against it.
	current, err := s.currentFor(ctx, e.Type, e.ID)
	if err != nil {
		return "", err
	}
	return "", s.validate(ctx, e.Resource, current)
}
