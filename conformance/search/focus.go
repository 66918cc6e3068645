package search

import "github.com/fhirsub/fhirsub/conformance/fhirpath"

// Focus is one resource matched against many queries, as a change is
// matched against every subscription it may trigger: each search
// parameter's expression is evaluated on the resource once, when a query
// first needs it, and the queries after it read that result. Many
// subscriptions filter on the same parameters (patient, code, status)
// with their own values, so a change costs one evaluation of each, not
// one for every subscription (fhirsub-load's resthook scenario: 100
// filters on one parameter, the FHIRPath of every filter 3% of the
// server's CPU). A Focus belongs to one goroutine.
type Focus struct {
	res   map[string]any
	evals map[*param]evaluation
}

// evaluation is a parameter's result on the focus's resource.
type evaluation struct {
	nodes []fhirpath.Value
	err   error
}

// NewFocus returns the focus of res, a decoded resource (nil: a focus no
// query matches).
func NewFocus(res map[string]any) *Focus { return &Focus{res: res} }

// Resource returns the focus's resource.
func (f *Focus) Resource() map[string]any { return f.res }

// eval returns p's nodes on the focus's resource, evaluated the first
// time; the nodes are shared, so their readers must not change them.
func (f *Focus) eval(p *param) ([]fhirpath.Value, error) {
	if e, ok := f.evals[p]; ok {
		return e.nodes, e.err
	}
	nodes, err := p.eval(f.res)
	if f.evals == nil {
		f.evals = make(map[*param]evaluation, 4)
	}
	f.evals[p] = evaluation{nodes: nodes, err: err}
	return nodes, err
}

// MatchFocus is Match on the focus's resource, with every search parameter
// evaluated at most once per focus whatever the queries matched against
// it.
func (q *Query) MatchFocus(f *Focus) (bool, error) {
	return q.match(f.res, f)
}
