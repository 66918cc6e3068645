package web

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// References inside a transaction name other entries by their fullUrl
// (urn:uuid: placeholders above all) or name a resource by a search
// ("conditional references", Patient?identifier=…). The server rewrites
// both to Type/id before anything is written, and a transaction whose
// reference it cannot rewrite fails.

// forEachReference calls fn with every Reference.reference string of v and
// stores what fn returns in its place. It does not enter a Bundle (the
// resource written, or one inside it): the references of a document or
// other Bundle stored as a resource are its own, resolved within it.
func forEachReference(v any, fn func(string) string) {
	switch x := v.(type) {
	case map[string]any:
		if x["resourceType"] == "Bundle" {
			return
		}
		for k, child := range x {
			if s, ok := child.(string); ok && k == "reference" {
				x[k] = fn(s)
				continue
			}
			forEachReference(child, fn)
		}
	case []any:
		for _, child := range x {
			forEachReference(child, fn)
		}
	}
}

// rewriteReferences replaces every Reference.reference naming a fullUrl of
// the transaction, or a search resolved by resolveSearchReferences, with
// the Type/id it stands for.
func rewriteReferences(v any, ids map[string]string) {
	forEachReference(v, func(ref string) string {
		if to, ok := ids[ref]; ok {
			return to
		}
		return ref
	})
}

// placeholder reports whether ref is a URN, the form a transaction gives
// to the fullUrl of a resource it creates.
func placeholder(ref string) bool {
	return strings.HasPrefix(ref, "urn:uuid:") || strings.HasPrefix(ref, "urn:oid:")
}

// searchReference returns the resource type of a conditional reference
// (Type?search, relative to the base), or "" when ref is none.
func (s *Server) searchReference(ref string) string {
	typ, query, ok := strings.Cut(ref, "?")
	if !ok || query == "" || strings.Contains(typ, "/") || !s.knownType(typ) {
		return ""
	}
	return typ
}

// resolveSearchReferences maps each conditional reference of the resources
// a transaction writes to the one resource its search finds, in ids; and
// refuses a URN reference that names no fullUrl of the Bundle. The search
// runs as the caller, over the stored resources and the resources the
// transaction writes (written: see writtenResources); none or several is
// a 412 (the transaction fails, as FHIR's transaction rules ask).
func (s *Server) resolveSearchReferences(ctx context.Context, entries []entryIn, ids map[string]string, written map[string]int) error {
	first := map[string]int{} // each search, with the first entry using it
	var unknown error
	for i, e := range entries {
		if e.Resource == nil || e.Existing != nil || e.NoMatch {
			continue
		}
		forEachReference(e.Resource, func(ref string) string {
			_, known := ids[ref]
			switch {
			case known:
			case placeholder(ref) && unknown == nil:
				unknown = bundleEntryError(http.StatusBadRequest, "invalid", i,
					"reference %q names no fullUrl of this Bundle", ref)
			case s.searchReference(ref) != "":
				if _, seen := first[ref]; !seen {
					first[ref] = i
				}
			}
			return ref
		})
	}
	if unknown != nil {
		return unknown
	}
	refs := make([]string, 0, len(first))
	for ref := range first {
		refs = append(refs, ref)
	}
	slices.Sort(refs) // the same error for the same Bundle
	for _, ref := range refs {
		i := first[ref]
		cond, err := parseCondition(s.searchReference(ref), ref)
		if err != nil {
			return fmt.Errorf("conditional reference %q of Bundle.entry[%d]: %w", ref, i, err)
		}
		found, err := s.referenceTargets(ctx, cond, entries, written)
		if err != nil {
			return fmt.Errorf("conditional reference %q of Bundle.entry[%d]: %w", ref, i, err)
		}
		switch len(found) {
		case 0:
			return bundleEntryError(http.StatusPreconditionFailed, "not-found", i,
				"conditional reference %q: no resource matches it", ref)
		case 1:
			ids[ref] = found[0]
		default:
			return bundleEntryError(http.StatusPreconditionFailed, "multiple-matches", i,
				"conditional reference %q matches %d resources (%s): make it more selective", ref, len(found), strings.Join(found, ", "))
		}
	}
	return nil
}

// referenceTargets is the Type/id of each resource cond finds once the
// transaction is written: the stored matches the caller may read, less
// those the transaction writes or deletes, plus the resources it writes
// that match (a chain in cond followed through the stored resources the
// caller may read).
func (s *Server) referenceTargets(ctx context.Context, cond *condition, entries []entryIn, written map[string]int) ([]string, error) {
	page, err := s.matches(ctx, cond, 2+len(written))
	if err != nil {
		return nil, err
	}
	var found []string
	for _, r := range page.Resources {
		k := r.Type + "/" + r.ID
		if _, rewritten := written[k]; !rewritten {
			found = append(found, k)
		}
	}
	for _, e := range entries {
		if e.Type != cond.q.Type || e.Resource == nil || e.Existing != nil || e.NoMatch || e.Method == http.MethodDelete {
			continue
		}
		ok, err := cond.q.MatchLinked(ctx, e.Resource, linkResolver{s})
		if err != nil {
			return nil, err
		}
		if ok {
			found = append(found, e.Type+"/"+e.ID)
		}
	}
	return found, nil
}

// bundleEntryError is an error of entry i of a Bundle.
func bundleEntryError(status int, code string, i int, format string, args ...any) error {
	e := errorf(status, code, "Bundle.entry[%d]: %s", i, fmt.Sprintf(format, args...))
	e.Expression = []string{fmt.Sprintf("Bundle.entry[%d]", i)}
	return e
}

// batchInterdependent refuses entry i of a batch when its resource refers
// to another entry by that entry's placeholder fullUrl (urn:uuid:…, the
// keys of placeholders, with their entry): FHIR forbids interdependent
// batch entries, and a batch does not resolve placeholders, so the
// reference would be stored pointing at nothing (the client meant a
// transaction).
func batchInterdependent(e entryIn, i int, placeholders map[string]int) error {
	if e.Resource == nil || len(placeholders) == 0 {
		return nil
	}
	var err error
	forEachReference(e.Resource, func(ref string) string {
		if j, ok := placeholders[ref]; ok && j != i && err == nil {
			err = bundleEntryError(http.StatusBadRequest, "invalid", i,
				"reference %q is the fullUrl of entry[%d]: a batch does not resolve references between its entries; send a transaction", ref, j)
		}
		return ref
	})
	return err
}

// placeholderURLs maps each placeholder fullUrl (urn:uuid:…) of entries
// to its entry.
func placeholderURLs(entries []entryIn) map[string]int {
	out := map[string]int{}
	for i, e := range entries {
		if placeholder(e.FullURL) {
			out[e.FullURL] = i
		}
	}
	return out
}
