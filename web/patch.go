package web

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"mime"
	"net/http"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/labstack/echo/v4"

	"github.com/fhirsub/fhirsub/conformance/fhirpatch"
	"github.com/fhirsub/fhirsub/fhirstore"
)

const jsonPatchType = "application/json-patch+json"

// maxPatchCopyBytes caps the bytes a JSON Patch's copy operations may add
// in total: each copy can double a document (copy /a into /a/b, again and
// again), so a few dozen operations would otherwise ask for gigabytes.
const maxPatchCopyBytes = 4 << 20

// patcher turns the current body of a resource into the patched one.
type patcher func(cur map[string]any) (map[string]any, error)

// jsonPatcher applies an RFC 6902 JSON Patch document.
func jsonPatcher(doc []byte) (patcher, error) {
	if t := bytes.TrimSpace(doc); len(t) == 0 || t[0] != '[' {
		return nil, errorf(http.StatusBadRequest, "invalid", "malformed JSON Patch: the document must be a JSON array of operations")
	}
	p, err := jsonpatch.DecodePatch(doc)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "invalid", "malformed JSON Patch: %v", err)
	}
	if err := unambiguous(doc); err != nil {
		return nil, err
	}
	opts := jsonpatch.NewApplyOptions()
	opts.SupportNegativeIndices = false // RFC 6902: an index is a non-negative integer or "-"
	opts.AccumulatedCopySizeLimit = maxPatchCopyBytes
	return func(cur map[string]any) (map[string]any, error) {
		raw, err := json.Marshal(cur)
		if err != nil {
			return nil, err
		}
		out, err := p.ApplyWithOptions(raw, opts)
		if err != nil {
			return nil, errorf(http.StatusUnprocessableEntity, "processing", "JSON Patch does not apply: %v", err)
		}
		return decodeObject(out)
	}, nil
}

// fhirPathPatcher applies a FHIRPath Patch (a Parameters resource).
func fhirPathPatcher(params map[string]any) patcher {
	return func(cur map[string]any) (map[string]any, error) {
		if err := fhirpatch.Apply(cur, params); err != nil {
			return nil, errorf(http.StatusUnprocessableEntity, "processing", "%v", err)
		}
		return cur, nil
	}
}

// patchHTTP answers PATCH /Type/id with a JSON Patch
// (application/json-patch+json) or a FHIRPath Patch (a Parameters
// resource as application/fhir+json).
func (s *Server) patchHTTP(c echo.Context) error {
	t, id, err := s.typeAndID(c)
	if err != nil {
		return err
	}
	return s.patchWith(c, func(ctx context.Context, p patcher) (*fhirstore.Resource, error) {
		return s.patch(ctx, t, id, p, ifMatch(c))
	})
}

// patchConditionalHTTP answers PATCH /Type?criteria: the patch of the one
// resource the search finds (none: 404; several: 412).
func (s *Server) patchConditionalHTTP(c echo.Context) error {
	_, cond, err := s.conditionFromURL(c)
	if err != nil {
		return err
	}
	return s.patchWith(c, func(ctx context.Context, p patcher) (*fhirstore.Resource, error) {
		return s.patchConditional(ctx, cond, p, ifMatch(c))
	})
}

// patchWith reads the request's patch, has run apply it and answers the
// patched resource.
func (s *Server) patchWith(c echo.Context, run func(context.Context, patcher) (*fhirstore.Resource, error)) error {
	p, err := s.requestPatcher(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	res, err := run(ctx, p)
	if err != nil {
		return err
	}
	if err := s.committed(ctx, res, fhirstore.InteractionUpdate); err != nil {
		return err
	}
	return s.respondWrite(c, http.StatusOK, res)
}

// requestPatcher reads a PATCH request's body: a JSON Patch
// (application/json-patch+json) or a FHIRPath Patch (a Parameters
// resource as application/fhir+json).
func (s *Server) requestPatcher(c echo.Context) (patcher, error) {
	r := c.Request()
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case mt == jsonPatchType:
		if err := utf8Charset(params); err != nil {
			return nil, err
		}
		raw, err := readBody(r)
		if err != nil {
			return nil, err
		}
		return jsonPatcher(raw)
	case mt == "" || jsonFormat(mt):
		body, err := s.readJSON(c)
		if err != nil {
			return nil, err
		}
		if body["resourceType"] != "Parameters" {
			return nil, errorf(http.StatusBadRequest, "invalid", "a PATCH body is a JSON Patch (%s) or a FHIRPath Patch Parameters resource", jsonPatchType)
		}
		return fhirPathPatcher(body), nil
	}
	return nil, errorf(http.StatusUnsupportedMediaType, "not-supported",
		"Content-Type %q is not supported for PATCH: send %s or a FHIRPath Patch as application/fhir+json", mt, jsonPatchType)
}

// patchConditional patches the one resource answering cond, as the
// caller's search finds it: none gives 404, several 412. The patch
// applies to the version the search found (or the caller's If-Match), so
// a resource changed meanwhile makes the decision run again.
func (s *Server) patchConditional(ctx context.Context, cond *condition, p patcher, wantVersion string) (*fhirstore.Resource, error) {
	for range claimAttempts {
		target, err := s.onlyMatch(ctx, cond)
		if err != nil {
			return nil, err
		}
		want := wantVersion
		if want == "" {
			want = target.VersionID
		}
		res, err := s.patch(ctx, target.Type, target.ID, p, want)
		if errors.Is(err, fhirstore.ErrVersionConflict) && wantVersion == "" {
			continue
		}
		return res, err
	}
	return nil, errorf(http.StatusConflict, "conflict",
		"the condition %s kept changing under concurrent writes: try again", cond.key)
}

// onlyMatch is the one resource answering cond: none gives 404, several
// 412.
func (s *Server) onlyMatch(ctx context.Context, cond *condition) (*fhirstore.Resource, error) {
	page, err := s.matches(ctx, cond, 2)
	switch {
	case err != nil:
		return nil, err
	case page.Total > 1:
		return nil, errMultipleMatches(cond)
	case page.Total == 0 || len(page.Resources) == 0:
		return nil, errorf(http.StatusNotFound, "not-found", "no resource matches %s: nothing to patch", cond.key)
	}
	return page.Resources[0], nil
}

// patch applies p to the current version of t/id and stores the result
// as an update: authorized and validated like one, If-Match honoured. The
// write carries the version read as If-Match; without the caller's
// If-Match a concurrent change makes it patch the new version instead.
func (s *Server) patch(ctx context.Context, t, id string, p patcher, wantVersion string) (*fhirstore.Resource, error) {
	for range claimAttempts {
		body, cur, err := s.patched(ctx, t, id, p, wantVersion)
		if err != nil {
			return nil, err
		}
		res, _, err := s.store.Update(ctx, id, body, fhirstore.WriteOptions{IfMatch: cur.VersionID})
		if errors.Is(err, fhirstore.ErrVersionConflict) && wantVersion == "" {
			continue
		}
		return res, err
	}
	return nil, errorf(http.StatusConflict, "conflict", "%s/%s kept changing under concurrent writes: try again", t, id)
}

// patched reads t/id, applies p and checks the result as an update.
func (s *Server) patched(ctx context.Context, t, id string, p patcher, wantVersion string) (map[string]any, *fhirstore.Resource, error) {
	cur, err := s.store.Read(ctx, t, id)
	if err != nil {
		return nil, nil, err
	}
	if err := s.authorizeRead(ctx, cur); err != nil {
		return nil, nil, err
	}
	if wantVersion != "" && wantVersion != cur.VersionID {
		return nil, nil, fhirstore.ErrVersionConflict
	}
	// The patch applies to the resource as the caller may see it (secrets
	// masked, as Redact shows them), never to the stored secrets: a copy,
	// move or test op on them would reveal them. The update's validation
	// puts the stored secrets back where the masked values remain.
	body, err := fhirstore.Decode(s.shown(cur))
	if err != nil {
		return nil, nil, err
	}
	body, err = p(body)
	if err != nil {
		return nil, nil, err
	}
	if body["resourceType"] != t || body["id"] != id {
		return nil, nil, errorf(http.StatusUnprocessableEntity, "processing", "a patch may not change resourceType or id")
	}
	if err := s.authorizeWrite(ctx, t, id, body); err != nil {
		return nil, nil, err
	}
	current, err := s.currentFor(ctx, t, id)
	if err != nil {
		return nil, nil, err
	}
	if err := s.validate(ctx, body, current); err != nil {
		return nil, nil, err
	}
	return body, cur, nil
}

// entryPatcher reads the patch of a bundle entry: a Binary whose
// contentType is application/json-patch+json (data is the base64 JSON
// Patch), or a FHIRPath Patch Parameters resource.
func entryPatcher(res map[string]any) (patcher, error) {
	switch res["resourceType"] {
	case "Parameters":
		return fhirPathPatcher(res), nil
	case "Binary":
		ct, _ := res["contentType"].(string)
		if mt, _, _ := mime.ParseMediaType(ct); mt != jsonPatchType {
			return nil, errorf(http.StatusBadRequest, "invalid", "a PATCH entry's Binary must have contentType %s", jsonPatchType)
		}
		data, _ := res["data"].(string)
		raw, err := base64.StdEncoding.DecodeString(data)
		if err != nil || len(bytes.TrimSpace(raw)) == 0 {
			return nil, errorf(http.StatusBadRequest, "invalid", "a PATCH entry's Binary.data must be a base64 JSON Patch")
		}
		return jsonPatcher(raw)
	}
	return nil, errorf(http.StatusBadRequest, "invalid", "a PATCH entry's resource is a Binary (JSON Patch) or a Parameters (FHIRPath Patch)")
}
