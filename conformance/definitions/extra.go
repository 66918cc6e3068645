package definitions

// Extra types are resource types a fhirsub server stores although R4 does
// not define them. SubscriptionTopic is the one: the Subscriptions Backport
// IG has R4 servers accept it in its R4B/R5 shape. Its search parameters are
// those of FHIR R4B (4.3.0), where the resource is normative-track; they are
// written here by hand because the R4 package has none.

// extraTypes maps an extra type to its own search parameters.
var extraTypes = map[string][]*SearchParam{
	"SubscriptionTopic": {
		r4b("SubscriptionTopic-url", "url", "uri", "SubscriptionTopic.url"),
		r4b("SubscriptionTopic-status", "status", "token", "SubscriptionTopic.status"),
		r4b("SubscriptionTopic-title", "title", "string", "SubscriptionTopic.title"),
		r4b("SubscriptionTopic-version", "version", "token", "SubscriptionTopic.version"),
		r4b("SubscriptionTopic-date", "date", "date", "SubscriptionTopic.date"),
		r4b("SubscriptionTopic-resource", "resource", "uri", "SubscriptionTopic.resourceTrigger.resource"),
		r4b("SubscriptionTopic-derived-or-self", "derived-or-self", "uri", "SubscriptionTopic.url | SubscriptionTopic.derivedFrom"),
	},
}

func r4b(name, code, typ, expr string) *SearchParam {
	return &SearchParam{
		Code: code, Name: name, URL: "http://hl7.org/fhir/SearchParameter/" + name, Type: typ,
		Expression: expr, Base: []string{"SubscriptionTopic"}, MultipleOr: true, MultipleAnd: true, Version: "4.3.0",
	}
}

// IsExtraType reports whether name is a non-R4 resource type that fhirsub
// stores (SubscriptionTopic).
func IsExtraType(name string) bool {
	_, ok := extraTypes[name]
	return ok
}

// extraSearchParams returns the parameters of an extra type: its own plus
// those defined on Resource.
func extraSearchParams(rt string) map[string]*SearchParam {
	own, ok := extraTypes[rt]
	if !ok {
		return nil
	}
	m := map[string]*SearchParam{}
	for _, p := range searchParams().all {
		for _, b := range p.Base {
			if b == "Resource" {
				m[p.Code] = p
			}
		}
	}
	for _, p := range own {
		m[p.Code] = p
	}
	return m
}
