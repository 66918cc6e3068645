package main

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/fhirsub/fhirsub/web"
	"github.com/fhirsub/fhirsub/web/ui"
)

// Development login (--dev-login / FHIRSUB_DEV_LOGIN): the dashboard's
// "Development login" button gets a token from GET /ui/dev-login without
// pasting one. Anyone who can load the page can then act with that token,
// so it is refused unless
//
//   - authentication is HS256 with --jwt-secret (never with a JWKS: tokens
//     then come from an identity provider, and fhirsub must not mint its
//     own beside them; never with authentication off, where it is useless);
//   - the server listens on loopback only (or --insecure is given, the same
//     escape hatch as running without authentication).
//
// Tokens last devLoginTTL and carry devLoginScope (the dashboard reads every
// type, acknowledges results and manages Subscriptions).
const (
	devLoginTTL   = time.Hour
	devLoginScope = "user/*.cruds"
)

// dashboardOptions are the ui.Options of the settings; it fails when
// --dev-login is set where it is refused.
func dashboardOptions(cfg *config, authOn bool, log *slog.Logger) (ui.Options, error) {
	o := ui.Options{AuthRequired: authOn}
	if !cfg.DevLogin {
		return o, nil
	}
	s := cfg.Auth
	mode := strings.ToLower(strings.TrimSpace(s.Mode))
	switch {
	case mode == web.AuthJWKS || (mode == "" && s.JWKS != ""):
		return o, errors.New("dev-login: refused with --auth jwks: tokens come from your identity provider (use the dashboard's token sign-in)")
	case !authOn || s.Secret == "":
		return o, errors.New("dev-login: needs HS256 authentication (--jwt-secret); with authentication off the dashboard needs no login")
	case !s.Insecure && !isLoopback(cfg.Addr):
		return o, errors.New("dev-login: " + cfg.Addr + " is not a loopback address: anyone reaching the page would get a token (pass --insecure to accept that)")
	}
	log.Warn("development login enabled: GET /ui/dev-login mints "+devLoginTTL.String()+" tokens for anyone who can reach the dashboard", "scope", devLoginScope)
	o.DevLogin = func(context.Context) (ui.DevToken, error) {
		now := time.Now()
		tok, err := mintToken(mintOptions{Secret: []byte(s.Secret), Scope: devLoginScope, Subject: "dev-login",
			TTL: devLoginTTL, Issuer: s.Issuer, Audience: s.Audience, Now: now})
		if err != nil {
			return ui.DevToken{}, err
		}
		log.Info("development login: token minted", "scope", devLoginScope, "ttl", devLoginTTL)
		return ui.DevToken{Token: tok, Scope: devLoginScope, Expires: now.Add(devLoginTTL)}, nil
	}
	return o, nil
}
