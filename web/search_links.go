package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/fhirsub/fhirsub/conformance/definitions"
	"github.com/fhirsub/fhirsub/conformance/schema"
	"github.com/fhirsub/fhirsub/conformance/search"
	"github.com/fhirsub/fhirsub/conformance/smart"
	"github.com/fhirsub/fhirsub/fhirstore"
)

// Limits of the resources a search gathers besides its page.
const (
	// maxIncluded caps the _include/_revinclude resources of one page.
	maxIncluded = 1000
	// maxIncludeRounds caps the rounds of :iterate.
	maxIncludeRounds = 4
	// revIncludeChunk is how many references one _revinclude search asks for.
	revIncludeChunk = 100
	// maxRestrictedLinked caps what one chain or _has may find for a
	// restricted caller, whose search repeats the found ids as plain
	// parameter values.
	maxRestrictedLinked = 100
)

// includeVisible reports whether a resource gathered by a search (a chain
// target, an _include, a _revinclude) may be shown to the caller: the same
// decision the search results get.
func (s *Server) includeVisible(ctx context.Context, res *fhirstore.Resource) (bool, error) {
	acc := AccessFrom(ctx)
	if !acc.Allows(res.Type, smart.Search) {
		return false, nil
	}
	if !acc.Restricted(res.Type, smart.Search) {
		return true, nil
	}
	return s.versionVisible(ctx, acc, res, smart.Search)
}

// linkResolver resolves chained and _has parameters as the caller: every
// sub-search is the caller's search, every read is filtered like a search
// result.
type linkResolver struct{ s *Server }

// Read implements search.Resolver.
func (r linkResolver) Read(ctx context.Context, typ, id string) (map[string]any, error) {
	res, err := r.s.store.Read(ctx, typ, id)
	if errors.Is(err, fhirstore.ErrNotFound) || errors.Is(err, fhirstore.ErrGone) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if ok, err := r.s.includeVisible(ctx, res); err != nil || !ok {
		return nil, err
	}
	return fhirstore.Decode(res.Body)
}

// Search implements search.Resolver: every page, up to search.MaxLinked
// results (one more makes the resolution fail with a clear error).
func (r linkResolver) Search(ctx context.Context, sub *search.Query) ([]map[string]any, error) {
	params := sub.Values()
	var out []map[string]any
	for offset := 0; ; offset += fhirstore.MaxCount {
		params.Set("_count", strconv.Itoa(fhirstore.MaxCount))
		params.Set("_offset", strconv.Itoa(offset))
		q, err := search.Parse(sub.Type, params)
		if err != nil {
			return nil, err
		}
		page, err := r.s.searchVisible(ctx, q, params)
		if err != nil {
			return nil, err
		}
		for _, res := range page.Resources {
			body, err := fhirstore.Decode(res.Body)
			if err != nil {
				return nil, err
			}
			out = append(out, body)
		}
		if len(out) > search.MaxLinked || len(page.Resources) == 0 || offset+fhirstore.MaxCount >= page.Total {
			return out, nil
		}
	}
}

// searchResolved runs q (parsed from params) as the caller's search, its
// chained and _has parameters resolved first. A caller with unrestricted
// access searches with the resolved query itself; a restricted one
// searches per narrowing with its plain parameters (the reference or _id
// values the links found), which are capped.
func (s *Server) searchResolved(ctx context.Context, q *search.Query, params url.Values) (*fhirstore.Page, error) {
	return s.searchResolvedWithin(ctx, q, params, nil)
}

// searchResolvedWithin is searchResolved kept to what within admits (see
// searchWithin).
func (s *Server) searchResolvedWithin(ctx context.Context, q *search.Query, params url.Values, within []url.Values) (*fhirstore.Page, error) {
	if !q.HasLinks() {
		return s.searchWithin(ctx, q, params, within)
	}
	rq, err := q.Resolve(ctx, linkResolver{s})
	if err != nil {
		return nil, err
	}
	if rq.MatchesNothing() {
		return &fhirstore.Page{}, nil
	}
	if _, all := AccessFrom(ctx).Narrowings(q.Type, smart.Search); !all && rq.LinkedSize() > maxRestrictedLinked {
		return nil, errorf(http.StatusForbidden, "too-costly",
			"a chained or _has parameter finds more than %d resources to filter for this token: narrow it", maxRestrictedLinked)
	}
	return s.searchWithin(ctx, rq, rq.Values(), within)
}

// included gathers the _include and _revinclude resources of a page
// (:iterate ones also from what was included), each shown only if the
// caller may see it, none twice, none already on the page.
func (s *Server) included(ctx context.Context, q *search.Query, page []*fhirstore.Resource) ([]*fhirstore.Resource, error) {
	if len(q.Shape().Includes) == 0 {
		return nil, nil
	}
	seen := map[string]bool{}
	for _, r := range page {
		seen[r.Type+"/"+r.ID] = true
	}
	var out []*fhirstore.Resource
	add := func(r *fhirstore.Resource) (bool, error) {
		if seen[r.Type+"/"+r.ID] || len(out) >= maxIncluded {
			return false, nil
		}
		ok, err := s.includeVisible(ctx, r)
		if err != nil || !ok {
			return false, err
		}
		seen[r.Type+"/"+r.ID] = true
		out = append(out, r)
		return true, nil
	}
	// Each resource is decoded once, however many _include values read it.
	decoded := map[*fhirstore.Resource]map[string]any{}
	decode := func(r *fhirstore.Resource) (map[string]any, error) {
		if m, ok := decoded[r]; ok {
			return m, nil
		}
		m, err := fhirstore.Decode(r.Body)
		if err == nil {
			decoded[r] = m
		}
		return m, err
	}
	frontier := page
	for round := 0; round < maxIncludeRounds && len(frontier) > 0; round++ {
		var next []*fhirstore.Resource
		for _, in := range q.Shape().Includes {
			if round > 0 && !in.Iterate {
				continue
			}
			found, err := s.includeOne(ctx, in, frontier, decode)
			if err != nil {
				return nil, err
			}
			for _, r := range found {
				ok, err := add(r)
				if err != nil {
					return nil, err
				}
				if ok {
					next = append(next, r)
				}
			}
		}
		frontier = next
	}
	return out, nil
}

// includeOne applies one _include or _revinclude to the resources from.
func (s *Server) includeOne(ctx context.Context, in search.Include, from []*fhirstore.Resource,
	decode func(*fhirstore.Resource) (map[string]any, error)) ([]*fhirstore.Resource, error) {
	var out []*fhirstore.Resource
	if !in.Rev {
		for _, r := range from {
			if r.Type != in.Source {
				continue
			}
			body, err := decode(r)
			if err != nil {
				return nil, err
			}
			refs, err := in.References(body)
			if err != nil {
				return nil, err
			}
			for _, ref := range refs {
				typ, id, _ := strings.Cut(ref, "/")
				res, err := s.store.Read(ctx, typ, id)
				if errors.Is(err, fhirstore.ErrNotFound) || errors.Is(err, fhirstore.ErrGone) {
					continue
				}
				if err != nil {
					return nil, err
				}
				out = append(out, res)
			}
		}
		return out, nil
	}
	var targets []string
	for _, r := range from {
		if in.Target == "" || r.Type == in.Target {
			targets = append(targets, r.Type+"/"+r.ID)
		}
	}
	if !AccessFrom(ctx).Allows(in.Source, smart.Search) {
		return nil, nil // nothing of that type is visible
	}
	for len(targets) > 0 {
		n := min(len(targets), revIncludeChunk)
		params := url.Values{in.Param: {strings.Join(targets[:n], ",")}, "_count": {strconv.Itoa(maxIncluded)}}
		targets = targets[n:]
		q, err := search.Parse(in.Source, params)
		if err != nil {
			return nil, err
		}
		page, err := s.searchVisible(ctx, q, params)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Resources...)
		if len(out) >= maxIncluded {
			break
		}
	}
	return out, nil
}

// shape applies _elements, _summary=data, _summary=text and _summary=true
// to a resource body for a searchset, marking a changed body SUBSETTED as
// R4 asks. _summary=true keeps the top-level elements the R4 definitions
// mark isSummary; _summary=text keeps text, id, meta and the top-level
// mandatory elements.
func shape(q *search.Query, body []byte) ([]byte, error) {
	sh := q.Shape()
	if len(sh.Elements) == 0 && sh.Summary != "data" && sh.Summary != "true" && sh.Summary != "text" {
		return body, nil
	}
	m, err := fhirstore.Decode(body)
	if err != nil {
		return nil, err
	}
	switch sh.Summary {
	case "data":
		delete(m, "text")
	case "true":
		typ, _ := m["resourceType"].(string)
		for k := range m {
			if k != "resourceType" && !summaryElement(typ, strings.TrimPrefix(k, "_")) {
				delete(m, k)
			}
		}
	case "text":
		typ, _ := m["resourceType"].(string)
		keep, err := schema.Mandatory(typ)
		if err != nil {
			return nil, err
		}
		for k := range m {
			switch k {
			case "resourceType", "id", "meta", "text":
			default:
				if !keep[k] {
					delete(m, k)
				}
			}
		}
	}
	if len(sh.Elements) > 0 {
		keep := map[string]bool{"resourceType": true, "id": true, "meta": true}
		for _, e := range sh.Elements {
			keep[e] = true
		}
		typ, _ := m["resourceType"].(string)
		for k := range m {
			prop := strings.TrimPrefix(k, "_")
			if keep[prop] {
				continue
			}
			// a choice is named by its element too: multipleBirth keeps
			// multipleBirthBoolean
			if name, info, ok := definitions.ElementOfKey(typ, prop); ok && info.Choice && keep[name] {
				continue
			}
			delete(m, k)
		}
	}
	meta, _ := m["meta"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		m["meta"] = meta
	}
	tags, _ := meta["tag"].([]any)
	meta["tag"] = append(tags, map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"})
	return fhirstore.Encode(m)
}

// searchBundle runs a search of type t as the caller and renders the
// searchset: the page, its includes, _summary, _elements and _total.
func (s *Server) searchBundle(ctx context.Context, t string, params url.Values, path string, lenient bool) (*bundle, error) {
	return s.searchBundleWithin(ctx, t, params, path, lenient, nil)
}

// searchBundleWithin is searchBundle kept to what within admits (see
// searchWithin): a compartment search.
func (s *Server) searchBundleWithin(ctx context.Context, t string, params url.Values, path string, lenient bool, within []url.Values) (*bundle, error) {
	q, ignored, err := parseSearch(t, params, lenient)
	if err != nil {
		return nil, err
	}
	if q.Count == 0 && params.Get("_count") == "" {
		q.Count = defaultCount
	}
	if q.Count > maxCount {
		q.Count = maxCount
	}
	page, err := s.searchResolvedWithin(ctx, q, params, within)
	if err != nil {
		return nil, err
	}
	b := newBundle("searchset")
	if q.Shape().Total != "none" {
		b.Total = &page.Total
	}
	b.Link = s.pageLinks(path, params, q.Offset, q.Count, page.Total)
	if q.Shape().Summary == "count" || q.Count == 0 {
		// _summary=count, and _count=0 as R4 reads it: the total only.
		total := page.Total
		b.Total = &total
		return withIgnored(b, ignored)
	}
	incl, err := s.included(ctx, q, page.Resources)
	if err != nil {
		return nil, err
	}
	for i, r := range append(page.Resources, incl...) {
		mode := "match"
		if i >= len(page.Resources) {
			mode = "include"
		}
		e, err := s.searchEntry(q, r, mode)
		if err != nil {
			return nil, err
		}
		b.Entry = append(b.Entry, e)
	}
	if len(incl) >= maxIncluded {
		s.log.WarnContext(ctx, "search includes capped", "type", t, "cap", maxIncluded)
	}
	return withIgnored(b, ignored)
}

// summaryElement reports whether the top-level JSON property k of a
// resource of type typ is a summary element; a choice (valueQuantity) is
// judged by its element (value).
func summaryElement(typ, k string) bool {
	_, info, ok := definitions.ElementOfKey(typ, k)
	return ok && info.Summary
}

// searchEntry is a searchset entry of r, shaped as q asks (_summary,
// _elements), with its search mode (match or include).
func (s *Server) searchEntry(q *search.Query, r *fhirstore.Resource, mode string) (bundleEntry, error) {
	body, err := shape(q, s.shown(r))
	if err != nil {
		return bundleEntry{}, err
	}
	return bundleEntry{FullURL: s.resourceURL(r), Resource: body, Search: &entrySearch{Mode: mode}}, nil
}
