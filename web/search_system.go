package web

import (
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/fhirsub/fhirsub/conformance/definitions"
	"github.com/fhirsub/fhirsub/conformance/search"
	"github.com/fhirsub/fhirsub/conformance/smart"
)

// searchSystem answers the search of all types, GET /?params and
// POST /_search: each type named by _type (every type the caller may
// search when _type is absent) is searched with the other parameters, so
// these must be ones every named type has (_id, _lastUpdated, _tag, …).
// The result is the types' results one after the other, in type name
// order, each type's in the order its own search gives; _count and
// _offset page over the whole. _sort, _include and _revinclude, which
// would need one order or one graph across types, are refused.
func (s *Server) searchSystem(c echo.Context) error {
	params, err := searchParams(c)
	if err != nil {
		return err
	}
	b, err := s.systemBundle(c, params)
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, b)
}

// systemBundle runs a search of all types (see searchSystem).
func (s *Server) systemBundle(c echo.Context, params url.Values) (*bundle, error) {
	ctx := c.Request().Context()
	offset, count, err := systemPage(params)
	if err != nil {
		return nil, err
	}
	types, err := s.systemTypes(c, params)
	if err != nil {
		return nil, err
	}
	rest := url.Values{}
	for k, vs := range params {
		code, _, _ := strings.Cut(k, ":")
		switch code {
		case "_type", "_count", "_offset":
		case "_sort", "_include", "_revinclude":
			return nil, &search.Error{Param: k, Message: "is not supported on a search of all types: search one type (GET /Type?…)", Unsupported: true}
		default:
			rest[k] = vs
		}
	}
	var (
		total   int
		entries []bundleEntry
		summary bool
	)
	for _, t := range types {
		q, err := search.Parse(t, cloneValues(rest))
		if err != nil {
			return nil, systemError(t, err)
		}
		summary = q.Shape().Summary == "count"
		// this type's share of the page: skip what earlier types filled
		q.Offset, q.Count = max(0, offset-total), count-len(entries)
		if q.Count <= 0 || summary {
			// the total only (a Count of 0 would be the default page size)
			q.Offset, q.Count = math.MaxInt32, 1
		}
		page, err := s.searchResolved(ctx, q, cloneValues(rest))
		if err != nil {
			return nil, systemError(t, err)
		}
		total += page.Total
		for _, r := range page.Resources {
			e, err := s.searchEntry(q, r, "match")
			if err != nil {
				return nil, err
			}
			entries = append(entries, e)
		}
	}
	b := newBundle("searchset")
	if params.Get("_total") != "none" || summary {
		b.Total = &total
	}
	b.Link = s.pageLinks("/", params, offset, count, total)
	if !summary {
		b.Entry = entries
	}
	return b, nil
}

// systemPage reads _count (default 50, at most 1000) and _offset.
func systemPage(params url.Values) (offset, count int, err error) {
	count = defaultCount
	for _, k := range []string{"_count", "_offset"} {
		v := params.Get(k)
		if v == "" {
			continue
		}
		n, err := nonNegative(k, v)
		if err != nil {
			return 0, 0, err
		}
		if k == "_count" {
			count = min(n, maxCount)
		} else {
			offset = n
		}
	}
	return offset, count, nil
}

// systemTypes are the types a search of all types runs on, in name order:
// those _type names (each must be searchable by the caller), or every type
// the caller may search.
func (s *Server) systemTypes(c echo.Context, params url.Values) ([]string, error) {
	acc := AccessFrom(c.Request().Context())
	var types []string
	if vs, ok := params["_type"]; ok {
		for _, v := range vs {
			for _, t := range strings.Split(v, ",") {
				t = strings.TrimSpace(t)
				if !s.knownType(t) {
					return nil, &search.Error{Param: "_type", Message: "unknown resource type " + strconv.Quote(t)}
				}
				if !acc.Allows(t, smart.Search) {
					return nil, insufficientScope(c, "the token's scopes do not allow search on %s", t)
				}
				types = append(types, t)
			}
		}
	} else {
		for _, t := range append(definitions.ResourceTypes(), s.cfg.ExtraTypes...) {
			if acc.Allows(t, smart.Search) {
				types = append(types, t)
			}
		}
	}
	slices.Sort(types)
	return slices.Compact(types), nil
}

// systemError explains a parameter that one of the types searched does
// not have.
func systemError(t string, err error) error {
	if se, ok := err.(*search.Error); ok && strings.Contains(se.Message, "unknown search parameter") {
		e := *se
		e.Message += " (a search of several types runs each parameter on each type: name the types with _type)"
		return &e
	}
	return err
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

// rootGET serves GET / : the dashboard, or the search of all types when
// searchesAllTypes (which authenticates: see public).
func (s *Server) rootGET(dashboard echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if searchesAllTypes(c.Request()) {
			return s.searchSystem(c)
		}
		return dashboard(c)
	}
}

// searchesAllTypes tells a GET / that is the search of all types (it has a
// query string) from the dashboard's page. rootGET dispatches on it and
// public keeps it authenticated: the one decision, in one place.
func searchesAllTypes(r *http.Request) bool { return r.URL.RawQuery != "" }
