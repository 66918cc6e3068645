package fhirstore

import (
	"fmt"
	"sort"

	"github.com/fhirsub/fhirsub/conformance/search"
)

// Page sizes shared by every backend.
const (
	// DefaultCount is the page size when a search or history request gives none.
	DefaultCount = 50
	// MaxCount caps the page size of a search or history request.
	MaxCount = 1000
)

// PageSize returns the page size to use for a requested count: DefaultCount
// when count <= 0, MaxCount when count is larger than MaxCount.
func PageSize(count int) int {
	switch {
	case count <= 0:
		return DefaultCount
	case count > MaxCount:
		return MaxCount
	default:
		return count
	}
}

// PageBounds returns the slice bounds [lo, hi) of the page of size
// PageSize(count) starting at offset within total results.
func PageBounds(total, count, offset int) (lo, hi int) {
	lo = max(offset, 0)
	lo = min(lo, total)
	hi = min(lo+PageSize(count), total)
	return lo, hi
}

// SearchPage is the in-memory half of Store.Search shared by the backends.
// Given the candidate versions a backend's indexes selected (current,
// non-deleted resources of q.Type, in any order, each at most once), it
// decodes each body, keeps those q.Match accepts, sorts them by q.Less and
// then by id, and returns the page selected by q.Count (see PageSize) and
// q.Offset with Total set to the number of matches. Candidates whose Type
// is not q.Type or that are tombstones are skipped.
func SearchPage(q *search.Query, candidates []*Resource) (*Page, error) {
	type hit struct {
		res  *Resource
		body map[string]any
	}
	hits := make([]hit, 0, len(candidates))
	for _, r := range candidates {
		if r == nil || r.Deleted || r.Type != q.Type {
			continue
		}
		body, err := Decode(r.Body)
		if err != nil {
			return nil, fmt.Errorf("search %s/%s: %w", r.Type, r.ID, err)
		}
		ok, err := q.Match(body)
		if err != nil {
			return nil, fmt.Errorf("search %s/%s: %w", r.Type, r.ID, err)
		}
		if ok {
			hits = append(hits, hit{r, body})
		}
	}
	sorted := len(q.Shape().Sort) > 0
	sort.SliceStable(hits, func(i, j int) bool {
		a, b := hits[i], hits[j]
		if sorted {
			if q.Less(a.body, b.body) {
				return true
			}
			if q.Less(b.body, a.body) {
				return false
			}
		}
		return a.res.ID < b.res.ID
	})
	lo, hi := PageBounds(len(hits), q.Count, q.Offset)
	page := &Page{Total: len(hits), Resources: make([]*Resource, 0, hi-lo)}
	for _, h := range hits[lo:hi] {
		page.Resources = append(page.Resources, h.res)
	}
	return page, nil
}
