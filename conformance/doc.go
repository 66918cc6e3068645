// Package conformance holds what FHIR R4 says, as code and data, with no
// I/O: the CapabilityStatement builder here, the R4 definitions
// (definitions), structural validation (schema), the FHIRPath engine
// (fhirpath) and search parameters (search) in sub-packages.
package conformance
