// Package search implements FHIR R4 search for fhirsub: it extracts typed
// index values for every search parameter of a resource, parses search
// queries (`Observation?code=http://loinc.org|8867-4&date=ge2024`) and
// matches a decoded resource in memory.
//
// Databases narrow the candidates with the exact keys of Keys and
// Query.Narrow; Query.Match then decides. Search results and subscription
// matches therefore always agree.
//
// # Key format
//
// Keys returns one Key{Param, Value} per distinct exact-match value, where
// Param is the search parameter code (for example "code", "subject", "_id"):
//
//   - token (including _id, _tag, _security and booleans): for a coding,
//     identifier or contact point with a system S and code C, "S|C" and
//     "C"; for a value without a system, "|C" and "C". The bare "C" serves
//     `code=C` (any system), "|C" serves `code=|C` (no system).
//   - reference: "Type/id" when the reference is relative, versioned
//     ("Type/id/_history/v") or an absolute RESTful URL ending in Type/id;
//     otherwise the reference string itself (urn:uuid:…, a canonical URL
//     without its |version). Local references ("#x") give no key.
//   - uri (including _profile and _source): the value as is, and for a
//     versioned canonical "url|v" also "url".
//
// String, date, number, quantity and composite parameters give no keys:
// Narrow never asks for them, and the in-memory Match handles them.
//
// # Matching
//
// Strings match by prefix (:contains anywhere) after folding case and
// accents; :exact compares the stored value. Tokens compare codes exactly;
// :text is a folded prefix match on Coding.display, CodeableConcept.text
// and Identifier.type.text; :not matches resources without a matching
// value. Dates are ranges given by their precision (a value without a
// time zone is UTC) and the prefixes follow the R4 range rules (eq: the
// search range contains the value range; gt: the value range reaches
// past the search range; sa: the value range starts after it; ...).
// Numbers and quantities use the implicit precision of the search value
// for eq and ne and 10% for ap; quantities compare no units unless given
// (system|code, or ||code against code or unit), without conversion. A
// reference given as an id alone matches any target type with that id.
// Modifiers that need a terminology server (:in, :not-in, :above, :below on
// tokens, :of-type), chains, _has, _include and the other result
// parameters are rejected with an *Error, never ignored.
//
// # Concurrency
//
// Parsed queries are immutable; Match, Less, Narrow and String may be called
// from many goroutines at once. The compiled search parameter expressions
// are built once per resource type and shared.
package search
