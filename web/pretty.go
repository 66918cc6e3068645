package web

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
)

// pretty answers a request that asks for _pretty=true with its JSON
// indented, errors included (FHIR's _pretty: for human convenience). The
// answer is held until the handler is done, then indented and sent; any
// other request, and a websocket upgrade, passes through untouched.
func (s *Server) pretty(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.URL.RawQuery == "" || r.Header.Get("Upgrade") != "" || c.QueryParam("_pretty") != "true" {
			return next(c)
		}
		res := c.Response()
		held := &heldWriter{header: res.Writer.Header(), status: http.StatusOK}
		orig := res.Writer
		res.Writer = held
		if err := next(c); err != nil {
			s.handleError(err, c)
		}
		res.Writer = orig
		body := held.body.Bytes()
		if mt, _, _ := mime.ParseMediaType(held.header.Get("Content-Type")); jsonFormat(mt) {
			var out bytes.Buffer
			if json.Indent(&out, body, "", "  ") == nil {
				body = append(out.Bytes(), '\n')
			}
		}
		if len(body) > 0 {
			held.header.Set("Content-Length", strconv.Itoa(len(body)))
		}
		orig.WriteHeader(held.status)
		_, err := orig.Write(body)
		return err
	}
}

// heldWriter keeps a handler's answer for pretty.
type heldWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *heldWriter) Header() http.Header { return w.header }

func (w *heldWriter) WriteHeader(status int) { w.status = status }

func (w *heldWriter) Write(p []byte) (int, error) { return w.body.Write(p) }
