// Package web is fhirsub's HTTP surface: the FHIR R4 REST API on echo/v4
// (create, read, vread, update, delete, history, search, batch and
// transaction Bundles, /metadata, /healthz, /readyz) and, as later layers
// land, the subscription operations, websocket endpoints, JWT auth and the
// dashboard.
//
// Every error a handler returns is rendered by one function, handleError,
// as an OperationOutcome with the matching HTTP status (see classify in
// errors.go). Handlers turn echo.Context into plain arguments before calling
// the store, so no other package sees echo.
//
// A Server is safe for concurrent use; it owns no goroutines.
package web
