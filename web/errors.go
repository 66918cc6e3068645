package web

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/fhirsub/fhirsub/conformance/schema"
	"github.com/fhirsub/fhirsub/conformance/search"
	"github.com/fhirsub/fhirsub/fhirstore"
)

// Error is an HTTP failure carrying what the OperationOutcome must say.
// Handlers return it (or any error); the error handler installed by New is
// the one place that renders errors.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Code is the FHIR issue type (invalid, not-found, conflict, …).
	Code string
	// Message is the human-readable diagnostics.
	Message string
	// Expression lists the FHIRPath locations of the problem, if any.
	Expression []string
	// Err is the underlying cause, for errors.Is/As and logging.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Message, e.Err)
	}
	return e.Message
}

// Unwrap exposes the cause.
func (e *Error) Unwrap() error { return e.Err }

func errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// issue is one entry of an OperationOutcome.
type issue struct {
	Severity    string   `json:"severity"`
	Code        string   `json:"code"`
	Diagnostics string   `json:"diagnostics,omitempty"`
	Expression  []string `json:"expression,omitempty"`
}

// operationOutcome is the FHIR OperationOutcome resource.
type operationOutcome struct {
	ResourceType string  `json:"resourceType"`
	Issue        []issue `json:"issue"`
}

func outcome(severity, code, msg string, expr ...string) operationOutcome {
	return operationOutcome{ResourceType: "OperationOutcome", Issue: []issue{{Severity: severity, Code: code, Diagnostics: msg, Expression: expr}}}
}

// classify maps any error to a status and an OperationOutcome. It is the
// single translation table from domain errors to HTTP.
func classify(err error) (int, operationOutcome) {
	var (
		we  *Error
		se  *search.Error
		ve  *schema.Error
		he  *echo.HTTPError
		mbe *http.MaxBytesError
		oe  *fhirstore.OpError
	)
	switch {
	case errors.As(err, &we):
		oo := outcome("error", we.Code, we.Message, we.Expression...)
		if errors.As(we.Err, &ve) {
			oo = validationOutcome(ve)
		}
		return we.Status, oo
	case errors.As(err, &ve):
		return http.StatusBadRequest, validationOutcome(ve)
	case errors.As(err, &se):
		return http.StatusBadRequest, outcome("error", "invalid", se.Error(), se.Param)
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, outcome("error", "too-costly",
			fmt.Sprintf("request body exceeds the limit of %d bytes", mbe.Limit))
	}
	var ste StatusError
	if errors.As(err, &ste) {
		var expr []string
		if x, ok := ste.(interface{ Expression() []string }); ok {
			expr = x.Expression()
		}
		return ste.HTTPStatus(), outcome("error", ste.IssueCode(), ste.Error(), expr...)
	}
	prefix := ""
	if errors.As(err, &oe) {
		prefix = fmt.Sprintf("transaction entry %d: ", oe.Index)
	}
	switch {
	case errors.Is(err, fhirstore.ErrNotFound):
		return http.StatusNotFound, outcome("error", "not-found", prefix+"resource not found")
	case errors.Is(err, fhirstore.ErrGone):
		return http.StatusGone, outcome("error", "deleted", prefix+"resource has been deleted")
	case errors.Is(err, fhirstore.ErrVersionConflict):
		return http.StatusPreconditionFailed, outcome("error", "conflict", prefix+"version conflict: If-Match does not match the current version")
	case errors.Is(err, fhirstore.ErrInvalid):
		return http.StatusBadRequest, outcome("error", "invalid", prefix+err.Error())
	case errors.As(err, &he):
		return he.Code, outcome("error", httpIssueCode(he.Code), fmt.Sprint(he.Message))
	}
	return http.StatusInternalServerError, outcome("fatal", "exception", "internal error")
}

func validationOutcome(ve *schema.Error) operationOutcome {
	oo := operationOutcome{ResourceType: "OperationOutcome"}
	for _, is := range ve.Issues {
		oo.Issue = append(oo.Issue, issue{Severity: "error", Code: "structure", Diagnostics: is.Path + ": " + is.Message, Expression: []string{is.Path}})
	}
	if len(oo.Issue) == 0 {
		oo.Issue = []issue{{Severity: "error", Code: "structure", Diagnostics: ve.Error()}}
	}
	return oo
}

func httpIssueCode(status int) string {
	switch status {
	case http.StatusNotFound:
		return "not-found"
	case http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return "not-supported"
	case http.StatusUnauthorized, http.StatusForbidden:
		return "security"
	case http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
		return "too-costly"
	case http.StatusUnsupportedMediaType, http.StatusNotAcceptable:
		return "not-supported"
	}
	if status >= 500 {
		return "exception"
	}
	return "invalid"
}

// handleError is echo's HTTPErrorHandler: it renders every error as an
// OperationOutcome and logs internal ones once.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, oo := classify(err)
	if status >= 500 {
		s.log.ErrorContext(c.Request().Context(), "request failed", "method", c.Request().Method,
			"path", c.Request().URL.Path, "err", err)
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	_ = writeJSON(c, status, oo)
}
