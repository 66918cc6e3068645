package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/fhirsub/fhirsub/conformance/search"
	"github.com/fhirsub/fhirsub/conformance/smart"
	"github.com/fhirsub/fhirsub/fhirstore"
)

// maxFilterPages bounds how many store pages (of fhirstore.MaxCount) a
// patient-scoped or granular search or history may scan per narrowing.
const maxFilterPages = 20

// The handlers call the functions of this file on every interaction; the
// middleware has already checked the type-level permission of the route,
// but each function checks it again so that batch and transaction entries
// (which share the POST / route) are covered too.

func forbidden(format string, args ...any) *Error {
	return errorf(http.StatusForbidden, "forbidden", format, args...)
}

// authorizeRead checks that a version just loaded by read, vread or a
// batch GET may be shown to the caller.
func (s *Server) authorizeRead(ctx context.Context, res *fhirstore.Resource) error {
	acc := AccessFrom(ctx)
	if !acc.Allows(res.Type, smart.Read) {
		return forbidden("the token's scopes do not allow read on %s", res.Type)
	}
	if !acc.Restricted(res.Type, smart.Read) {
		return nil
	}
	ok, err := s.versionVisible(ctx, acc, res, smart.Read)
	if err != nil {
		return err
	}
	if !ok {
		return hidden()
	}
	return nil
}

// goneOrHidden turns the ErrGone of reading typ/id into hidden() when the
// deleted resource was outside the caller's reach, so that 410 tells only
// those who could read it that it existed. Other errors pass unchanged.
func (s *Server) goneOrHidden(ctx context.Context, typ, id string, err error) error {
	if !errors.Is(err, fhirstore.ErrGone) {
		return err
	}
	acc := AccessFrom(ctx)
	if !acc.Restricted(typ, smart.Read) {
		return err
	}
	page, herr := s.store.History(ctx, fhirstore.HistoryRequest{Type: typ, ID: id, Count: 1})
	if herr != nil || len(page.Resources) == 0 {
		return hidden()
	}
	if ok, verr := s.versionVisible(ctx, acc, page.Resources[0], smart.Read); verr != nil || !ok {
		return hidden()
	}
	return err
}

// hidden is the answer for a resource outside the caller's reach: the
// same 404 as a missing one, so that no status or message tells a
// caller whether another patient's resource exists.
func hidden() error { return fhirstore.ErrNotFound }

// versionVisible decides one version; a deletion is judged by the version
// it deleted.
func (s *Server) versionVisible(ctx context.Context, acc *smart.Access, res *fhirstore.Resource, p smart.Permission) (bool, error) {
	if res.Deleted {
		n, err := strconv.Atoi(res.VersionID)
		if err != nil || n <= 1 {
			return false, nil
		}
		prev, err := s.store.VRead(ctx, res.Type, res.ID, strconv.Itoa(n-1))
		if err != nil || prev.Deleted {
			return false, nil
		}
		res = prev
	}
	body, err := fhirstore.Decode(res.Body)
	if err != nil {
		return false, err
	}
	return acc.Permits(body, p), nil
}

// authorizeWrite checks a create (id == ""), an update (id and body) or a
// delete (id, body nil) of the type against the scopes and, for a
// patient in context, the compartment: the new body and the version it
// replaces or deletes must both be in it.
func (s *Server) authorizeWrite(ctx context.Context, typ, id string, body map[string]any) error {
	acc := AccessFrom(ctx)
	if id == "" { // create: the store assigns the id, so judge the body without one
		if !acc.Allows(typ, smart.Create) {
			return forbidden("the token's scopes do not allow create on %s", typ)
		}
		if !acc.Restricted(typ, smart.Create) {
			return nil
		}
		probe := make(map[string]any, len(body))
		for k, v := range body {
			if k != "id" {
				probe[k] = v
			}
		}
		if !acc.Permits(probe, smart.Create) {
			return forbidden("creating this %s is outside what the token may write", typ)
		}
		return nil
	}
	need := smart.Delete
	if body != nil {
		need = smart.Update
	}
	if !acc.Allows(typ, need) && !(need == smart.Update && acc.Allows(typ, smart.Create)) {
		return forbidden("the token's scopes do not allow %s on %s", verb(need), typ)
	}
	cur, err := s.store.Read(ctx, typ, id)
	switch {
	case errors.Is(err, fhirstore.ErrNotFound) || errors.Is(err, fhirstore.ErrGone):
		cur = nil
	case err != nil:
		return err
	}
	if cur == nil {
		if body == nil {
			return nil // deleting nothing: the handler answers
		}
		need = smart.Create // update-as-create
		if !acc.Allows(typ, need) {
			return forbidden("%s/%s does not exist and the token's scopes do not allow create on %s", typ, id, typ)
		}
	} else {
		if !acc.Allows(typ, need) {
			return forbidden("the token's scopes do not allow %s on %s", verb(need), typ)
		}
		if acc.Restricted(typ, need) {
			ok, err := s.versionVisible(ctx, acc, cur, need)
			if err != nil {
				return err
			}
			if !ok {
				if body == nil {
					return hidden() // a delete answers like one of a missing resource
				}
				return forbidden("%s/%s is outside what the token may write", typ, id)
			}
		}
	}
	if body != nil && acc.Restricted(typ, need) && !acc.Permits(body, need) {
		return forbidden("the new version of %s/%s is outside what the token may write", typ, id)
	}
	return nil
}

// searchVisible runs a search and keeps what the caller may see. Without
// restrictions it is Store.Search. Otherwise it runs one search per
// narrowing of smart.Access.Narrowings (the patient's compartment
// parameters, granular scope filters) ANDed with the client's parameters,
// keeps the resources Permits accepts, and sorts and pages them as the
// store would; totals count visible resources only.
func (s *Server) searchVisible(ctx context.Context, q *search.Query, params url.Values) (*fhirstore.Page, error) {
	return s.searchWithin(ctx, q, params, nil)
}

// searchWithin is searchVisible kept to the resources that also match one
// of within's parameter sets (the parameters that put a resource in a
// compartment: subject=Patient/1, performer=Patient/1); nil within keeps
// everything, an empty one nothing. Each set is ANDed with each of the
// access's narrowings.
func (s *Server) searchWithin(ctx context.Context, q *search.Query, params url.Values, within []url.Values) (*fhirstore.Page, error) {
	acc := AccessFrom(ctx)
	if !acc.Allows(q.Type, smart.Search) {
		return nil, forbidden("the token's scopes do not allow search on %s", q.Type)
	}
	alts, all := acc.Narrowings(q.Type, smart.Search)
	if all && within == nil {
		return s.store.Search(ctx, q)
	}
	check := !all // each result must pass the access decision
	if all {
		alts = []url.Values{nil}
	}
	if within != nil {
		alts = smart.AndEach(alts, within)
	}
	seen := map[string]bool{}
	var visible []*fhirstore.Resource
	for _, alt := range alts {
		p := url.Values{}
		for k, vs := range params {
			switch k {
			case "_count", "_offset", "_sort", "_format", "_pretty":
				continue
			}
			p[k] = append([]string(nil), vs...)
		}
		for k, vs := range alt {
			p[k] = append(p[k], vs...)
		}
		p.Set("_count", strconv.Itoa(fhirstore.MaxCount))
		for page := 0; ; page++ {
			if page == maxFilterPages {
				return nil, errorf(http.StatusForbidden, "too-costly",
					"more than %d matches to filter for this token: narrow the search", maxFilterPages*fhirstore.MaxCount)
			}
			p.Set("_offset", strconv.Itoa(page*fhirstore.MaxCount))
			sq, err := search.Parse(q.Type, p)
			if err != nil {
				s.log.WarnContext(ctx, "access narrowing does not parse; skipped", "type", q.Type, "err", err)
				break
			}
			res, err := s.store.Search(ctx, sq)
			if err != nil {
				return nil, err
			}
			for _, r := range res.Resources {
				if seen[r.ID] {
					continue
				}
				seen[r.ID] = true
				ok := true
				if check {
					var err error
					if ok, err = s.versionVisible(ctx, acc, r, smart.Search); err != nil {
						return nil, err
					}
				}
				if ok {
					visible = append(visible, r)
				}
			}
			if len(res.Resources) == 0 || (page+1)*fhirstore.MaxCount >= res.Total {
				break
			}
		}
	}
	return fhirstore.SearchPage(q, visible)
}

// historyVisible runs a history request and keeps the versions the caller
// may see (a deletion counts as its resource's last version). Instance
// history needs Read, type and system history need Search. Restricted
// callers scan at most maxFilterPages store pages.
func (s *Server) historyVisible(ctx context.Context, req fhirstore.HistoryRequest) (*fhirstore.Page, error) {
	acc := AccessFrom(ctx)
	p, typ := smart.Search, req.Type
	if req.ID != "" {
		p = smart.Read
	}
	if typ == "" {
		typ = "*"
		if !acc.AllowsAny(p) {
			return nil, forbidden("the token's scopes allow no history")
		}
	} else if !acc.Allows(typ, p) {
		return nil, forbidden("the token's scopes do not allow %s on %s", verb(p), typ)
	}
	if !acc.Restricted(typ, p) {
		return s.store.History(ctx, req)
	}
	sub := req
	sub.Count = fhirstore.MaxCount
	var kept []*fhirstore.Resource
	scanned := 0
	for page := 0; ; page++ {
		if page == maxFilterPages {
			return nil, errorf(http.StatusForbidden, "too-costly",
				"more than %d versions to filter for this token: use _since or instance history", maxFilterPages*fhirstore.MaxCount)
		}
		sub.Offset = page * fhirstore.MaxCount
		res, err := s.store.History(ctx, sub)
		if err != nil {
			return nil, err
		}
		for _, r := range res.Resources {
			scanned++
			ok, err := s.versionVisible(ctx, acc, r, p)
			if err != nil {
				return nil, err
			}
			if ok {
				kept = append(kept, r)
			}
		}
		if len(res.Resources) == 0 || sub.Offset+fhirstore.MaxCount >= res.Total {
			break
		}
	}
	if req.ID != "" && scanned > 0 && len(kept) == 0 {
		return nil, hidden()
	}
	lo, hi := fhirstore.PageBounds(len(kept), req.Count, req.Offset)
	return &fhirstore.Page{Total: len(kept), Resources: kept[lo:hi]}, nil
}

// authorizeDelete checks a delete like authorizeWrite, then asks the
// type's interceptor, when it guards deletes (a Subscription's owner, a
// SubscriptionTopic in use), whether the delete may go ahead. The access
// check comes first so that a refusal never tells a caller about a
// resource outside its reach.
func (s *Server) authorizeDelete(ctx context.Context, typ, id string) error {
	if err := s.authorizeWrite(ctx, typ, id, nil); err != nil {
		return err
	}
	if dv, ok := s.cfg.Interceptors[typ].(deleteValidator); ok {
		return dv.ValidateDelete(ctx, id)
	}
	return nil
}

// authorizeEntry checks one write entry (POST, PUT, DELETE) of a batch or
// transaction; the message names the entry.
func (s *Server) authorizeEntry(ctx context.Context, i int, e entryIn) error {
	var err error
	switch e.Method {
	case http.MethodPost:
		err = s.authorizeWrite(ctx, e.Type, "", e.Resource)
	case http.MethodPut:
		err = s.authorizeWrite(ctx, e.Type, e.ID, e.Resource)
	case http.MethodDelete:
		err = s.authorizeDelete(ctx, e.Type, e.ID)
	default:
		return nil
	}
	var we *Error
	if errors.As(err, &we) {
		we.Message = "Bundle.entry[" + strconv.Itoa(i) + "]: " + we.Message
		we.Expression = []string{"Bundle.entry[" + strconv.Itoa(i) + "]"}
	}
	return err
}
