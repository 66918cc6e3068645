package subscriptions

// The notification Bundle as Go types rather than nested maps: building
// one took eight maps per event and its encoding sorted the keys of each,
// which made these Bundles the largest source of garbage on the rest-hook
// path (40% of the bytes allocated while delivering).
//
// Every field is declared in the byte order of its JSON name, which is
// the order the map form's encoding gave (sorted keys), so the bytes on
// the wire are unchanged: the golden notifications pin them.

// Bundle is a notification Bundle (history) ready to encode.
type Bundle struct {
	// Entry lists the status Parameters, then the events' resources.
	Entry []BundleEntry `json:"entry"`
	// ID is the Bundle's id.
	ID string `json:"id"`
	// Meta carries the notification profile.
	Meta Meta `json:"meta"`
	// ResourceType is "Bundle".
	ResourceType string `json:"resourceType"`
	// Timestamp is when the Bundle was built.
	Timestamp string `json:"timestamp"`
	// Type is "history".
	Type string `json:"type"`
}

// BundleEntry is one entry of a notification Bundle.
type BundleEntry struct {
	// FullURL is the entry's fullUrl.
	FullURL string `json:"fullUrl"`
	// Request is the entry's request, if any.
	Request *EntryRequest `json:"request,omitempty"`
	// Resource is the status Parameters (*StatusParameters) or a resource
	// as decoded from the store (map[string]any).
	Resource any `json:"resource,omitempty"`
	// Response is the entry's response, if any.
	Response *EntryResponse `json:"response,omitempty"`
}

// EntryRequest is a Bundle entry's request.
type EntryRequest struct {
	// Method is the HTTP method.
	Method string `json:"method"`
	// URL is the request's URL.
	URL string `json:"url"`
}

// EntryResponse is a Bundle entry's response.
type EntryResponse struct {
	// Etag is the version's weak ETag, if any.
	Etag string `json:"etag,omitempty"`
	// Status is the HTTP status code.
	Status string `json:"status"`
}

// Meta is a resource's meta with its profiles.
type Meta struct {
	// Profile lists the profiles claimed.
	Profile []string `json:"profile"`
}

// StatusParameters is the backport-subscription-status-r4 Parameters.
type StatusParameters struct {
	// ID is the resource id.
	ID string `json:"id"`
	// Meta carries the status profile.
	Meta Meta `json:"meta"`
	// Parameter lists the status parameters.
	Parameter []Param `json:"parameter"`
	// ResourceType is "Parameters".
	ResourceType string `json:"resourceType"`
}

// Param is one parameter (or part) of the status Parameters; exactly one
// of its value fields is set, or Part.
type Param struct {
	// Name is the parameter's name.
	Name string `json:"name"`
	// Part holds the parts of a notification-event.
	Part []Param `json:"part,omitempty"`
	// ValueCanonical is a canonical value (topic).
	ValueCanonical string `json:"valueCanonical,omitempty"`
	// ValueCode is a code value (status, type).
	ValueCode string `json:"valueCode,omitempty"`
	// ValueCodeableConcept is a concept value (error).
	ValueCodeableConcept *CodeableConcept `json:"valueCodeableConcept,omitempty"`
	// ValueInstant is an instant value (timestamp).
	ValueInstant string `json:"valueInstant,omitempty"`
	// ValueReference is a reference value (subscription, focus).
	ValueReference *Reference `json:"valueReference,omitempty"`
	// ValueString is a string value (event numbers).
	ValueString string `json:"valueString,omitempty"`
}

// CodeableConcept is a FHIR CodeableConcept with codings and text.
type CodeableConcept struct {
	// Coding lists the codes.
	Coding []Coding `json:"coding"`
	// Text is the plain-text meaning.
	Text string `json:"text"`
}

// Coding is a FHIR Coding.
type Coding struct {
	// Code is the code.
	Code string `json:"code"`
	// System is the code system.
	System string `json:"system"`
}

// Reference is a FHIR Reference by URL.
type Reference struct {
	// Reference is the literal reference.
	Reference string `json:"reference"`
}
