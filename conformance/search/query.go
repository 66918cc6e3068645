package search

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Key is one index entry of a resource: the search parameter code and an
// exact-match value. Backends store Keys(res) and look them up with the
// groups of Query.Narrow. The value formats are described in the package
// documentation.
type Key struct {
	Param string
	Value string
}

// Error is a search error that names the offending parameter.
type Error struct {
	Param   string
	Message string
	// Unsupported marks a parameter this server does not know or support
	// (its name, chain or modifier), not a bad value of one it does: the
	// parameter a client's Prefer: handling=lenient asks to be ignored.
	Unsupported bool
}

// Error implements error.
func (e *Error) Error() string { return fmt.Sprintf("search parameter %q: %s", e.Param, e.Message) }

// ErrUnknownType is returned by Parse and ParseCriteria for a name that is
// not an R4 resource type.
var ErrUnknownType = errors.New("unknown resource type")

// SortKey is one `_sort` entry.
type SortKey struct {
	Param      string
	Descending bool
}

// Query is a parsed search on one resource type. A Query is immutable once
// parsed and safe for concurrent use.
type Query struct {
	// Type is the resource type searched.
	Type string
	// Count is `_count` (0 = not given); Offset is `_offset`.
	Count  int
	Offset int

	clauses []clause
	// raw is the parameters as given, encoded in canonical form (sorted
	// by name, see canonical): one string rather than a map, as a
	// subscription keeps its Query for its lifetime. The clauses' names
	// and values are read back from it (Parse).
	raw string
	// shape holds the parameters that shape the result rather than select
	// resources; nil when none was given. Subscription criteria and
	// filters never have them, and each subscription keeps its Query for
	// its lifetime: 80 bytes a Query instead of 208.
	shape *Shape
}

// Shape is what a search asks of its result besides the matches: their
// order, the resources included with them and which of their elements
// are returned.
type Shape struct {
	// Sort is `_sort`.
	Sort []SortKey
	// Includes are `_include` and `_revinclude`, in name order.
	Includes []Include
	// Summary is `_summary`: "" (not given), "count", "true", "text",
	// "data" or "false".
	Summary string
	// Elements is `_elements`: the top-level elements to return.
	Elements []string
	// Total is `_total`: "" (not given), "none", "estimate" or "accurate".
	Total string

	sorts []*param // the parameters of Sort, in its order
}

// noShape is the Shape of a query that gave no result parameter.
var noShape Shape

// Shape returns the result parameters of the query (the zero Shape when
// none was given). It must not be modified.
func (q *Query) Shape() *Shape {
	if q.shape == nil {
		return &noShape
	}
	return q.shape
}

// AltersResult reports whether the result is more or less than the
// matching resources: resources included with them, a summary, some of
// their elements only, or a total asked for. _sort alone does not.
func (s *Shape) AltersResult() bool {
	return len(s.Includes) > 0 || s.Summary != "" || len(s.Elements) > 0 || s.Total != ""
}

// shaped returns the query's Shape for the parser to fill, making it.
func (q *Query) shaped() *Shape {
	if q.shape == nil {
		q.shape = &Shape{}
	}
	return q.shape
}

// clause is one parameter occurrence: its values are ORed, clauses are
// ANDed.
type clause struct {
	name     string // as written, with its modifier
	p        *param
	modifier string // "", "missing", "exact", "contains", "not", "text", "above", "below", "identifier" or "type"
	values   []value
	link     *link // a chained or _has parameter before Resolve
	none     bool  // a resolved link that found nothing: never matches
	resolved bool  // the clause replaced a link (Resolve)
}

// value is one OR alternative of a clause; which fields are set depends on
// the parameter type and modifier. A subscription keeps the values of its
// criteria or filters for its lifetime, so the fields of the rarer types
// (number, quantity, composite) are behind more, and the prefix is a
// byte: 144 bytes a value instead of 248.
type value struct {
	// token (and reference :identifier): system|code
	system string
	code   string
	text   string // token :text, normalised; string: normalised form
	exact  string // string :exact, uri, reference raw form
	ref    refValue
	when   span
	more   *valueMore // number, quantity, composite

	prefix  comparator // date, number and quantity
	sysMode sysMode
	anyCode bool // "system|": every code of the system
	missing bool // :missing=true
}

// valueMore holds the fields of number, quantity and composite values.
type valueMore struct {
	num      decimal
	quantity bool // a quantity with unit filter
	unitSys  string
	unitCode string
	parts    []value // composite
}

type sysMode uint8

const (
	anySystem sysMode = iota // "code": any system
	noSystem                 // "|code": no system
	inSystem                 // "system|code" or "system|"
)

// String returns the query in canonical form: the type, then the
// parameters sorted by name, as given (paging and sort included).
func (q *Query) String() string {
	if q.raw == "" {
		return q.Type
	}
	return q.Type + "?" + q.raw
}

// Params returns the codes of the parameters the query filters on, sorted
// and without duplicates (for example ["code", "subject"]).
func (q *Query) Params() []string {
	var out []string
	for _, c := range q.clauses {
		out = append(out, c.p.code)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// ParseCriteria parses "Type?a=b&c=d" (Subscription criteria form). A
// leading "/" is allowed, and "Type" alone matches every resource of the
// type.
func ParseCriteria(criteria string) (*Query, error) {
	criteria = strings.TrimPrefix(strings.TrimSpace(criteria), "/")
	typ, query, _ := strings.Cut(criteria, "?")
	if typ == "" {
		return nil, fmt.Errorf("criteria %q: %w", criteria, ErrUnknownType)
	}
	values, err := url.ParseQuery(query)
	if err != nil {
		return nil, &Error{Param: firstParam(query), Message: fmt.Sprintf("malformed query string: %v", err)}
	}
	return Parse(typ, values)
}

// firstParam names the parameter a query string error is about, as well as
// it can.
func firstParam(query string) string {
	for _, part := range strings.Split(query, "&") {
		name, _, _ := strings.Cut(part, "=")
		if _, err := url.QueryUnescape(name); err != nil || strings.Contains(part, ";") {
			return name
		}
		if _, err := url.QueryUnescape(part[len(name):]); err != nil {
			return name
		}
	}
	return "?"
}
