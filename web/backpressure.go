package web

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
)

// Backpressure tells the REST API to refuse writes for a while: ok is
// true when the server is too far behind (cmd/fhirsub answers from the
// notification lag), with how long the client should wait and why.
type Backpressure interface {
	Overloaded() (retryAfter time.Duration, reason string, ok bool)
}

// writeGate refuses a write with 503, Retry-After and a transient
// OperationOutcome while Config.Backpressure says the server is
// overloaded. It is installed on the write routes only (create, update,
// patch, delete, batch and transaction): reads, /metadata, the health
// routes, /metrics and the websockets are always served.
func (s *Server) writeGate(next echo.HandlerFunc) echo.HandlerFunc {
	if s.cfg.Backpressure == nil {
		return next
	}
	return func(c echo.Context) error {
		after, reason, over := s.cfg.Backpressure.Overloaded()
		if !over {
			return next(c)
		}
		secs := int64(math.Ceil(after.Seconds()))
		c.Response().Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
		return &Error{Status: http.StatusServiceUnavailable, Code: "transient",
			Message: "write refused for now: " + reason}
	}
}
