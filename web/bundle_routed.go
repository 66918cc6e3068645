package web

import (
	"encoding/json"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
)

// plainPath reports whether a GET entry's path is Type or Type/id, which
// readEntry answers itself.
func (s *Server) plainPath(path string) bool {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch len(parts) {
	case 1:
		return s.knownType(parts[0])
	case 2:
		return s.knownType(parts[0]) && idPattern.MatchString(parts[1])
	}
	return false
}

// routedEntry answers a GET entry that is neither a read nor a search of
// one type (a vread, a history, an operation, the CapabilityStatement, the
// search of all types) through the server's own routes, as the caller:
// the same authentication, scopes and handlers as the request made on its
// own. An answer that is not FHIR JSON (a dashboard file, a websocket
// path) makes the entry a 400.
func (s *Server) routedEntry(c echo.Context, target string) bundleEntry {
	outer := c.Request()
	req, err := http.NewRequestWithContext(outer.Context(), http.MethodGet, target, nil)
	if err != nil {
		return errorEntry(errorf(http.StatusBadRequest, "invalid", "request.url %q: %v", strings.TrimPrefix(target, "/"), err))
	}
	for _, h := range []string{"Authorization", "Accept", "Prefer"} {
		if v := outer.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	req.RemoteAddr = outer.RemoteAddr
	w := &heldWriter{header: http.Header{}, status: http.StatusOK}
	s.echo.ServeHTTP(w, req)
	if mt, _, _ := mime.ParseMediaType(w.header.Get("Content-Type")); !jsonFormat(mt) {
		return errorEntry(errorf(http.StatusBadRequest, "not-supported", "request.url %q is not a FHIR interaction", strings.TrimPrefix(target, "/")))
	}
	resp := &entryResponse{Status: strconv.Itoa(w.status) + " " + http.StatusText(w.status), Etag: w.header.Get("ETag"), Location: w.header.Get("Location")}
	if t, err := http.ParseTime(w.header.Get("Last-Modified")); err == nil {
		resp.LastModified = instant(t)
	}
	body := json.RawMessage(w.body.Bytes())
	if w.status >= 400 {
		resp.Outcome = body
		return bundleEntry{Response: resp}
	}
	return bundleEntry{Resource: body, Response: resp}
}
