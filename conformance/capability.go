package conformance

import (
	"sort"
	"time"

	"github.com/fhirsub/fhirsub/conformance/definitions"
)

// Capabilities describes what a running server has wired. The
// CapabilityStatement is derived from it, so the statement never claims
// more than the server does.
type Capabilities struct {
	// BaseURL is the server's FHIR base.
	BaseURL string
	// SoftwareName and SoftwareVersion identify the server.
	SoftwareName, SoftwareVersion string
	// ResourceTypes served; nil means every R4 resource type.
	ResourceTypes []string
	// TypeInteractions are offered on every served type (read, vread,
	// update, delete, history-instance, history-type, create, search-type).
	TypeInteractions []string
	// SystemInteractions are offered at the base (transaction, batch,
	// history-system).
	SystemInteractions []string
	// SearchParamSupported reports whether a search parameter of a type is
	// implemented; parameters it rejects are not advertised. Nil means all.
	SearchParamSupported func(resourceType, code string) bool
	// SearchInclude lists the _include values of a type; nil advertises
	// none.
	SearchInclude func(resourceType string) []string
	// ConditionalCreate and ConditionalUpdate advertise If-None-Exist and
	// PUT Type?criteria on every served type.
	ConditionalCreate, ConditionalUpdate bool
	// ConditionalDelete is "single" or "multiple"; "" means not-supported.
	ConditionalDelete string
	// ConditionalRead is "modified-since", "not-match" or "full-support";
	// "" means not-supported.
	ConditionalRead string
	// Operations are extra system or type operations (name → definition URL).
	Operations []Operation
	// ResourceExtras adds fields to the rest.resource entry of one type
	// (for example supportedProfile on Subscription).
	ResourceExtras map[string]map[string]any
	// RestExtensions are added to rest[0].extension.
	RestExtensions []map[string]any
	// PatchFormats are the media types a PATCH may be sent as
	// (application/json-patch+json, application/fhir+json for a FHIRPath
	// Patch); nil advertises none.
	PatchFormats []string
	// Compartments are the canonicals of the compartments searched with
	// [base]/Patient/[id]/[type] (rest.compartment).
	Compartments []string
	// CORS tells that the server answers browsers of other origins
	// (rest.security.cors).
	CORS bool
	// Instantiates lists canonical URLs of CapabilityStatements this server
	// implements.
	Instantiates []string
}

// Operation names one operation in the CapabilityStatement.
type Operation struct {
	// ResourceType, when set, puts the operation on that type's entry;
	// otherwise it is a system operation.
	ResourceType string
	Name         string
	Definition   string
}

// CapabilityStatement returns the server's CapabilityStatement as a JSON-ready
// map.
func CapabilityStatement(c Capabilities) map[string]any {
	types := c.ResourceTypes
	if types == nil {
		types = definitions.ResourceTypes()
	}
	typeOps := map[string][]any{}
	var sysOps []any
	for _, op := range c.Operations {
		o := map[string]any{"name": op.Name, "definition": op.Definition}
		if op.ResourceType == "" {
			sysOps = append(sysOps, o)
		} else {
			typeOps[op.ResourceType] = append(typeOps[op.ResourceType], o)
		}
	}
	conditionalDelete := c.ConditionalDelete
	if conditionalDelete == "" {
		conditionalDelete = "not-supported"
	}
	conditionalRead := c.ConditionalRead
	if conditionalRead == "" {
		conditionalRead = "not-supported"
	}
	resources := make([]any, 0, len(types))
	for _, t := range types {
		r := map[string]any{
			"type":              t,
			"interaction":       codes(c.TypeInteractions),
			"versioning":        "versioned",
			"readHistory":       true,
			"updateCreate":      true,
			"conditionalCreate": c.ConditionalCreate,
			"conditionalUpdate": c.ConditionalUpdate,
			"conditionalDelete": conditionalDelete,
			"conditionalRead":   conditionalRead,
		}
		if sp := searchParams(t, c.SearchParamSupported); len(sp) > 0 {
			r["searchParam"] = sp
		}
		if c.SearchInclude != nil {
			if inc := c.SearchInclude(t); len(inc) > 0 {
				r["searchInclude"] = inc
			}
		}
		if ops := typeOps[t]; len(ops) > 0 {
			r["operation"] = ops
		}
		for k, v := range c.ResourceExtras[t] {
			r[k] = v
		}
		resources = append(resources, r)
	}
	rest := map[string]any{
		"mode":        "server",
		"resource":    resources,
		"interaction": codes(c.SystemInteractions),
	}
	if len(sysOps) > 0 {
		rest["operation"] = sysOps
	}
	if len(c.Compartments) > 0 {
		rest["compartment"] = c.Compartments
	}
	if c.CORS {
		rest["security"] = map[string]any{"cors": true}
	}
	if len(c.RestExtensions) > 0 {
		rest["extension"] = c.RestExtensions
	}
	cs := map[string]any{
		"resourceType": "CapabilityStatement",
		"status":       "active",
		"date":         time.Now().UTC().Format("2006-01-02T15:04:05Z"),
		"kind":         "instance",
		"software":     map[string]any{"name": c.SoftwareName, "version": c.SoftwareVersion},
		"implementation": map[string]any{
			"description": c.SoftwareName + " FHIR R4 server",
			"url":         c.BaseURL,
		},
		"fhirVersion": "4.0.1",
		"format":      []string{"application/fhir+json", "json"},
		"rest":        []any{rest},
	}
	if len(c.PatchFormats) > 0 {
		cs["patchFormat"] = c.PatchFormats
	}
	if len(c.Instantiates) > 0 {
		cs["instantiates"] = c.Instantiates
	}
	return cs
}

func codes(cs []string) []any {
	out := make([]any, len(cs))
	for i, c := range cs {
		out[i] = map[string]any{"code": c}
	}
	return out
}

func searchParams(resourceType string, supported func(string, string) bool) []any {
	params := definitions.SearchParams(resourceType)
	names := make([]string, 0, len(params))
	for code, p := range params {
		if p.Type == "special" || (supported != nil && !supported(resourceType, code)) {
			continue
		}
		names = append(names, code)
	}
	sort.Strings(names)
	out := make([]any, 0, len(names))
	for _, code := range names {
		p := params[code]
		out = append(out, map[string]any{"name": code, "definition": p.URL, "type": p.Type})
	}
	return out
}
