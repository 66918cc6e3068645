// Package smart decides what a SMART on FHIR access token may do: it parses
// scopes in SMART App Launch v1 syntax (`patient/Observation.read`,
// `user/*.write`, `system/*.*`) and v2 syntax (`patient/Observation.rs`,
// `user/*.cruds`, granular `patient/Observation.rs?category=laboratory`)
// and answers, for an Access (the subject, the patient in context and the
// scopes of one token), which resource types may be read or written and
// whether one resource is visible.
//
// # Rules
//
//   - A scope grants permissions (Create, Read, Update, Delete, Search) on
//     one resource type or on every type (`*`). v1 `read` is Read|Search,
//     v1 `write` is Create|Update|Delete, v1 `*` is all five. v2 letters
//     must come in the order c r u d s.
//   - Read covers read, vread and instance history; Search covers
//     type and system search and history (as SMART v2 defines them).
//   - A v2 granular scope (`?param=value`) only covers the resources its
//     search matches (in memory, with conformance/search).
//   - `patient/` scopes work only when the Access has a patient in context;
//     without one they grant nothing.
//   - When a patient is in context, every resource, whatever the scope
//     context, must lie in that patient's compartment: a Patient with that
//     id, or a resource among whose search.PatientIDs the patient is.
//   - A Subscription is in no compartment of the CompartmentDefinition:
//     here it lies in the compartment of the patient of the access it
//     carries (AccessExtension, stamped by the server with the creator's
//     access); one without it is treated as the caller's.
//
// NewContext and FromContext carry the caller's Access in a
// context.Context, so that packages which never see the HTTP layer can
// decide for the caller.
//
// The package is pure: no I/O, no clock. Values are immutable once built and
// safe for concurrent use.
package smart
