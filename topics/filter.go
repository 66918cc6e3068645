package topics

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/fhirsub/fhirsub/conformance/definitions"
	"github.com/fhirsub/fhirsub/conformance/search"
)

// Filter is one parsed subscription filter (a backport-filter-criteria
// value). It is immutable.
//
// A subscription keeps its filters for its lifetime, so a Filter holds
// its Query only: the resource type is the Query's, and the filter as
// given is not kept (String gives it in canonical form, which Rebind
// reads back to the same filter).
type Filter struct {
	// Query is the filter as a search on the resource type it constrains.
	Query *search.Query
}

// ResourceType returns the type the filter constrains.
func (f *Filter) ResourceType() string { return f.Query.Type }

// String returns the filter in canonical form ("Type?a=b", parameters
// sorted by name and URL-encoded); Rebind reads it back to the same
// filter.
func (f *Filter) String() string { return f.Query.String() }

// FilterError reports a subscription filter the topic does not allow,
// naming the parameter at fault ("" when the filter as a whole is wrong).
type FilterError struct {
	Filter  string
	Param   string
	Message string
	// Err is the underlying search error, if any.
	Err error
}

// Error implements error.
func (e *FilterError) Error() string {
	if e.Param == "" {
		return fmt.Sprintf("filter %q: %s", e.Filter, e.Message)
	}
	return fmt.Sprintf("filter %q: parameter %q: %s", e.Filter, e.Param, e.Message)
}

// Unwrap returns the underlying error.
func (e *FilterError) Unwrap() error { return e.Err }

// maxFilterLen bounds the length of one filter string.
const maxFilterLen = 4096

// ParseFilter parses one subscription filter in any of the shapes found in
// the wild: "Encounter?patient=Patient/123" (the IG's example),
// "Encounter.patient=Patient/123" (Inferno's; several such parameters may
// be joined by '&') or "patient=Patient/123" (the resource type is implied
// when the topic watches a single type). Every parameter must be allowed by
// the topic's canFilterBy for that resource type, with its modifier and
// comparator; otherwise a *FilterError names it.
func (t *Topic) ParseFilter(s string) (*Filter, error) {
	if src := strings.TrimSpace(s); len(src) > maxFilterLen {
		return nil, &FilterError{Filter: s, Message: fmt.Sprintf("longer than %d bytes", maxFilterLen)}
	}
	return t.parseFilter(s)
}

// Rebind checks a filter parsed for another version of the topic against
// t and returns it parsed for t. Its canonical form may be longer than
// the filter as given (percent-encoding), so the length bound, checked
// when it was given, is not checked again.
func (t *Topic) Rebind(f *Filter) (*Filter, error) { return t.parseFilter(f.String()) }

// parseFilter is ParseFilter without the length bound.
func (t *Topic) parseFilter(s string) (*Filter, error) {
	fail := func(param, format string, args ...any) (*Filter, error) {
		return nil, &FilterError{Filter: s, Param: param, Message: fmt.Sprintf(format, args...)}
	}
	src := strings.TrimSpace(s)
	if src == "" {
		return fail("", "empty")
	}
	rt, query, err := t.splitFilter(src)
	if err != nil {
		return fail("", "%s", err.Error())
	}
	values, err := url.ParseQuery(query)
	if err != nil {
		return fail("", "malformed: %v", err)
	}
	if len(values) == 0 {
		return fail("", "no parameters")
	}
	names := make([]string, 0, len(values))
	for name := range values {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if msg := t.allowFilter(rt, name, values[name]); msg != "" {
			return fail(name, "%s", msg)
		}
	}
	q, err := search.Parse(rt, values)
	if err != nil {
		fe := &FilterError{Filter: s, Message: errorText(err), Err: err}
		var se *search.Error
		if errors.As(err, &se) {
			fe.Param, fe.Message = se.Param, se.Message
		}
		return nil, fe
	}
	if q.HasLinks() {
		return nil, &FilterError{Filter: s, Message: "chained and _has parameters are not supported in filters"}
	}
	return &Filter{Query: q}, nil
}

// splitFilter returns the resource type and the query string of a filter,
// removing "Type." prefixes from the parameter names.
func (t *Topic) splitFilter(src string) (string, string, error) {
	types := t.ResourceTypes()
	if typ, rest, ok := strings.Cut(src, "?"); ok {
		typ = strings.TrimPrefix(typ, "/")
		typ = strings.TrimPrefix(typ, coreTypePrefix)
		if typ != "" && !slices.Contains(types, typ) {
			return "", "", fmt.Errorf("resource type %q is not one of the topic's %v", typ, types)
		}
		if typ != "" {
			return typ, rest, nil
		}
		src = rest // "?a=b": the type is implied
	}
	rt := ""
	parts := strings.Split(src, "&")
	for i, part := range parts {
		name, value, _ := strings.Cut(part, "=")
		typ, param, dotted := strings.Cut(name, ".")
		if !dotted || !definitions.IsResourceType(typ) {
			continue
		}
		if !slices.Contains(types, typ) {
			return "", "", fmt.Errorf("resource type %q is not one of the topic's %v", typ, types)
		}
		if rt != "" && rt != typ {
			return "", "", fmt.Errorf("one filter cannot mix resource types %q and %q", rt, typ)
		}
		rt = typ
		parts[i] = param + "=" + value
		if !strings.Contains(part, "=") {
			parts[i] = param
		}
	}
	if rt == "" {
		if len(types) != 1 {
			return "", "", fmt.Errorf("the topic has several resource types %v: name one (%s?param=value)", types, types[0])
		}
		rt = types[0]
	}
	return rt, strings.Join(parts, "&"), nil
}

// allowFilter checks one parameter against canFilterBy and returns why it is
// refused, or "".
func (t *Topic) allowFilter(rt, name string, values []string) string {
	code, mod, hasMod := strings.Cut(name, ":")
	var def *FilterDef
	for i := range t.CanFilterBy {
		fd := &t.CanFilterBy[i]
		if fd.Param == code && (fd.Resource == "" || fd.Resource == rt) {
			def = fd
			break
		}
	}
	if def == nil {
		return fmt.Sprintf("the topic does not allow filtering %s by %q", rt, code)
	}
	if hasMod && !slices.Contains(def.Modifiers, mod) {
		return fmt.Sprintf("modifier %q is not allowed (allowed: %v)", mod, def.Modifiers)
	}
	sp := definitions.SearchParams(rt)[code]
	if sp == nil {
		return fmt.Sprintf("not a search parameter of %s", rt)
	}
	if sp.Type != "date" && sp.Type != "number" && sp.Type != "quantity" || hasMod {
		return ""
	}
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			if len(item) < 2 || !comparatorCodes[item[:2]] {
				continue
			}
			if c := item[:2]; c != "eq" && !slices.Contains(def.Comparators, c) {
				return fmt.Sprintf("comparator %q is not allowed (allowed: %v)", c, def.Comparators)
			}
		}
	}
	return ""
}

// Match reports whether the focus resource passes the filter. A filter
// constrains resources of its own type only: for a focus of another type
// Match is true.
func (f *Filter) Match(focus map[string]any) (bool, error) {
	return f.MatchFocus(search.NewFocus(focus))
}

// MatchFocus is Match on a focus that many filters share: each search
// parameter is evaluated on it once (search.Focus).
func (f *Filter) MatchFocus(focus *search.Focus) (bool, error) {
	res := focus.Resource()
	if res == nil {
		return false, nil
	}
	if typeOf(res) != f.Query.Type {
		return true, nil
	}
	ok, err := f.Query.MatchFocus(focus)
	if err != nil {
		return false, fmt.Errorf("filter %q: %w", f, err)
	}
	return ok, nil
}

// MatchAll reports whether the focus passes every filter (an AND, as the
// Backport IG prescribes); no filters means true. The focus may be shared
// by the filters of many subscriptions.
func MatchAll(filters []*Filter, focus *search.Focus) (bool, error) {
	for _, f := range filters {
		ok, err := f.MatchFocus(focus)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}
