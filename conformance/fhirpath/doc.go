// Package fhirpath is a FHIRPath engine for FHIR R4 resources held as
// decoded JSON (map[string]any with json.Number numbers).
//
// It covers what the R4 search parameters and subscription topic triggers
// use: paths with polymorphic (choice) elements typed by the R4 model of
// package definitions, indexers, the union, boolean, equality, equivalence,
// comparison, membership, arithmetic and type operators, the existence,
// filtering, subsetting, combining, conversion, string, math, tree
// navigation and FHIR functions (extension, resolve, hasValue), literals of
// every kind, %resource, %rootResource, %context and user variables such as
// %current and %previous.
//
// Parse builds an immutable *Expression: one may be evaluated from many
// goroutines at once. Evaluation never panics: bad input gives an
// *EvalError, and parsing bounds the nesting of expressions so recursion
// stays bounded.
//
// Typing: navigation from a known type uses the model (Observation.value
// finds valueQuantity and yields a Value of Type "Quantity"); an element the
// model does not know is still navigated by its JSON key, with an unknown
// type. resolve() without Env.Resolve (or when it finds nothing) yields a
// stub {"resourceType": T, "id": id} for a "T/id" or ".../T/id" reference,
// so `resolve() is Patient` works; "#id" resolves to a contained resource.
//
// Not supported: the ValueSet and terminology functions (memberOf,
// %vs-...), aggregate(), UCUM unit conversion (quantities of different units
// compare as unknown), and extensions of primitive values (_birthDate).
package fhirpath
