package web

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// Origins are the browser origins ("https://app.example.org", or "*" for
// any) whose pages may call the API and open its websockets: a SMART app
// or an EHR front end served from elsewhere than this server. Empty, a
// browser lets only the server's own pages (the dashboard) read its
// answers, and the websockets take only same-origin pages; that is the
// default, because with authentication off on loopback any web page the
// developer opens could otherwise read and write the server.
type Origins []string

// Allows reports whether a page of origin may use the API. Origins match
// exactly (scheme, host and port), as a browser sends them.
func (o Origins) Allows(origin string) bool {
	return origin != "" && (slices.Contains(o, "*") || slices.Contains(o, origin))
}

// CheckWebsocket is the origin check of a websocket upgrade: a request
// without Origin (not from a browser), a page of the server's own origin,
// and a page of an allowed origin may connect.
func (o Origins) CheckWebsocket(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if u, err := url.Parse(origin); err == nil && strings.EqualFold(u.Host, r.Host) {
		return true
	}
	return o.Allows(origin)
}

// corsHeaders are the request headers a FHIR client sends beyond the
// simple ones: the token, the conditional headers and Prefer.
var corsHeaders = []string{"Authorization", "Content-Type", "Accept", "If-Match", "If-None-Match",
	"If-None-Exist", "If-Modified-Since", "Prefer", "Content-Encoding"}

// corsExposed are the answer headers a FHIR client reads: the version, the
// new resource's address, and when to retry a refused write.
var corsExposed = []string{"ETag", "Location", "Content-Location", "Last-Modified", "Retry-After"}

// cors answers preflights and marks the answers of allowed origins
// (Cross-Origin Resource Sharing). It runs before authentication, since a
// preflight carries no token; credentials (cookies) are never allowed, the
// API's are bearer tokens a page sends itself.
func (o Origins) cors() echo.MiddlewareFunc {
	return middleware.CORSWithConfig(middleware.CORSConfig{
		AllowOriginFunc: func(origin string) (bool, error) { return o.Allows(origin), nil },
		AllowMethods: []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
			http.MethodPatch, http.MethodDelete},
		AllowHeaders:  corsHeaders,
		ExposeHeaders: corsExposed,
		MaxAge:        600,
	})
}
