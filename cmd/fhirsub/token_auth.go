package main

import (
	"context"
	"errors"
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
	if err := s.check(addr); err != nil {
		return nil, err
	}
	mode, _ := s.mode()
	if mode == "off" {
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

// mode resolves the authentication mode: the one named, else hs256 with a
// secret, jwks with a JWKS, off with neither.
func (s authSettings) mode() (string, error) {
	mode := strings.ToLower(strings.TrimSpace(s.Mode))
	if mode != "" {
		return mode, nil
	}
	switch {
	case s.Secret != "" && s.JWKS != "":
		return "", errors.New("--jwt-secret (FHIRSUB_JWT_SECRET) and --jwks (FHIRSUB_JWKS) are both set; choose with --auth (FHIRSUB_AUTH) hs256 or jwks")
	case s.Secret != "":
		return web.AuthHS256, nil
	case s.JWKS != "":
		return web.AuthJWKS, nil
	}
	return "off", nil
}

// check validates the settings without opening anything (a JWKS URL is
// fetched only by authenticator), in this order: the mode, off only on a
// loopback address or with --insecure, the secret or JWKS the mode needs,
// the leeway.
func (s authSettings) check(addr string) error {
	mode, err := s.mode()
	if err != nil {
		return err
	}
	switch mode {
	case "off":
		if !s.Insecure && !isLoopback(addr) {
			return fmt.Errorf("--addr (FHIRSUB_ADDR): authentication is off but %s is not a loopback address; "+
				"set --auth hs256 --jwt-secret … or --auth jwks --jwks …, or pass --insecure (FHIRSUB_INSECURE=true)", addr)
		}
	case web.AuthHS256:
		if len(s.Secret) < 32 {
			return fmt.Errorf("--jwt-secret (FHIRSUB_JWT_SECRET): hs256 needs a secret of at least 32 bytes, got %d", len(s.Secret))
		}
		if s.JWKS != "" {
			return errors.New("--jwks (FHIRSUB_JWKS): hs256 takes a secret, not a JWKS")
		}
	case web.AuthJWKS:
		if s.JWKS == "" {
			return errors.New("--jwks (FHIRSUB_JWKS): jwks needs a JWKS file or URL")
		}
		if s.Secret != "" {
			return errors.New("--jwt-secret (FHIRSUB_JWT_SECRET): jwks takes no shared secret")
		}
	default:
		return settingError("auth", "FHIRSUB_AUTH", s.Mode, "is not off, hs256 or jwks")
	}
	if s.Leeway > 5*time.Minute {
		return settingError("jwt-leeway", "FHIRSUB_JWT_LEEWAY", s.Leeway.String(), "is longer than 5m")
	}
	return nil
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
