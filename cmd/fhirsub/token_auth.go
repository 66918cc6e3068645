package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/fhirsub/fhirsub/web"
)

// authSettings are the authentication flags of `fhirsub serve`:
//
//	--auth off|hs256|jwks   FHIRSUB_AUTH          (default: hs256 if a secret is set, jwks if a JWKS is set, else off)
//	--jwt-secret S          FHIRSUB_JWT_SECRET
//	--jwks FILE|URL         FHIRSUB_JWKS
//	--jwt-issuer I          FHIRSUB_JWT_ISSUER
//	--jwt-audience A        FHIRSUB_JWT_AUDIENCE
//	--jwt-leeway 30s        FHIRSUB_JWT_LEEWAY
//	--insecure              FHIRSUB_INSECURE      (allow auth off on a non-loopback address)
type authSettings struct {
	Mode, Secret, JWKS, Issuer, Audience string
	Leeway                               time.Duration
	Insecure                             bool
}

// authenticator builds the web.Authenticator of the settings, or nil when
// authentication is off. Off is refused unless addr is a loopback address
// or Insecure is set.
func (s authSettings) authenticator(ctx context.Context, addr string, log *slog.Logger) (*web.Authenticator, error) {
	mode := strings.ToLower(strings.TrimSpace(s.Mode))
	if mode == "" {
		switch {
		case s.Secret != "" && s.JWKS != "":
			return nil, fmt.Errorf("auth: both a JWT secret and a JWKS are set; choose with --auth hs256 or --auth jwks")
		case s.Secret != "":
			mode = web.AuthHS256
		case s.JWKS != "":
			mode = web.AuthJWKS
		default:
			mode = "off"
		}
	}
	if mode == "off" {
		if !s.Insecure && !isLoopback(addr) {
			return nil, fmt.Errorf("auth: authentication is off but %s is not a loopback address; "+
				"set --auth hs256 --jwt-secret … or --auth jwks --jwks …, or pass --insecure", addr)
		}
		if !isLoopback(addr) {
			log.Warn("authentication is OFF on a non-loopback address (--insecure)", "addr", addr)
		}
		return nil, nil
	}
	cfg := web.AuthConfig{Mode: mode, Issuer: s.Issuer, Audience: s.Audience, Leeway: s.Leeway, Logger: log}
	switch mode {
	case web.AuthHS256:
		cfg.Secret = []byte(s.Secret)
	case web.AuthJWKS:
		cfg.JWKS = s.JWKS
	}
	return web.NewAuthenticator(ctx, cfg)
}

// isLoopback reports whether a listen address binds to loopback only
// ("127.0.0.1:8080", "[::1]:80", "localhost:8080"); ":8080" binds to every
// interface.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
