package ui

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// Options are what the dashboard learns from the server at start: whether
// it must sign in, and whether a development login is offered.
type Options struct {
	// AuthRequired is true when the API and the websockets need a bearer
	// token: the dashboard then asks for one before it connects.
	AuthRequired bool
	// DevLogin, when set, mints a short-lived token for the dashboard's
	// one-click development login (GET /ui/dev-login). Leave it nil in
	// production: anyone who can reach the page gets a token.
	DevLogin func(ctx context.Context) (DevToken, error)
}

// DevToken is a token minted for the development login.
type DevToken struct {
	Token   string
	Scope   string
	Expires time.Time
}

// DevLoginHeader must be present on GET /ui/dev-login. A page of another
// origin cannot set it without a CORS preflight, which this server never
// grants, so another site cannot make a visitor's browser fetch a token.
const DevLoginHeader = "X-Fhirsub-Dev-Login"

// authInfo serves GET /ui/auth: {"required": bool, "devLogin": bool}.
func (h *handler) authInfo(w http.ResponseWriter) {
	writeJSON(w, http.StatusOK, map[string]bool{"required": h.opts.AuthRequired, "devLogin": h.opts.DevLogin != nil})
}

// devLogin serves GET /ui/dev-login: a token in the shape of an OAuth 2
// token response, or 404 when the development login is off.
func (h *handler) devLogin(w http.ResponseWriter, r *http.Request) {
	if h.opts.DevLogin == nil {
		http.Error(w, "not found: the development login is off (fhirsub serve --dev-login enables it)", http.StatusNotFound)
		return
	}
	if r.Header.Get(DevLoginHeader) == "" {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "invalid_request",
			"error_description": "the development login needs the " + DevLoginHeader + " header"})
		return
	}
	tok, err := h.opts.DevLogin(r.Context())
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error", "error_description": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok.Token, "token_type": "Bearer", "scope": tok.Scope,
		"expires_in": int(time.Until(tok.Expires).Seconds()),
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
