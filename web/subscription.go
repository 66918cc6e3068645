package web

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
)

// SubscriptionOps is what the Subscription operations and the
// CapabilityStatement need from the subscription manager
// (subscriptions.Manager implements it).
type SubscriptionOps interface {
	// StatusBundle answers $status: a searchset Bundle of query-status
	// Parameters for the subscriptions ids (none: all) with one of the
	// statuses (none: any). self is the request URL.
	StatusBundle(ctx context.Context, ids, statuses []string, self string) (map[string]any, error)
	// EventsBundle answers $events: a query-event Bundle with the events
	// numbered since..until (0: unbounded) at the content level asked
	// ("" : the subscription's).
	EventsBundle(ctx context.Context, id string, since, until int64, content string) (map[string]any, error)
	// TopicCanonicals lists the topics subscriptions may name.
	TopicCanonicals() []string
}

// deleteValidator is implemented by interceptors that may refuse a delete
// (a SubscriptionTopic in use).
type deleteValidator interface {
	ValidateDelete(ctx context.Context, id string) error
}

// subscriptionRoutes mounts the Subscription operations. Static segments
// win over the generic /:type/:id routes in echo's router. (Deletes of
// intercepted types that guard them go through authorizeDelete.)
//
//	GET|POST /Subscription/$status            type-level $status (?id=&status=)
//	GET|POST /Subscription/{id}/$status       instance $status
//	GET|POST /Subscription/{id}/$events       $events (?eventsSinceNumber=&eventsUntilNumber=&content=)
func (s *Server) subscriptionRoutes() {
	e := s.echo
	if s.cfg.Subscriptions == nil {
		return
	}
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		e.Add(m, "/Subscription/$status", s.subscriptionStatus)
		e.Add(m, "/Subscription/:id/$status", s.subscriptionStatus)
		e.Add(m, "/Subscription/:id/$events", s.subscriptionEvents)
	}
}

// opParams collects operation parameters from the query string and, for
// POST, a Parameters body (valueString, valueCode, valueId, valueInteger…).
func (s *Server) opParams(c echo.Context) (map[string][]string, error) {
	out := map[string][]string{}
	for k, vs := range c.QueryParams() {
		for _, v := range vs {
			for _, part := range strings.Split(v, ",") {
				if part = strings.TrimSpace(part); part != "" {
					out[k] = append(out[k], part)
				}
			}
		}
	}
	r := c.Request()
	if r.Method != http.MethodPost || r.ContentLength == 0 {
		return out, nil
	}
	if ct := r.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		if err := r.ParseForm(); err != nil {
			return nil, errorf(http.StatusBadRequest, "invalid", "malformed form body: %v", err)
		}
		for k, vs := range r.PostForm {
			out[k] = append(out[k], vs...)
		}
		return out, nil
	}
	body, err := s.readJSON(c)
	if err != nil {
		return nil, err
	}
	if rt, _ := body["resourceType"].(string); rt != "Parameters" {
		return nil, errorf(http.StatusBadRequest, "invalid", "an operation body must be a Parameters resource")
	}
	params, _ := body["parameter"].([]any)
	for _, raw := range params {
		p, _ := raw.(map[string]any)
		name, _ := p["name"].(string)
		for k, v := range p {
			if !strings.HasPrefix(k, "value") {
				continue
			}
			switch x := v.(type) {
			case string:
				out[name] = append(out[name], x)
			case interface{ String() string }:
				out[name] = append(out[name], x.String())
			}
		}
	}
	return out, nil
}

func (s *Server) subscriptionStatus(c echo.Context) error {
	params, err := s.opParams(c)
	if err != nil {
		return err
	}
	ids := params["id"]
	if id := c.Param("id"); id != "" {
		if !idPattern.MatchString(id) {
			return errorf(http.StatusBadRequest, "invalid", "invalid resource id %q", id)
		}
		ids = []string{id}
	}
	for i, id := range ids {
		id = strings.TrimPrefix(id, "Subscription/")
		if !idPattern.MatchString(id) {
			return &Error{Status: http.StatusBadRequest, Code: "invalid", Expression: []string{"id"},
				Message: "invalid subscription id " + quoteShort(id)}
		}
		ids[i] = id
	}
	for _, st := range params["status"] {
		switch st {
		case "requested", "active", "error", "off":
		default:
			return &Error{Status: http.StatusBadRequest, Code: "invalid", Expression: []string{"status"},
				Message: "status " + quoteShort(st) + " is not requested, active, error or off"}
		}
	}
	self := s.base + c.Request().URL.RequestURI()
	b, err := s.cfg.Subscriptions.StatusBundle(c.Request().Context(), ids, params["status"], self)
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, b)
}

func (s *Server) subscriptionEvents(c echo.Context) error {
	id := c.Param("id")
	if !idPattern.MatchString(id) {
		return errorf(http.StatusBadRequest, "invalid", "invalid resource id %q", id)
	}
	params, err := s.opParams(c)
	if err != nil {
		return err
	}
	number := func(name string) (int64, error) {
		vs := params[name]
		if len(vs) == 0 {
			return 0, nil
		}
		n, err := strconv.ParseInt(vs[0], 10, 64)
		if err != nil || n < 0 || len(vs) > 1 {
			return 0, &Error{Status: http.StatusBadRequest, Code: "invalid", Expression: []string{name},
				Message: name + " must be one non-negative event number"}
		}
		return n, nil
	}
	since, err := number("eventsSinceNumber")
	if err != nil {
		return err
	}
	until, err := number("eventsUntilNumber")
	if err != nil {
		return err
	}
	content := ""
	if vs := params["content"]; len(vs) > 0 {
		content = vs[0]
	}
	b, err := s.cfg.Subscriptions.EventsBundle(c.Request().Context(), id, since, until, content)
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, b)
}
