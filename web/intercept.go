package web

import (
	"context"
	"errors"
	"net/http"

	"github.com/fhirsub/fhirsub/conformance/definitions"
	"github.com/fhirsub/fhirsub/fhirstore"
)

// Interceptor lets a domain package take part in the writes of one resource
// type (Subscription, SubscriptionTopic): it validates the body before the
// store sees it and reacts once the write has committed, before the client
// gets its answer. Implementations must be safe for concurrent use.
type Interceptor interface {
	// Validate checks (and may normalise) a body about to be created or
	// updated. current is the live version being replaced, or nil. A
	// returned error rejects the write; it is rendered like any other.
	Validate(ctx context.Context, body map[string]any, current *fhirstore.Resource) error
	// Committed is called after a create, update or delete of the type
	// committed. An error is logged and answered as 500, but the write stays.
	Committed(ctx context.Context, res *fhirstore.Resource, interaction fhirstore.Interaction) error
}

// redactor is implemented by interceptors whose type holds values clients
// may write but never read back (a Subscription's channel headers, HMAC
// secret and creator's access).
type redactor interface {
	// Redact returns the stored JSON as clients may see it.
	Redact(raw []byte) []byte
}

// shown returns the body of a stored version as it may leave the server:
// through the type's interceptor's Redact when it has one. Every
// rendering of a resource (read, vread, search, history, batch,
// transaction, write answers) goes through it.
func (s *Server) shown(res *fhirstore.Resource) []byte {
	if r, ok := s.cfg.Interceptors[res.Type].(redactor); ok && len(res.Body) > 0 {
		return r.Redact(res.Body)
	}
	return res.Body
}

// StatusError is implemented by domain errors that know their HTTP status
// and FHIR issue type; the error renderer uses it for errors of packages
// that do not import web.
type StatusError interface {
	error
	// HTTPStatus is the HTTP status code to answer.
	HTTPStatus() int
	// IssueCode is the FHIR OperationOutcome issue type.
	IssueCode() string
}

// knownType reports whether the server serves resources of type t: every
// R4 type plus the extra types of Config.ExtraTypes.
func (s *Server) knownType(t string) bool {
	if definitions.IsResourceType(t) {
		return true
	}
	_, ok := s.extra[t]
	return ok
}

// validate runs the structural checks of a body: the R4 schema for R4
// types, and the type's interceptor.
func (s *Server) validate(ctx context.Context, body map[string]any, current *fhirstore.Resource) error {
	rt, _ := body["resourceType"].(string)
	if rt == "" {
		return errorf(http.StatusBadRequest, "required", "resource has no resourceType")
	}
	if !s.knownType(rt) {
		return errorf(http.StatusBadRequest, "not-supported", "unknown resource type %q", rt)
	}
	if _, extra := s.extra[rt]; !extra {
		if err := checkSchema(body); err != nil {
			return err
		}
	}
	if ic := s.cfg.Interceptors[rt]; ic != nil {
		return ic.Validate(ctx, body, current)
	}
	return nil
}

// currentFor returns the live version an update would replace, but only for
// intercepted types (others do not need it).
func (s *Server) currentFor(ctx context.Context, typ, id string) (*fhirstore.Resource, error) {
	if s.cfg.Interceptors[typ] == nil || id == "" {
		return nil, nil
	}
	res, err := s.store.Read(ctx, typ, id)
	if errors.Is(err, fhirstore.ErrNotFound) || errors.Is(err, fhirstore.ErrGone) {
		return nil, nil
	}
	return res, err
}

// committed tells the type's interceptor about a committed write.
func (s *Server) committed(ctx context.Context, res *fhirstore.Resource, in fhirstore.Interaction) error {
	if ic := s.cfg.Interceptors[res.Type]; ic != nil {
		return ic.Committed(ctx, res, in)
	}
	return nil
}
