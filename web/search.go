package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fhirsub/fhirsub/conformance/search"
	"github.com/fhirsub/fhirsub/fhirstore"
)

const (
	defaultCount = 50
	maxCount     = 1000
)

// bundle is the FHIR Bundle resource as this server writes it.
type bundle struct {
	ResourceType string        `json:"resourceType"`
	ID           string        `json:"id,omitempty"`
	Meta         *bundleMeta   `json:"meta,omitempty"`
	Type         string        `json:"type"`
	Timestamp    string        `json:"timestamp,omitempty"`
	Total        *int          `json:"total,omitempty"`
	Link         []bundleLink  `json:"link,omitempty"`
	Entry        []bundleEntry `json:"entry,omitempty"`
}

type bundleMeta struct {
	LastUpdated string `json:"lastUpdated"`
}

type bundleLink struct {
	Relation string `json:"relation"`
	URL      string `json:"url"`
}

type bundleEntry struct {
	FullURL  string          `json:"fullUrl,omitempty"`
	Resource json.RawMessage `json:"resource,omitempty"`
	Search   *entrySearch    `json:"search,omitempty"`
	Request  *entryRequest   `json:"request,omitempty"`
	Response *entryResponse  `json:"response,omitempty"`
}

type entrySearch struct {
	Mode string `json:"mode"`
}

type entryRequest struct {
	Method string `json:"method"`
	URL    string `json:"url"`
}

type entryResponse struct {
	Status       string          `json:"status"`
	Location     string          `json:"location,omitempty"`
	Etag         string          `json:"etag,omitempty"`
	LastModified string          `json:"lastModified,omitempty"`
	Outcome      json.RawMessage `json:"outcome,omitempty"`
}

func instant(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func newBundle(typ string) *bundle {
	now := instant(time.Now())
	return &bundle{ResourceType: "Bundle", ID: newBundleID(), Meta: &bundleMeta{LastUpdated: now}, Type: typ, Timestamp: now}
}

func (s *Server) search(c echo.Context) error {
	t, err := s.resourceType(c)
	if err != nil {
		return err
	}
	params, err := searchParams(c)
	if err != nil {
		return err
	}
	b, err := s.searchBundle(c.Request().Context(), t, params, "/"+t, lenientSearch(c.Request().Header))
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, b)
}

// searchParams are a search's parameters: the query string plus, for
// POST _search, the form body (which must be a form).
func searchParams(c echo.Context) (url.Values, error) {
	if c.Request().Method == http.MethodPost {
		if err := formBodyOnly(c.Request()); err != nil {
			return nil, err
		}
	}
	params, err := c.FormParams()
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "invalid", "cannot parse search parameters: %v", err)
	}
	return params, nil
}

// pageLinks builds self/first/previous/next links that repeat the query
// with _count and _offset.
func (s *Server) pageLinks(path string, params url.Values, offset, count, total int) []bundleLink {
	link := func(rel string, off int) bundleLink {
		q := url.Values{}
		for k, vs := range params {
			if k == "_offset" || k == "_count" {
				continue
			}
			q[k] = vs
		}
		q.Set("_count", strconv.Itoa(count))
		if off > 0 {
			q.Set("_offset", strconv.Itoa(off))
		}
		return bundleLink{Relation: rel, URL: s.base + path + "?" + q.Encode()}
	}
	links := []bundleLink{link("self", offset)}
	if count == 0 {
		return links
	}
	if offset > 0 {
		links = append(links, link("first", 0), link("previous", max(0, offset-count)))
	}
	if offset+count < total {
		links = append(links, link("next", offset+count))
	}
	return links
}

func (s *Server) resourceURL(r *fhirstore.Resource) string {
	return s.base + "/" + r.Type + "/" + r.ID
}

func (s *Server) historySystem(c echo.Context) error {
	return s.history(c, "", "", "/_history")
}

func (s *Server) historyType(c echo.Context) error {
	t, err := s.resourceType(c)
	if err != nil {
		return err
	}
	return s.history(c, t, "", "/"+t+"/_history")
}

func (s *Server) historyInstance(c echo.Context) error {
	t, id, err := s.typeAndID(c)
	if err != nil {
		return err
	}
	return s.history(c, t, id, "/"+t+"/"+id+"/_history")
}

func (s *Server) history(c echo.Context, typ, id, path string) error {
	params := c.QueryParams()
	req := fhirstore.HistoryRequest{Type: typ, ID: id, Count: defaultCount}
	var at *period // _at
	totalOnly := false
	for k, vs := range params {
		v := vs[0]
		switch k {
		case "_count":
			n, err := nonNegative(k, v)
			if err != nil {
				return err
			}
			req.Count = min(n, maxCount)
			totalOnly = n == 0 // R4 reads _count=0 as the total only
		case "_offset":
			n, err := nonNegative(k, v)
			if err != nil {
				return err
			}
			req.Offset = n
		case "_since":
			t, err := parseInstant(v)
			if err != nil {
				return &search.Error{Param: k, Message: "must be an instant such as 2024-01-01T00:00:00Z"}
			}
			req.Since = t
		case "_at":
			if id == "" {
				return &search.Error{Param: k, Message: "supported on the history of one resource (Type/id/_history) only"}
			}
			from, to, err := search.Period(v)
			if err != nil {
				return &search.Error{Param: k, Message: "must be a date, dateTime or instant such as 2024-01-01 (" + err.Error() + ")"}
			}
			at = &period{from: from, to: to}
		case "_format", "_pretty":
		default:
			return &search.Error{Param: k, Message: "not supported on history"}
		}
	}
	if totalOnly {
		req.Count = 1 // the store's page size must be positive; none of it is shown
	}
	var page *fhirstore.Page
	var err error
	if at != nil {
		page, err = s.historyAt(c.Request().Context(), req, *at)
	} else {
		page, err = s.historyVisible(c.Request().Context(), req)
	}
	if err != nil {
		return err
	}
	if id != "" && page.Total == 0 {
		if err := s.historyExists(c.Request().Context(), req, !req.Since.IsZero() || at != nil); err != nil {
			return err
		}
	}
	b := newBundle("history")
	b.Total = &page.Total
	if totalOnly {
		b.Link = s.pageLinks(path, params, req.Offset, 0, page.Total)
		return writeJSON(c, http.StatusOK, b)
	}
	b.Link = s.pageLinks(path, params, req.Offset, req.Count, page.Total)
	for _, r := range page.Resources {
		b.Entry = append(b.Entry, s.historyEntry(r))
	}
	return writeJSON(c, http.StatusOK, b)
}

// period is a time range [from, to).
type period struct{ from, to time.Time }

// historyAt is the instance history of req kept to the versions that were
// current at some moment of at (_at, R4 http.html#history): a version is
// current from its lastUpdated until the next version's, or from then on
// when it is the last. A deletion counts as a version, current while the
// resource stays deleted. The versions of the one resource are read in
// full (through the same access decision as any history; at most
// maxFilterPages store pages of them, _since narrowing what is read) and
// paged here.
func (s *Server) historyAt(ctx context.Context, req fhirstore.HistoryRequest, at period) (*fhirstore.Page, error) {
	all := req
	all.Count = fhirstore.MaxCount
	var versions []*fhirstore.Resource
	for {
		all.Offset = len(versions)
		page, err := s.historyVisible(ctx, all)
		if err != nil {
			return nil, err
		}
		if page.Total > maxFilterPages*fhirstore.MaxCount {
			return nil, errorf(http.StatusForbidden, "too-costly",
				"_at would read %d versions, more than %d: add _since", page.Total, maxFilterPages*fhirstore.MaxCount)
		}
		versions = append(versions, page.Resources...)
		if len(page.Resources) == 0 || len(versions) >= page.Total {
			break
		}
	}
	var kept []*fhirstore.Resource
	for i, v := range versions { // newest first: versions[i-1] followed v
		current := v.LastUpdated.Before(at.to) && (i == 0 || versions[i-1].LastUpdated.After(at.from))
		if current {
			kept = append(kept, v)
		}
	}
	lo, hi := fhirstore.PageBounds(len(kept), req.Count, req.Offset)
	return &fhirstore.Page{Total: len(kept), Resources: kept[lo:hi]}, nil
}

// historyExists tells why an instance history found no version: nil
// when the resource has versions the caller may see but none passed the
// request's filters (_since, _at: an empty history, not a missing
// resource), else the error a read of the resource would give.
func (s *Server) historyExists(ctx context.Context, req fhirstore.HistoryRequest, filtered bool) error {
	if !filtered {
		return fhirstore.ErrNotFound
	}
	all := fhirstore.HistoryRequest{Type: req.Type, ID: req.ID, Count: 1}
	page, err := s.historyVisible(ctx, all)
	if err != nil {
		return err
	}
	if page.Total == 0 {
		return fhirstore.ErrNotFound
	}
	return nil
}

// nonNegative reads the value of a paging parameter (_count, _offset).
func nonNegative(k, v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, &search.Error{Param: k, Message: "must be a non-negative integer"}
	}
	return n, nil
}

// historyEntry describes the write that made a version. A first version
// is told as a POST (the store does not keep whether a client chose the id
// with a PUT); a later version that created the resource again after its
// deletion can only have come from a PUT, and answered 201.
func (s *Server) historyEntry(r *fhirstore.Resource) bundleEntry {
	e := bundleEntry{FullURL: s.resourceURL(r)}
	resp := &entryResponse{Etag: `W/"` + r.VersionID + `"`, LastModified: instant(r.LastUpdated)}
	switch {
	case r.Deleted:
		e.Request = &entryRequest{Method: http.MethodDelete, URL: r.Type + "/" + r.ID}
		resp.Status = "204 No Content"
	case r.VersionID == "1":
		e.Resource = s.shown(r)
		e.Request = &entryRequest{Method: http.MethodPost, URL: r.Type}
		resp.Status = "201 Created"
	default:
		e.Resource = s.shown(r)
		e.Request = &entryRequest{Method: http.MethodPut, URL: r.Type + "/" + r.ID}
		resp.Status = "200 OK"
		if r.Interaction == fhirstore.InteractionCreate {
			resp.Status = "201 Created"
		}
	}
	e.Response = resp
	return e
}

// parseInstant accepts a FHIR instant or dateTime with at least a day.
func parseInstant(v string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Parse(time.RFC3339, v)
}
