package definitions

import "sync"

// SearchParam is one R4 SearchParameter, reduced to what a server uses.
type SearchParam struct {
	// Code is the name used in a query URL ("subject", "_id").
	Code string
	// Name is the computer-friendly name of the definition.
	Name string
	// URL is the canonical URL of the definition.
	URL string
	// Type is one of number, date, string, token, reference, composite,
	// quantity, uri, special.
	Type string
	// Expression is the FHIRPath expression that extracts the values; it is
	// empty for _text, _content and _query.
	Expression string
	// Base lists the resource types the parameter applies to ("Resource" and
	// "DomainResource" for the common parameters).
	Base []string
	// Target lists the resource types a reference parameter may point to.
	Target []string
	// Modifiers lists the allowed modifiers, when the definition restricts
	// them (no R4 core parameter does).
	Modifiers []string
	// Comparators lists the allowed prefixes (eq, ne, gt, ...).
	Comparators []string
	// Components are the parts of a composite parameter.
	Components []Component
	// MultipleOr and MultipleAnd tell whether a query may repeat values
	// (a,b) or the parameter itself; true when the definition is silent.
	MultipleOr, MultipleAnd bool
	// Version is the business version of the definition: "4.0.1" for all but
	// DeviceDefinition-classification, which HL7 shipped as 5.0.0-snapshot1.
	Version string
}

// Component is one part of a composite search parameter.
type Component struct {
	// Definition is the canonical URL of the component's search parameter.
	Definition string
	// Expression is the FHIRPath expression, relative to the composite's
	// own expression.
	Expression string
}

type searchIndex struct {
	all    []*SearchParam
	byURL  map[string]*SearchParam
	byType map[string]map[string]*SearchParam
}

var (
	searchOnce sync.Once
	search     searchIndex
)

type rawSearchParam struct {
	Code        string      `json:"code"`
	Name        string      `json:"name"`
	URL         string      `json:"url"`
	Version     string      `json:"version"`
	Type        string      `json:"type"`
	Expression  string      `json:"expression"`
	Base        []string    `json:"base"`
	Target      []string    `json:"target"`
	Modifiers   []string    `json:"modifier"`
	Comparators []string    `json:"comparator"`
	Components  []Component `json:"component"`
	MultipleOr  *bool       `json:"multipleOr"`
	MultipleAnd *bool       `json:"multipleAnd"`
}

func searchParams() *searchIndex {
	searchOnce.Do(func() {
		var f struct {
			SearchParams []rawSearchParam `json:"searchParams"`
		}
		mustLoad("searchparams.json.gz", &f)
		search.byURL = make(map[string]*SearchParam, len(f.SearchParams))
		search.all = make([]*SearchParam, 0, len(f.SearchParams))
		for _, r := range f.SearchParams {
			p := &SearchParam{
				Code: r.Code, Name: r.Name, URL: r.URL, Version: r.Version, Type: r.Type,
				Expression: r.Expression, Base: r.Base, Target: r.Target,
				Modifiers: r.Modifiers, Comparators: r.Comparators, Components: r.Components,
				MultipleOr: r.MultipleOr == nil || *r.MultipleOr, MultipleAnd: r.MultipleAnd == nil || *r.MultipleAnd,
			}
			if p.Version == "" {
				p.Version = "4.0.1"
			}
			search.all = append(search.all, p)
			search.byURL[p.URL] = p
		}
		search.byType = map[string]map[string]*SearchParam{}
		for _, rt := range ResourceTypes() {
			m := map[string]*SearchParam{}
			for _, p := range search.all {
				for _, b := range p.Base {
					if b == rt || IsSubtype(rt, b) {
						m[p.Code] = p
						break
					}
				}
			}
			search.byType[rt] = m
		}
	})
	return &search
}

// AllSearchParams returns the 1,378 search parameters of R4, sorted by URL.
func AllSearchParams() []*SearchParam { return searchParams().all }

// SearchParams returns the search parameters of a resource type by code,
// including those defined on Resource (_id, _lastUpdated, _tag, _profile,
// _security, _source, ...) and, for domain resources, on DomainResource
// (_text). Extra types (IsExtraType) get their own plus the Resource-level
// ones. It returns nil for any other name.
func SearchParams(resourceType string) map[string]*SearchParam {
	if m, ok := searchParams().byType[resourceType]; ok {
		return m
	}
	return extraSearchParams(resourceType)
}

// SearchParamByURL returns the search parameter with the given canonical
// URL, or nil.
func SearchParamByURL(url string) *SearchParam { return searchParams().byURL[url] }
