package search

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// MaxLinked bounds the resources one chained or _has parameter may find
// when it is resolved for a search.
const MaxLinked = 1000

// maxLinkSearches bounds the sub-searches one chained parameter may need
// (a reference to any type fans out to every type with the next
// parameter).
const maxLinkSearches = 64

// maxChainDepth bounds the links of a chained parameter
// (subject:Patient.organization.name has two).
const maxChainDepth = 3

// ErrUnresolved is returned by Match for a query with chained or _has
// parameters that was not resolved (see Resolve and MatchLinked): such a
// query never matches by default.
var ErrUnresolved = errors.New("chained or _has parameter not resolved")

// Resolver answers the sub-searches of chained and reverse-chained (_has)
// parameters. It applies the access of whoever searches, so that a chain
// never reveals what that caller may not see.
type Resolver interface {
	// Read returns the current body of typ/id, or nil (and no error)
	// when it does not exist or the caller may not see it.
	Read(ctx context.Context, typ, id string) (map[string]any, error)
	// Search returns the current resources sub matches (every page, or
	// an error when there are too many), decoded.
	Search(ctx context.Context, sub *Query) ([]map[string]any, error)
}

// link is a chained (subject:Patient.name=x) or reverse-chained
// (_has:Observation:subject:code=x) parameter, kept apart from the plain
// clauses until it is resolved.
type link struct {
	// chain: the sub-search on each possible target type of the reference
	// parameter clause.p.
	subs []*Query
	// has: the sub-search on the other type, and its reference parameter
	// that must point at the searched resource.
	has      *Query
	hasParam *param
}

// HasLinks reports whether the query has chained or _has parameters, which
// need Resolve (search) or MatchLinked (subscriptions).
func (q *Query) HasLinks() bool {
	for i := range q.clauses {
		if q.clauses[i].link != nil {
			return true
		}
	}
	return false
}

// Values returns the query's parameters as given (resolved links as the
// reference or _id values they found), for a search that re-parses them.
func (q *Query) Values() url.Values {
	return q.rawValues()
}

// rawValues decodes raw. It was made by canonical, which escapes
// everything ParseQuery refuses, so there is no error to report.
func (q *Query) rawValues() url.Values {
	out, _ := url.ParseQuery(q.raw)
	return out
}

// LinkedSize returns the largest number of resources one resolved link
// stands for (0 without links): the OR values its reference or _id
// clause carries.
func (q *Query) LinkedSize() int {
	n := 0
	for i := range q.clauses {
		if q.clauses[i].resolved {
			n = max(n, len(q.clauses[i].values))
		}
	}
	return n
}

// MatchesNothing reports whether a resolved link found nothing, so that
// no resource can match.
func (q *Query) MatchesNothing() bool {
	for i := range q.clauses {
		if q.clauses[i].none {
			return true
		}
	}
	return false
}

// parseChain parses "ref[:Type].rest" with its values.
func (q *Query) parseChain(tp *typeParams, name string, vals []string) error {
	if strings.Count(name, ".") > maxChainDepth {
		return &Error{Param: name, Message: fmt.Sprintf("chains are limited to %d links", maxChainDepth)}
	}
	head, rest, _ := strings.Cut(name, ".")
	code, typ, _ := strings.Cut(head, ":")
	p := tp.byCode[code]
	switch {
	case p == nil:
		return &Error{Param: name, Message: fmt.Sprintf("unknown search parameter %q for %s", code, q.Type), Unsupported: true}
	case p.typ != "reference":
		return &Error{Param: name, Message: fmt.Sprintf("%q is a %s parameter: only reference parameters chain", code, p.typ)}
	case p.unsupported != "":
		return &Error{Param: name, Message: p.unsupported, Unsupported: true}
	case rest == "":
		return &Error{Param: name, Message: "empty chained parameter"}
	}
	targets := p.targets
	if typ != "" {
		if len(p.targets) > 0 && !slices.Contains(p.targets, typ) {
			return &Error{Param: name, Message: fmt.Sprintf("%s is not a target type of %q (targets: %s)", typ, code, strings.Join(p.targets, ", "))}
		}
		if paramsOf(typ) == nil {
			return &Error{Param: name, Message: fmt.Sprintf("unknown resource type %q", typ)}
		}
		targets = []string{typ}
	}
	if len(targets) == 0 {
		return &Error{Param: name, Message: fmt.Sprintf("%q has no fixed target type: name it (%s:Type.%s)", code, code, rest)}
	}
	l := &link{}
	var firstErr error
	for _, t := range targets {
		sub, err := Parse(t, url.Values{rest: vals})
		if err != nil {
			if firstErr == nil || typ != "" {
				firstErr = err
			}
			continue
		}
		l.subs = append(l.subs, sub)
	}
	if len(l.subs) == 0 {
		var se *Error
		if errors.As(firstErr, &se) {
			return &Error{Param: name, Message: fmt.Sprintf("chained %s: %s", se.Param, se.Message), Unsupported: se.Unsupported}
		}
		return &Error{Param: name, Message: fmt.Sprintf("chained: %v", firstErr)}
	}
	if cost := l.cost(); cost > maxLinkSearches {
		return &Error{Param: name, Message: fmt.Sprintf("the chain would search %d resource types (at most %d): name the type, as in %s:Type.%s", cost, maxLinkSearches, code, rest)}
	}
	q.clauses = append(q.clauses, clause{name: name, p: p, link: l})
	return nil
}

// cost is the number of sub-searches resolving the link takes.
func (l *link) cost() int {
	n := 0
	subs := l.subs
	if l.has != nil {
		subs = []*Query{l.has}
	}
	for _, sub := range subs {
		n++
		for i := range sub.clauses {
			if sub.clauses[i].link != nil {
				n += sub.clauses[i].link.cost()
			}
		}
	}
	return n
}

// parseHas parses "_has:Type:ref:rest" with its values (one level).
func (q *Query) parseHas(tp *typeParams, name string, vals []string) error {
	parts := strings.SplitN(name, ":", 4)
	if len(parts) != 4 || parts[1] == "" || parts[2] == "" || parts[3] == "" {
		return &Error{Param: name, Message: "_has takes the form _has:Type:reference-parameter:parameter"}
	}
	typ, code, rest := parts[1], parts[2], parts[3]
	if strings.HasPrefix(rest, "_has") {
		return &Error{Param: name, Message: "nested _has is not supported", Unsupported: true}
	}
	other := paramsOf(typ)
	if other == nil {
		return &Error{Param: name, Message: fmt.Sprintf("unknown resource type %q", typ), Unsupported: true}
	}
	rp := other.byCode[code]
	switch {
	case rp == nil:
		return &Error{Param: name, Message: fmt.Sprintf("unknown search parameter %q for %s", code, typ), Unsupported: true}
	case rp.typ != "reference" || rp.unsupported != "":
		return &Error{Param: name, Message: fmt.Sprintf("%s:%s is not a usable reference parameter", typ, code)}
	case len(rp.targets) > 0 && !slices.Contains(rp.targets, q.Type):
		return &Error{Param: name, Message: fmt.Sprintf("%s:%s does not refer to %s", typ, code, q.Type)}
	}
	sub, err := Parse(typ, url.Values{rest: vals})
	if err != nil {
		var se *Error
		if errors.As(err, &se) {
			return &Error{Param: name, Message: fmt.Sprintf("_has %s: %s", se.Param, se.Message), Unsupported: se.Unsupported}
		}
		return &Error{Param: name, Message: err.Error()}
	}
	idp := tp.byCode["_id"]
	if idp == nil {
		return &Error{Param: name, Message: "_has needs the _id parameter"}
	}
	q.clauses = append(q.clauses, clause{name: name, p: idp, link: &link{has: sub, hasParam: rp}})
	return nil
}

// Resolve returns the query with every chained and _has parameter
// replaced by what r finds: a chain becomes "the reference points at one
// of the resources the sub-search found", a _has becomes "the id is one
// that a resource the sub-search found refers to". A query without links
// is returned as it is. A link that finds nothing makes MatchesNothing
// true.
func (q *Query) Resolve(ctx context.Context, r Resolver) (*Query, error) {
	if !q.HasLinks() {
		return q, nil
	}
	out := *q
	out.clauses = make([]clause, 0, len(q.clauses))
	raw := q.rawValues()
	for _, c := range q.clauses {
		if c.link == nil {
			out.clauses = append(out.clauses, c)
			continue
		}
		rc, err := c.resolve(ctx, q.Type, r)
		if err != nil {
			return nil, err
		}
		if len(rc.values) > MaxLinked {
			return nil, &Error{Param: c.name, Message: fmt.Sprintf("finds more than %d resources: narrow it", MaxLinked)}
		}
		out.clauses = append(out.clauses, rc)
		delete(raw, c.name)
		if !rc.none {
			vals := make([]string, len(rc.values))
			for i, v := range rc.values {
				vals[i] = v.code + v.ref.key
			}
			raw[rc.p.code] = append(raw[rc.p.code], strings.Join(vals, ","))
		}
	}
	out.raw = canonical(raw)
	return &out, nil
}

func (c *clause) resolve(ctx context.Context, typ string, r Resolver) (clause, error) {
	out := clause{name: c.name, p: c.p, resolved: true}
	seen := map[string]bool{}
	if c.link.has != nil {
		sub, err := c.link.has.Resolve(ctx, r)
		if err != nil {
			return out, err
		}
		var bodies []map[string]any
		if !sub.MatchesNothing() {
			if bodies, err = r.Search(ctx, sub); err != nil {
				return out, err
			}
		}
		for _, b := range bodies {
			nodes, err := c.link.hasParam.eval(b)
			if err != nil {
				return out, err
			}
			for _, ref := range refsOf(nodes, nil, nil) {
				if ref.typ == typ && !seen[ref.id] {
					seen[ref.id] = true
					out.values = append(out.values, value{code: ref.id, sysMode: anySystem})
				}
			}
		}
	} else {
		for _, sub := range c.link.subs {
			sub, err := sub.Resolve(ctx, r)
			if err != nil {
				return out, err
			}
			if sub.MatchesNothing() {
				continue
			}
			bodies, err := r.Search(ctx, sub)
			if err != nil {
				return out, err
			}
			for _, b := range bodies {
				id, _ := b["id"].(string)
				key := sub.Type + "/" + id
				if id != "" && !seen[key] {
					seen[key] = true
					out.values = append(out.values, value{ref: refValue{key: key, typ: sub.Type, id: id}, exact: key})
				}
			}
		}
	}
	slices.SortFunc(out.values, func(a, b value) int {
		return strings.Compare(a.code+a.ref.key, b.code+b.ref.key)
	})
	out.none = len(out.values) == 0
	return out, nil
}

// MatchLinked is Match for a query that may have chained and _has
// parameters, evaluated on res at once: a chain reads the resources res
// refers to through r and matches them against the sub-search; a _has
// asks r whether a resource matching the sub-search refers to res. It is
// how Subscription criteria with chains are evaluated at match time.
func (q *Query) MatchLinked(ctx context.Context, res map[string]any, r Resolver) (bool, error) {
	if rt, _ := res["resourceType"].(string); rt != q.Type {
		return false, nil
	}
	for i := range q.clauses {
		c := &q.clauses[i]
		var ok bool
		var err error
		if c.link != nil {
			ok, err = c.matchLinked(ctx, q.Type, res, r)
		} else {
			ok, err = c.match(res, nil)
		}
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

func (c *clause) matchLinked(ctx context.Context, typ string, res map[string]any, r Resolver) (bool, error) {
	if c.link.has != nil {
		id, _ := res["id"].(string)
		if id == "" {
			return false, nil
		}
		sub := *c.link.has
		key := typ + "/" + id
		sub.clauses = append(slices.Clip(sub.clauses), clause{name: c.link.hasParam.code, p: c.link.hasParam,
			values: []value{{ref: refValue{key: key, typ: typ, id: id}, exact: key}}})
		rsub, err := sub.Resolve(ctx, r)
		if err != nil || rsub.MatchesNothing() {
			return false, err
		}
		rsub.Count = 1
		found, err := r.Search(ctx, rsub)
		return len(found) > 0, err
	}
	nodes, err := c.p.eval(res)
	if err != nil {
		return false, err
	}
	for _, ref := range refsOf(nodes, nil, nil) {
		for _, sub := range c.link.subs {
			if ref.typ != sub.Type || ref.id == "" {
				continue
			}
			target, err := r.Read(ctx, ref.typ, ref.id)
			if err != nil {
				return false, err
			}
			if target == nil {
				continue
			}
			ok, err := sub.MatchLinked(ctx, target, r)
			if err != nil || ok {
				return ok, err
			}
		}
	}
	return false, nil
}
