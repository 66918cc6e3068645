package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/fhirsub/fhirsub/conformance/schema"
	"github.com/fhirsub/fhirsub/fhirstore"
)

func newBundleID() string { return uuid.NewString() }

// entryIn is one entry of a batch or transaction request Bundle.
type entryIn struct {
	FullURL  string
	Resource map[string]any
	Method   string
	Type, ID string
	Query    url.Values // for GET searches
	IfMatch  string
	// IfNoneExist is request.ifNoneExist of a POST (conditional create);
	// Existing is the resource that answers it in a transaction (no write).
	IfNoneExist string
	Existing    *fhirstore.Resource
	// Patch is the patch of a PATCH entry (whose Resource is then nil).
	Patch patcher
	// NoMatch marks a conditional DELETE of a transaction that nothing
	// answered: it writes nothing.
	NoMatch bool
	// Routed is the path and query of a GET or HEAD entry that is neither
	// a read nor a search of one type (a vread, a history, an operation,
	// the search of all types, …): routedEntry answers it.
	Routed string
}

// reads reports whether the entry is a GET or HEAD, which writes nothing.
func (e entryIn) reads() bool { return e.Method == http.MethodGet || e.Method == http.MethodHead }

// bundle handles POST / with a batch or transaction Bundle.
func (s *Server) bundle(c echo.Context) error {
	body, err := s.readJSON(c)
	if err != nil {
		return err
	}
	if body["resourceType"] != "Bundle" {
		return errorf(http.StatusBadRequest, "invalid", "POST to the base URL takes a Bundle of type batch or transaction, got resourceType %v", body["resourceType"])
	}
	typ, _ := body["type"].(string)
	if typ != "batch" && typ != "transaction" {
		return errorf(http.StatusBadRequest, "invalid", "Bundle.type must be batch or transaction, got %q", typ)
	}
	if err := checkEnvelope(body); err != nil {
		return err
	}
	raw, _ := body["entry"].([]any)
	if err := uniqueFullURLs(raw); err != nil {
		return err
	}
	entries := make([]entryIn, len(raw))
	var parseErrs []error
	for i, r := range raw {
		e, err := s.parseEntry(c.Request().Context(), i, r)
		if err != nil && typ == "transaction" {
			return err
		}
		entries[i] = e
		parseErrs = append(parseErrs, err)
	}
	if typ == "transaction" {
		return s.transaction(c, entries)
	}
	return s.batch(c, entries, parseErrs)
}

// checkEnvelope checks the Bundle's own elements against the R4 schema
// (an element the Bundle does not have, a bad timestamp), and that entry,
// when present, is a list with something in it. The entries are checked
// one by one (entryShape), so that a batch can answer a bad one alone.
func checkEnvelope(body map[string]any) error {
	if err := checkSchema(withoutKey(body, "entry")); err != nil {
		return err
	}
	raw, present := body["entry"]
	if !present {
		return nil
	}
	switch list, ok := raw.([]any); {
	case !ok:
		return errorf(http.StatusBadRequest, "structure", "Bundle.entry must be a list of entries")
	case len(list) == 0:
		return errorf(http.StatusBadRequest, "structure", "Bundle.entry is an empty list: FHIR JSON leaves an empty list out")
	}
	return nil
}

// entryShape checks entry i's own elements (fullUrl, request, …; its
// resource is checked as its own type) against the R4 schema.
func entryShape(i int, m map[string]any) error {
	e := withoutKey(m, "resource")
	err := schema.Validate(map[string]any{"resourceType": "Bundle", "type": "batch", "entry": []any{e}})
	var ve *schema.Error
	if !errors.As(err, &ve) {
		return checkSchemaErr(err)
	}
	at := fmt.Sprintf("Bundle.entry[%d]", i)
	issues := make([]schema.Issue, len(ve.Issues))
	for k, is := range ve.Issues {
		is.Path = strings.Replace(is.Path, "Bundle.entry[0]", at, 1)
		issues[k] = is
	}
	return checkSchemaErr(&schema.Error{Issues: issues})
}

// withoutKey is a shallow copy of m without key.
func withoutKey(m map[string]any, key string) map[string]any {
	out := maps.Clone(m)
	delete(out, key)
	return out
}

// uniqueFullURLs checks the Bundle invariant bdl-7: entries that share a
// fullUrl must have resources of different meta.versionId. In a
// transaction a repeated fullUrl would leave the references to it naming
// one of the entries at random.
func uniqueFullURLs(raw []any) error {
	type seen struct {
		url, version string
	}
	first := map[seen]int{}
	for i, r := range raw {
		m, _ := r.(map[string]any)
		u, _ := m["fullUrl"].(string)
		if u == "" {
			continue
		}
		res, _ := m["resource"].(map[string]any)
		meta, _ := res["meta"].(map[string]any)
		v, _ := meta["versionId"].(string)
		k := seen{u, v}
		if j, dup := first[k]; dup {
			e := errorf(http.StatusBadRequest, "invalid",
				"Bundle.entry[%d].fullUrl %q is that of entry[%d] too: a fullUrl must be unique in a Bundle unless the resources' meta.versionId differ (bdl-7)", i, u, j)
			e.Expression = []string{fmt.Sprintf("Bundle.entry[%d].fullUrl", i)}
			return e
		}
		first[k] = i
	}
	return nil
}

// writtenResources is the Type/id of each resource a transaction deletes,
// creates or updates (conditional entries once resolved), with its entry.
// It refuses a transaction that writes one resource twice (FHIR: when
// those identities overlap, the transaction SHALL fail): the order the
// entries would apply in is not the client's to choose.
func writtenResources(entries []entryIn) (map[string]int, error) {
	written := map[string]int{}
	for i, e := range entries {
		if e.ID == "" || e.Existing != nil || e.NoMatch || e.reads() {
			continue
		}
		k := e.Type + "/" + e.ID
		if j, dup := written[k]; dup {
			return nil, bundleEntryError(http.StatusBadRequest, "invalid", i,
				"%s %s is written by entry[%d] too: a transaction may delete, create or update a resource once", e.Method, k, j)
		}
		written[k] = i
	}
	return written, nil
}

func (s *Server) parseEntry(ctx context.Context, i int, raw any) (entryIn, error) {
	bad := func(format string, args ...any) (entryIn, error) {
		return entryIn{}, bundleEntryError(http.StatusBadRequest, "invalid", i, format, args...)
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return bad("entry must be an object")
	}
	var e entryIn
	e.FullURL, _ = m["fullUrl"].(string)
	req, _ := m["request"].(map[string]any)
	if req == nil {
		return bad("request is required")
	}
	if err := entryShape(i, m); err != nil {
		return entryIn{}, err
	}
	e.Method, _ = req["method"].(string)
	rawURL, _ := req["url"].(string)
	if v, ok := req["ifMatch"]; ok {
		if e.IfMatch, _ = v.(string); !validIfMatch(e.IfMatch) {
			return bad("request.ifMatch %q is not one version ETag (W/\"3\", \"3\" or 3)", e.IfMatch)
		}
	}
	e.IfMatch = etagVersion(e.IfMatch)
	if v, ok := req["ifNoneExist"]; ok {
		if e.IfNoneExist, _ = v.(string); e.IfNoneExist == "" {
			return bad("request.ifNoneExist must be a non-empty search")
		}
	}
	u, err := url.Parse(strings.TrimPrefix(rawURL, "/"))
	if err != nil || rawURL == "" {
		return bad("request.url %q is not a relative URL", rawURL)
	}
	if e.reads() && !s.plainPath(u.Path) {
		p := strings.Trim(u.Path, "/")
		if p == "" && u.RawQuery == "" {
			return bad("request.url %q names no interaction", rawURL)
		}
		e.Routed = "/" + p
		if u.RawQuery != "" {
			e.Routed += "?" + u.RawQuery
		}
		return e, nil
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	e.Type = parts[0]
	if !s.knownType(e.Type) {
		return bad("unknown resource type %q in request.url", e.Type)
	}
	if len(parts) > 1 {
		e.ID = parts[1]
		if len(parts) > 2 || !idPattern.MatchString(e.ID) {
			return bad("request.url %q must be Type or Type/id", rawURL)
		}
	}
	e.Query = u.Query()
	if res, ok := m["resource"].(map[string]any); ok {
		e.Resource = res
	}
	switch e.Method {
	case http.MethodPost:
		if e.ID != "" || e.Resource == nil {
			return bad("POST needs request.url = Type and a resource")
		}
	case http.MethodPut:
		if e.Resource == nil || (e.ID == "") == (len(e.Query) == 0) {
			return bad("PUT needs request.url = Type/id or Type?search (conditional update) and a resource")
		}
	case http.MethodDelete:
		if (e.ID == "") == (len(e.Query) == 0) {
			return bad("DELETE needs request.url = Type/id or Type?search (conditional delete)")
		}
	case http.MethodPatch:
		if e.Resource == nil || (e.ID == "") == (len(e.Query) == 0) {
			return bad("PATCH needs request.url = Type/id or Type?search (conditional patch) and a resource (Binary JSON Patch or Parameters FHIRPath Patch)")
		}
		return e, parsePatchEntry(i, &e)
	case http.MethodGet, http.MethodHead:
	default:
		return bad("request.method %q is not supported (GET, HEAD, POST, PUT, PATCH, DELETE)", e.Method)
	}
	if e.Resource != nil {
		if rt, ok := e.Resource["resourceType"].(string); ok && rt != e.Type {
			return bad("resourceType %q does not match request.url %q", rt, rawURL)
		}
		if e.Method == http.MethodPut && e.ID != "" && e.Resource["id"] != e.ID {
			return bad("resource id %v does not match request.url %q", e.Resource["id"], rawURL)
		}
		current, err := s.currentFor(ctx, e.Type, e.ID)
		if err != nil {
			return entryIn{}, err
		}
		if err := s.validate(ctx, e.Resource, current); err != nil {
			//lint:ignore ST1005 the message starts with a FHIRPath location, whose type is capitalised
			return entryIn{}, fmt.Errorf("Bundle.entry[%d].resource: %w", i, err)
		}
	}
	return e, nil
}

// transaction applies all write entries atomically, resolving references
// to the fullUrls of created entries, then answers the GET entries.
func (s *Server) transaction(c echo.Context, entries []entryIn) error {
	ids := map[string]string{} // fullUrl -> Type/id
	var ops []fhirstore.Op
	var opIndex []int
	for i := range entries {
		e := &entries[i]
		switch e.Method {
		case http.MethodPost:
			e.ID = fhirstore.NewID()
			if e.FullURL != "" {
				ids[e.FullURL] = e.Type + "/" + e.ID
			}
		case http.MethodPut, http.MethodPatch:
			if e.FullURL != "" {
				ids[e.FullURL] = e.Type + "/" + e.ID
			}
		}
	}
	release, err := s.settleConditionals(c.Request().Context(), entries, ids)
	if err != nil {
		return err
	}
	links := maps.Clone(ids) // the fullUrls alone: searches name resources in references only
	committed := false
	defer func() {
		if !committed {
			release()
		}
	}()
	written, err := writtenResources(entries)
	if err != nil {
		return err
	}
	if err := s.resolveSearchReferences(c.Request().Context(), entries, ids, written); err != nil {
		return err
	}
	for i, e := range entries {
		if e.Existing != nil || e.NoMatch {
			continue
		}
		if e.Resource != nil {
			rewriteReferences(e.Resource, ids)
			rewriteLinks(e.Resource, links)
		}
		if err := s.authorizeEntry(c.Request().Context(), i, e); err != nil {
			return err
		}
		var m fhirstore.Method
		switch e.Method {
		case http.MethodPost:
			m = fhirstore.MethodCreate
		case http.MethodPut:
			m = fhirstore.MethodUpdate
		case http.MethodDelete:
			m = fhirstore.MethodDelete
		default:
			continue
		}
		ops = append(ops, fhirstore.Op{Method: m, Type: e.Type, ID: e.ID, Body: e.Resource, IfMatch: e.IfMatch})
		opIndex = append(opIndex, i)
	}
	results, err := s.store.Transaction(c.Request().Context(), ops)
	if err != nil {
		var oe *fhirstore.OpError
		if errors.As(err, &oe) && oe.Index >= 0 && oe.Index < len(opIndex) {
			return &fhirstore.OpError{Index: opIndex[oe.Index], Err: oe.Err}
		}
		return err
	}
	committed = true
	out := newBundle("transaction-response")
	out.Entry = make([]bundleEntry, len(entries))
	s.settledEntries(c, entries, out.Entry)
	for k, r := range results {
		if err := s.committed(c.Request().Context(), r.Resource, interactionOf(ops[k].Method, r.Created)); err != nil {
			return err
		}
		out.Entry[opIndex[k]] = s.writeEntry(c, entries[opIndex[k]].Method, r)
	}
	for i, e := range entries {
		if e.reads() {
			out.Entry[i] = s.getEntry(c, e)
		}
	}
	return writeJSON(c, http.StatusOK, out)
}

// batch runs every entry on its own; a failure is reported in its entry.
func (s *Server) batch(c echo.Context, entries []entryIn, parseErrs []error) error {
	ctx := c.Request().Context()
	out := newBundle("batch-response")
	placeholders := placeholderURLs(entries)
	for i, e := range entries {
		if parseErrs[i] != nil {
			out.Entry = append(out.Entry, errorEntry(parseErrs[i]))
			continue
		}
		if err := batchInterdependent(e, i, placeholders); err != nil {
			out.Entry = append(out.Entry, errorEntry(err))
			continue
		}
		var (
			res     *fhirstore.Resource
			created bool
			err     error
		)
		if e.reads() {
			out.Entry = append(out.Entry, s.getEntry(c, e))
			continue
		}
		if e.Method == http.MethodPatch || e.ID == "" && (e.Method == http.MethodPut || e.Method == http.MethodDelete) {
			out.Entry = append(out.Entry, s.conditionalBatchEntry(c, e))
			continue
		}
		if err := s.authorizeEntry(ctx, i, e); err != nil {
			out.Entry = append(out.Entry, errorEntry(err))
			continue
		}
		switch e.Method {
		case http.MethodPost:
			res, created, err = s.createEntry(ctx, e)
		case http.MethodPut:
			res, created, err = s.store.Update(ctx, e.ID, e.Resource, fhirstore.WriteOptions{IfMatch: e.IfMatch})
		case http.MethodDelete:
			res, err = s.store.Delete(ctx, e.Type, e.ID, fhirstore.WriteOptions{IfMatch: e.IfMatch})
		}
		if err == nil && (created || e.Method != http.MethodPost) {
			err = s.committed(ctx, res, interactionOf(methodOf(e.Method), created))
		}
		if err != nil {
			out.Entry = append(out.Entry, errorEntry(err))
			continue
		}
		m := e.Method
		if m == http.MethodPut && created {
			m = http.MethodPost
		} else if m == http.MethodPost && !created {
			m = http.MethodPut // a conditional create that found its resource: 200
		}
		out.Entry = append(out.Entry, s.writeEntry(c, m, fhirstore.OpResult{Resource: res, Created: created}))
	}
	return writeJSON(c, http.StatusOK, out)
}

// interactionOf names the change a transaction entry made.
func interactionOf(m fhirstore.Method, created bool) fhirstore.Interaction {
	switch {
	case m == fhirstore.MethodDelete:
		return fhirstore.InteractionDelete
	case m == fhirstore.MethodCreate || created:
		return fhirstore.InteractionCreate
	}
	return fhirstore.InteractionUpdate
}

func methodOf(httpMethod string) fhirstore.Method {
	switch httpMethod {
	case http.MethodPost:
		return fhirstore.MethodCreate
	case http.MethodDelete:
		return fhirstore.MethodDelete
	}
	return fhirstore.MethodUpdate
}

func (s *Server) writeEntry(c echo.Context, method string, r fhirstore.OpResult) bundleEntry {
	res := r.Resource
	resp := &entryResponse{Etag: `W/"` + res.VersionID + `"`, LastModified: instant(res.LastUpdated)}
	e := bundleEntry{FullURL: s.resourceURL(res), Response: resp}
	switch {
	case method == http.MethodDelete:
		resp.Status = "200 OK"
		return e
	case method == http.MethodPost || r.Created:
		resp.Status = "201 Created"
	default:
		resp.Status = "200 OK"
	}
	resp.Location = s.versionURL(res)
	if preferReturn(c) != "minimal" {
		e.Resource = s.shown(res)
	}
	return e
}

// getEntry answers a GET or HEAD entry (HEAD: without the resource).
func (s *Server) getEntry(c echo.Context, e entryIn) bundleEntry {
	var out bundleEntry
	if e.Routed != "" {
		out = s.routedEntry(c, e.Routed)
	} else {
		out = s.readEntry(c, e)
	}
	if e.Method == http.MethodHead {
		out.Resource = nil
	}
	return out
}

// readEntry answers a GET entry that reads Type/id or searches Type.
func (s *Server) readEntry(c echo.Context, e entryIn) bundleEntry {
	ctx := c.Request().Context()
	if e.ID != "" {
		res, err := s.store.Read(ctx, e.Type, e.ID)
		if err == nil {
			err = s.authorizeRead(ctx, res)
		} else {
			err = s.goneOrHidden(ctx, e.Type, e.ID, err)
		}
		if err != nil {
			return errorEntry(err)
		}
		return bundleEntry{FullURL: s.resourceURL(res), Resource: s.shown(res), Response: &entryResponse{
			Status: "200 OK", Etag: `W/"` + res.VersionID + `"`, LastModified: instant(res.LastUpdated)}}
	}
	b, err := s.searchBundle(ctx, e.Type, e.Query, "/"+e.Type, false)
	if err != nil {
		return errorEntry(err)
	}
	raw, _ := json.Marshal(b)
	return bundleEntry{Resource: raw, Response: &entryResponse{Status: "200 OK"}}
}

func errorEntry(err error) bundleEntry {
	status, oo := classify(err)
	raw, _ := json.Marshal(oo)
	return bundleEntry{Response: &entryResponse{Status: strconv.Itoa(status) + " " + http.StatusText(status), Outcome: raw}}
}
