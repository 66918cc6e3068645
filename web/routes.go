package web

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// routes declares every route of the REST API in one place:
//
//	GET    /healthz, /readyz                 liveness, readiness (store reachable)
//	GET    /metrics                          Prometheus metrics (when Config.Metrics is set)
//	GET    /metadata                         CapabilityStatement
//	POST   /                                 batch or transaction Bundle
//	GET    /?params                          search of all types (also POST /_search;
//	                                         GET / without a query is the dashboard
//	                                         when Config.Handlers mounts one there)
//	GET    /_history                         system history
//	GET    /{type}                           search (also POST /{type}/_search)
//	POST   /{type}                           create
//	GET    /{type}/_history                  type history
//	GET    /{type}/{id}                      read
//	PUT    /{type}/{id}                      update (update-as-create, If-Match)
//	DELETE /{type}/{id}                      delete (If-Match)
//	PATCH  /{type}/{id}                      JSON Patch or FHIRPath Patch (If-Match)
//	PUT    /{type}?criteria                  conditional update
//	PATCH  /{type}?criteria                  conditional patch
//	DELETE /{type}?criteria                  conditional delete
//	GET    /{type}/{id}/_history             instance history
//	GET    /{type}/{id}/_history/{vid}       vread
//	GET    /Patient/{id}/{type}              compartment search (also POST …/_search)
//
// The writes (POST /, POST /{type}, PUT, PATCH, DELETE) pass the
// backpressure gate first (Config.Backpressure, backpressure.go).
//
// Paging uses _count and _offset; next/previous links carry both.
func (s *Server) routes() {
	e := s.echo
	if len(s.cfg.CORSOrigins) > 0 {
		e.Use(s.cfg.CORSOrigins.cors())
	}
	e.Use(s.pretty)
	e.Use(s.limits)
	e.Use(s.authenticate)
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metadata", s.metadata)
	if s.cfg.Metrics != nil {
		e.GET("/metrics", echo.WrapHandler(s.cfg.Metrics))
	}
	for path, h := range s.cfg.Handlers {
		if path == "/" {
			e.GET(path, s.rootGET(echo.WrapHandler(h)))
			continue
		}
		e.GET(path, echo.WrapHandler(h))
	}
	if s.cfg.Handlers["/"] == nil {
		e.GET("/", s.searchSystem)
	}
	e.POST("/_search", s.searchSystem)
	// The fixed GET paths answer other methods with 405, not as the
	// unknown resource type of POST /{type}.
	getOnly := []string{"/healthz", "/readyz", "/metadata"}
	for path := range s.cfg.Handlers {
		if path != "/" && !strings.Contains(path, "*") {
			getOnly = append(getOnly, path)
		}
	}
	for _, path := range getOnly {
		e.Match([]string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}, path, methodNotAllowed)
	}
	s.subscriptionRoutes()
	s.wsBindingRoutes()
	w := s.writeGate // writes only: see backpressure.go
	e.POST("/", s.bundle, w)
	e.GET("/_history", s.historySystem)
	e.GET("/:type", s.search)
	e.POST("/:type/_search", s.search)
	e.POST("/:type", s.create, w)
	e.PUT("/:type", s.updateConditionalHTTP, w)
	e.PATCH("/:type", s.patchConditionalHTTP, w)
	e.DELETE("/:type", s.deleteConditionalHTTP, w)
	e.GET("/:type/_history", s.historyType)
	e.GET("/:type/:id", s.read)
	e.PUT("/:type/:id", s.update, w)
	e.DELETE("/:type/:id", s.delete, w)
	e.PATCH("/:type/:id", s.patchHTTP, w)
	e.GET("/:type/:id/_history", s.historyInstance)
	e.GET("/:type/:id/:target", s.searchCompartment)
	e.POST("/:type/:id/:target/_search", s.searchCompartment)
	e.GET("/:type/:id/_history/:vid", s.vread)
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(c echo.Context) error {
	if err := s.store.Ping(c.Request().Context()); err != nil {
		s.log.WarnContext(c.Request().Context(), "store not reachable", "err", err)
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "store unreachable"})
	}
	out := map[string]any{}
	if s.cfg.Readiness != nil {
		for k, v := range s.cfg.Readiness(c.Request().Context()) {
			out[k] = v
		}
	}
	out["status"] = "ready"
	return c.JSON(http.StatusOK, out)
}

func methodNotAllowed(c echo.Context) error {
	c.Response().Header().Set("Allow", http.MethodGet)
	return echo.ErrMethodNotAllowed
}
