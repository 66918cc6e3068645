package web

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/fhirsub/fhirsub/conformance/smart"
)

// NewContextWithAccess returns ctx carrying the access of the caller; it
// is smart.NewContext, so that packages which do not import web
// (subscriptions) read it with smart.FromContext.
func NewContextWithAccess(ctx context.Context, a *smart.Access) context.Context {
	return smart.NewContext(ctx, a)
}

// AccessFrom returns the access the authentication middleware stored in
// ctx (smart.FromContext), or nil (no access at all) when there is none.
func AccessFrom(ctx context.Context) *smart.Access {
	a, _ := smart.FromContext(ctx)
	return a
}

// publicPaths are served without a token.
var publicPaths = map[string]bool{"/metadata": true, "/healthz": true, "/readyz": true, "/metrics": true}

// authenticate puts the caller's *smart.Access in the request context:
// smart.Full() when Config.Auth is nil, else the access of the verified
// bearer token. It also checks that the scopes allow the interaction on
// the resource type of the route; resource-level checks (compartment,
// granular scopes) are the handlers' (auth_enforce.go). Public, for every
// method: /metadata, /healthz, /readyz, /metrics; public for GET and HEAD
// only: Config.Handlers (the dashboard's files, and the websocket upgrades
// which authenticate themselves). Everything else authenticates, POST /
// (batch, transaction) and GET / with a query string (the search of all
// types) included although the dashboard is mounted at /.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.public(c) {
			return next(c)
		}
		acc, err := s.accessOf(c)
		if err != nil {
			return err
		}
		r := c.Request()
		c.SetRequest(r.WithContext(NewContextWithAccess(r.Context(), acc)))
		if err := authorizeRoute(c, acc); err != nil {
			return err
		}
		return next(c)
	}
}

// public reports whether the request's route is served without a token.
func (s *Server) public(c echo.Context) bool {
	p := c.Path()
	if publicPaths[p] {
		return true
	}
	switch c.Request().Method {
	case http.MethodGet, http.MethodHead:
		return s.cfg.Handlers[p] != nil && !(p == "/" && searchesAllTypes(c.Request()))
	}
	return false
}

// accessOf verifies the request's bearer token.
func (s *Server) accessOf(c echo.Context) (*smart.Access, error) {
	if s.cfg.Auth == nil {
		return smart.Full(), nil
	}
	r := c.Request()
	h := c.Response().Header()
	if r.URL.Query().Has("access_token") {
		h.Set("WWW-Authenticate", `Bearer realm="fhirsub", error="invalid_request", error_description="access_token in the query string is refused on the REST API"`)
		return nil, errorf(http.StatusBadRequest, "security",
			"access_token in the query string is refused on the REST API (it leaks into logs and history): send Authorization: Bearer <token>")
	}
	auth := r.Header.Get("Authorization")
	if auth == "" {
		h.Set("WWW-Authenticate", `Bearer realm="fhirsub"`)
		return nil, errorf(http.StatusUnauthorized, "login", "authentication required: send Authorization: Bearer <token>")
	}
	scheme, token, _ := strings.Cut(auth, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		h.Set("WWW-Authenticate", `Bearer realm="fhirsub", error="invalid_request", error_description="only Bearer tokens are accepted"`)
		return nil, errorf(http.StatusUnauthorized, "login", "only the Bearer authorization scheme is accepted")
	}
	acc, err := s.cfg.Auth.Verify(r.Context(), strings.TrimSpace(token))
	if err != nil {
		desc := "token rejected"
		var te *TokenError
		if errors.As(err, &te) {
			desc = te.Description
		}
		h.Set("WWW-Authenticate", `Bearer realm="fhirsub", error="invalid_token", error_description="`+sanitize(desc)+`"`)
		return nil, &Error{Status: http.StatusUnauthorized, Code: "login", Message: "invalid bearer token: " + desc, Err: err}
	}
	return acc, nil
}

// authorizeRoute checks the type-level permission the route needs.
func authorizeRoute(c echo.Context, acc *smart.Access) error {
	typ, pattern := routeType(c)
	var need smart.Permission
	switch m := c.Request().Method; pattern {
	case "/:type":
		need = smart.Search
		if m == http.MethodPost {
			need = smart.Create
		}
	case "/:type/_search", "/:type/_history":
		need = smart.Search
	case "/:type/:id":
		switch m {
		case http.MethodPut:
			need = smart.Update | smart.Create // update-as-create; the handler decides
		case http.MethodDelete:
			need = smart.Delete
		default:
			need = smart.Read
		}
	case "/:type/:id/_history", "/:type/:id/_history/:vid":
		need = smart.Read
	case "/:type/$op":
		need = smart.Search
	case "/:type/:id/$op":
		need = smart.Read
	case "/_history", "/_search", "/":
		if c.Request().Method == http.MethodPost && pattern == "/" {
			return nil // batch/transaction entries check for themselves
		}
		if !acc.AllowsAny(smart.Search) {
			return insufficientScope(c, "the token's scopes allow no search or history")
		}
		return nil
	default:
		return nil // batch/transaction entries and operations check for themselves
	}
	if !acc.Allows(typ, need) {
		return insufficientScope(c, "the token's scopes do not allow %s on %s", verb(need), typ)
	}
	return nil
}

// routeType returns the resource type of the route and its pattern with
// the type as ":type" and any operation as "$op": routes mounted for one
// type ("/Subscription/:id") are authorized like the generic ones.
func routeType(c echo.Context) (typ, pattern string) {
	pattern = c.Path()
	segs := strings.Split(pattern, "/")
	if len(segs) > 1 && segs[1] != "" && !strings.HasPrefix(segs[1], ":") && !strings.HasPrefix(segs[1], "_") {
		typ, segs[1] = segs[1], ":type"
	} else {
		typ = c.Param("type")
	}
	if n := len(segs); n > 2 && strings.HasPrefix(segs[n-1], "$") {
		segs[n-1] = "$op"
	}
	return typ, strings.Join(segs, "/")
}

func insufficientScope(c echo.Context, format string, args ...any) error {
	c.Response().Header().Set("WWW-Authenticate", `Bearer realm="fhirsub", error="insufficient_scope"`)
	return errorf(http.StatusForbidden, "forbidden", format, args...)
}

// verb names a permission in messages.
func verb(p smart.Permission) string {
	switch p {
	case smart.Create:
		return "create"
	case smart.Read:
		return "read"
	case smart.Update:
		return "update"
	case smart.Delete:
		return "delete"
	case smart.Search:
		return "search"
	case smart.Update | smart.Create:
		return "update"
	}
	return p.String()
}
