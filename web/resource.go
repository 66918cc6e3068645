package web

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fhirsub/fhirsub/conformance/search"
	"github.com/fhirsub/fhirsub/fhirstore"
)

var idPattern = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

// resourceType returns the :type path parameter, checked against the
// served types.
func (s *Server) resourceType(c echo.Context) (string, error) {
	t := c.Param("type")
	if !s.knownType(t) {
		return "", errorf(http.StatusNotFound, "not-supported", "unknown resource type %q", t)
	}
	return t, nil
}

// typeAndID returns the :type and :id path parameters, both checked.
func (s *Server) typeAndID(c echo.Context) (string, string, error) {
	t, err := s.resourceType(c)
	if err != nil {
		return "", "", err
	}
	id := c.Param("id")
	if !idPattern.MatchString(id) {
		return "", "", errorf(http.StatusBadRequest, "invalid", "invalid resource id %q: ids are 1-64 characters of A-Z a-z 0-9 - .", id)
	}
	return t, id, nil
}

// ifMatch extracts a version id from an If-Match header (W/"3", "3" or 3).
func ifMatch(c echo.Context) string { return etagVersion(c.Request().Header.Get("If-Match")) }

// etagVersion is the version id an ETag names: W/"3", "3" or 3 give 3.
func etagVersion(tag string) string {
	return strings.Trim(strings.TrimPrefix(strings.TrimSpace(tag), "W/"), `"`)
}

// readBodyOf reads the request's resource, which must be of type t when it
// names its type.
func (s *Server) readBodyOf(c echo.Context, t string) (map[string]any, error) {
	body, err := s.readJSON(c)
	if err != nil {
		return nil, err
	}
	if rt, ok := body["resourceType"].(string); ok && rt != t {
		return nil, errorf(http.StatusBadRequest, "invalid", "resourceType %q in the body does not match %q in the URL", rt, t)
	}
	return body, nil
}

func (s *Server) create(c echo.Context) error {
	t, err := s.resourceType(c)
	if err != nil {
		return err
	}
	body, err := s.readBodyOf(c, t)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if err := s.authorizeWrite(ctx, t, "", body); err != nil {
		return err
	}
	if err := s.validate(ctx, body, nil); err != nil {
		return err
	}
	if vals, ok := c.Request().Header["If-None-Exist"]; ok {
		return s.createConditional(c, t, strings.Join(vals, "&"), body)
	}
	res, err := s.store.Create(ctx, body)
	if err != nil {
		return err
	}
	if err := s.committed(ctx, res, fhirstore.InteractionCreate); err != nil {
		return err
	}
	return s.respondWrite(c, http.StatusCreated, res)
}

func (s *Server) read(c echo.Context) error {
	t, id, err := s.typeAndID(c)
	if err != nil {
		return err
	}
	q, err := readShape(c, t)
	if err != nil {
		return err
	}
	res, err := s.store.Read(c.Request().Context(), t, id)
	if err != nil {
		return s.goneOrHidden(c.Request().Context(), t, id, err)
	}
	if err := s.authorizeRead(c.Request().Context(), res); err != nil {
		return err
	}
	if notModified(c.Request(), res) {
		setVersionHeaders(c, res)
		return c.NoContent(http.StatusNotModified)
	}
	return s.respondResource(c, res, q)
}

// notModified reports whether a conditional read's copy is current: an
// If-None-Match that names the current version (or *), or, without it, an
// If-Modified-Since not before the last update (HTTP dates have seconds).
func notModified(r *http.Request, res *fhirstore.Resource) bool {
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		for _, tag := range strings.Split(inm, ",") {
			if strings.TrimSpace(tag) == "*" || etagVersion(tag) == res.VersionID {
				return true
			}
		}
		return false
	}
	if ims := r.Header.Get("If-Modified-Since"); ims != "" {
		t, err := http.ParseTime(ims)
		return err == nil && !res.LastUpdated.Truncate(time.Second).After(t)
	}
	return false
}

func (s *Server) vread(c echo.Context) error {
	t, id, err := s.typeAndID(c)
	if err != nil {
		return err
	}
	q, err := readShape(c, t)
	if err != nil {
		return err
	}
	vid := c.Param("vid")
	if !idPattern.MatchString(vid) {
		return errorf(http.StatusBadRequest, "invalid", "invalid version id %q", vid)
	}
	res, err := s.store.VRead(c.Request().Context(), t, id, vid)
	if err != nil {
		return err
	}
	if err := s.authorizeRead(c.Request().Context(), res); err != nil {
		return err
	}
	if res.Deleted {
		setVersionHeaders(c, res)
		return errorf(http.StatusGone, "deleted", "version %s of %s/%s is a deletion", vid, t, id)
	}
	return s.respondResource(c, res, q)
}

// readShape is the subset a read asks for with _summary or _elements, as
// a search gives it (nil for the whole resource); _summary=count has no
// meaning on a read.
func readShape(c echo.Context, t string) (*search.Query, error) {
	params := url.Values{}
	for k, vs := range c.QueryParams() {
		if k == "_summary" || k == "_elements" {
			params[k] = vs
		}
	}
	if len(params) == 0 {
		return nil, nil
	}
	if params.Get("_summary") == "count" {
		return nil, errorf(http.StatusBadRequest, "invalid", "_summary=count has no meaning on a read")
	}
	return search.Parse(t, params)
}

func (s *Server) update(c echo.Context) error {
	t, id, err := s.typeAndID(c)
	if err != nil {
		return err
	}
	body, err := s.readBodyOf(c, t)
	if err != nil {
		return err
	}
	bodyID, _ := body["id"].(string)
	if bodyID == "" {
		return errorf(http.StatusBadRequest, "required", "an update must carry the resource id in the body (%s.id)", t)
	}
	if bodyID != id {
		return errorf(http.StatusBadRequest, "invalid", "id %q in the body does not match %q in the URL", bodyID, id)
	}
	ctx := c.Request().Context()
	if err := s.authorizeWrite(ctx, t, id, body); err != nil {
		return err
	}
	current, err := s.currentFor(ctx, t, id)
	if err != nil {
		return err
	}
	if err := s.validate(ctx, body, current); err != nil {
		return err
	}
	res, created, err := s.store.Update(ctx, id, body, fhirstore.WriteOptions{IfMatch: ifMatch(c)})
	if err != nil {
		return err
	}
	in := fhirstore.InteractionUpdate
	if created {
		in = fhirstore.InteractionCreate
	}
	if err := s.committed(ctx, res, in); err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return s.respondWrite(c, status, res)
}

func (s *Server) delete(c echo.Context) error {
	t, id, err := s.typeAndID(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if err := s.authorizeDelete(ctx, t, id); err != nil {
		return err
	}
	res, err := s.store.Delete(ctx, t, id, fhirstore.WriteOptions{IfMatch: ifMatch(c)})
	if err != nil {
		return err
	}
	if err := s.committed(ctx, res, fhirstore.InteractionDelete); err != nil {
		return err
	}
	setVersionHeaders(c, res)
	return writeJSON(c, http.StatusOK, outcome("information", "informational",
		"deleted "+t+"/"+id+" (version "+res.VersionID+")"))
}

// respondResource sends a stored version with its ETag and Last-Modified.
func (s *Server) respondResource(c echo.Context, res *fhirstore.Resource, q *search.Query) error {
	body := s.shown(res)
	if q != nil {
		var err error
		if body, err = shape(q, body); err != nil {
			return err
		}
	}
	setVersionHeaders(c, res)
	return c.Blob(http.StatusOK, fhirJSON, body)
}

// respondWrite answers a create or update honouring Prefer: return=….
func (s *Server) respondWrite(c echo.Context, status int, res *fhirstore.Resource) error {
	c.Response().Header().Set("Location", s.versionURL(res))
	setVersionHeaders(c, res)
	switch preferReturn(c) {
	case "minimal":
		return c.NoContent(status)
	case "OperationOutcome":
		verb := "updated"
		if status == http.StatusCreated {
			verb = "created"
		}
		return writeJSON(c, status, outcome("information", "informational",
			verb+" "+res.Type+"/"+res.ID+" (version "+res.VersionID+")"))
	}
	return c.Blob(status, fhirJSON, s.shown(res))
}

func preferReturn(c echo.Context) string { return preference(c.Request().Header, "return") }

func setVersionHeaders(c echo.Context, res *fhirstore.Resource) {
	h := c.Response().Header()
	h.Set("ETag", `W/"`+res.VersionID+`"`)
	h.Set("Last-Modified", res.LastUpdated.UTC().Format(http.TimeFormat))
}

func (s *Server) versionURL(res *fhirstore.Resource) string {
	return s.base + "/" + res.Type + "/" + res.ID + "/_history/" + res.VersionID
}
