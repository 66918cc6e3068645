package web

import (
	"context"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/fhirsub/fhirsub/channels"
	"github.com/fhirsub/fhirsub/conformance/smart"
	"github.com/fhirsub/fhirsub/fhirstore"
)

// Backport IG definition of $get-ws-binding-token.
const backportWSTokenOpDef = "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-get-ws-binding-token"

// capabilityWebsocket is the R4 extension naming the websocket URL of the
// classic bind protocol in CapabilityStatement.rest.
const capabilityWebsocket = "http://hl7.org/fhir/StructureDefinition/capabilitystatement-websocket"

// r4WebsocketPath is where the R4 bind protocol is mounted (when it is
// among Config.Handlers, the CapabilityStatement advertises it).
const r4WebsocketPath = "/websocket"

// WSBindingIssuer issues the tokens of $get-ws-binding-token
// (wsbridge.Bridge implements it).
type WSBindingIssuer interface {
	// BindingToken returns a token for the websocket subscriptions ids
	// (none: every one acc may see), bound to acc. Failures carry their
	// HTTP status (StatusError).
	BindingToken(ctx context.Context, acc *smart.Access, ids []string) (channels.BindingToken, error)
}

// wsBindingRoutes mounts $get-ws-binding-token when Config.WSBinding is
// set.
//
//	GET|POST /Subscription/$get-ws-binding-token        ?id=… (several; none: all)
//	GET|POST /Subscription/{id}/$get-ws-binding-token
func (s *Server) wsBindingRoutes() {
	if s.cfg.WSBinding == nil {
		return
	}
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		s.echo.Add(m, "/Subscription/$get-ws-binding-token", s.wsBindingToken)
		s.echo.Add(m, "/Subscription/:id/$get-ws-binding-token", s.wsBindingToken)
	}
}

// wsBindingToken answers $get-ws-binding-token with a Parameters resource:
// token, expiration, one subscription per id and websocket-url.
func (s *Server) wsBindingToken(c echo.Context) error {
	params, err := s.opParams(c)
	if err != nil {
		return err
	}
	ids := params["id"]
	if id := c.Param("id"); id != "" {
		ids = []string{id} // the id parameter is ignored at instance level
	}
	for i, id := range ids {
		id = strings.TrimPrefix(id, "Subscription/")
		if !idPattern.MatchString(id) {
			return &Error{Status: http.StatusBadRequest, Code: "invalid", Expression: []string{"id"},
				Message: "invalid subscription id " + quoteShort(id)}
		}
		ids[i] = id
	}
	ctx := c.Request().Context()
	tok, err := s.cfg.WSBinding.BindingToken(ctx, AccessFrom(ctx), ids)
	if err != nil {
		return err
	}
	out := []any{
		map[string]any{"name": "token", "valueString": tok.Token},
		map[string]any{"name": "expiration", "valueDateTime": fhirstore.FormatInstant(tok.Expires)},
	}
	for _, id := range tok.Subscriptions {
		out = append(out, map[string]any{"name": "subscription", "valueString": "Subscription/" + id})
	}
	out = append(out, map[string]any{"name": "websocket-url", "valueUrl": tok.URL})
	c.Response().Header().Set("Cache-Control", "no-store")
	return writeJSON(c, http.StatusOK, map[string]any{"resourceType": "Parameters", "parameter": out})
}

// quoteShort quotes at most 64 bytes of s for a message.
func quoteShort(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return `"` + strings.ReplaceAll(s, `"`, `'`) + `"`
}

// websocketURL turns the http(s) base into the ws(s) URL of path.
func websocketURL(base, path string) string {
	switch {
	case strings.HasPrefix(base, "https://"):
		return "wss://" + strings.TrimPrefix(base, "https://") + path
	case strings.HasPrefix(base, "http://"):
		return "ws://" + strings.TrimPrefix(base, "http://") + path
	}
	return base + path
}
