package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fhirsub/fhirsub/conformance/smart"
)

// Authentication modes of AuthConfig.Mode.
const (
	// AuthHS256 verifies HS256 tokens with a shared secret.
	AuthHS256 = "hs256"
	// AuthJWKS verifies RS256 and ES256 tokens with the keys of a JWKS file
	// or URL.
	AuthJWKS = "jwks"
)

// AuthConfig configures an Authenticator. Zero values mean defaults.
type AuthConfig struct {
	// Mode is AuthHS256 or AuthJWKS (required).
	Mode string
	// Secret is the HS256 shared secret (AuthHS256; at least 32 bytes).
	Secret []byte
	// JWKS is a JWKS file path or an http(s) URL (AuthJWKS).
	JWKS string
	// Issuer, when set, must equal the token's iss.
	Issuer string
	// Audience, when set, must be among the token's aud.
	Audience string
	// Leeway is the clock skew allowed on exp, nbf and iat (default 30s,
	// at most 5 minutes).
	Leeway time.Duration
	// RefreshInterval is how old the JWKS may get before a request
	// reloads it (default 10 minutes).
	RefreshInterval time.Duration
	// MinRefreshInterval is the least time between two JWKS loads, also
	// when tokens carry unknown key ids (default 30 seconds).
	MinRefreshInterval time.Duration
	// HTTPClient fetches a JWKS URL (default: a client with a 10 s timeout).
	HTTPClient *http.Client
	// Logger receives JWKS refresh failures (default: discard).
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// maxTokenBytes bounds the tokens Verify looks at.
const maxTokenBytes = 16 << 10

// ErrInvalidToken is matched (errors.Is) by every error of Verify.
var ErrInvalidToken = errors.New("invalid token")

// TokenError is a rejected bearer token. Description is safe to show to
// the client (RFC 6750 error_description).
type TokenError struct {
	Description string
	Err         error
}

// Error implements error.
func (e *TokenError) Error() string {
	if e.Err != nil {
		return "invalid token: " + e.Description + ": " + e.Err.Error()
	}
	return "invalid token: " + e.Description
}

// Unwrap exposes the cause.
func (e *TokenError) Unwrap() error { return e.Err }

// Is makes every TokenError match ErrInvalidToken.
func (e *TokenError) Is(target error) bool { return target == ErrInvalidToken }

func tokenErr(desc string, err error) *TokenError {
	return &TokenError{Description: sanitize(desc), Err: err}
}

// Authenticator verifies bearer JWTs and turns them into *smart.Access. It
// is safe for concurrent use and starts no goroutine: a JWKS URL is
// reloaded lazily by the requests that find it stale or meet an unknown
// key id.
type Authenticator struct {
	cfg     AuthConfig
	methods []string
	parser  *jwt.Parser
	keys    *keySource // AuthJWKS only
}

// NewAuthenticator validates cfg and, in AuthJWKS mode, loads the key set
// once (a failure is returned: the server must not start without keys).
func NewAuthenticator(ctx context.Context, cfg AuthConfig) (*Authenticator, error) {
	if cfg.Leeway == 0 {
		cfg.Leeway = 30 * time.Second
	}
	if cfg.Leeway < 0 || cfg.Leeway > 5*time.Minute {
		return nil, fmt.Errorf("auth: leeway %v out of range (0 to 5m)", cfg.Leeway)
	}
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = 10 * time.Minute
	}
	if cfg.MinRefreshInterval <= 0 {
		cfg.MinRefreshInterval = 30 * time.Second
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &Authenticator{cfg: cfg}
	switch cfg.Mode {
	case AuthHS256:
		if len(cfg.Secret) < 32 {
			return nil, fmt.Errorf("auth: the HS256 secret must be at least 32 bytes, got %d", len(cfg.Secret))
		}
		if cfg.JWKS != "" {
			return nil, errors.New("auth: hs256 mode takes a secret, not a JWKS")
		}
		a.methods = []string{jwt.SigningMethodHS256.Alg()}
	case AuthJWKS:
		if cfg.JWKS == "" {
			return nil, errors.New("auth: jwks mode needs a JWKS file or URL")
		}
		if len(cfg.Secret) > 0 {
			return nil, errors.New("auth: jwks mode takes no shared secret")
		}
		a.methods = []string{jwt.SigningMethodRS256.Alg(), jwt.SigningMethodES256.Alg()}
		a.keys = newKeySource(cfg)
		a.keys.attempted = cfg.Now()
		if err := a.keys.load(ctx); err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
	default:
		return nil, fmt.Errorf("auth: unknown mode %q (want %s or %s)", cfg.Mode, AuthHS256, AuthJWKS)
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(a.methods),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Now),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithStrictDecoding(),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	a.parser = jwt.NewParser(opts...)
	return a, nil
}

// Verify checks a raw JWT (without the "Bearer " prefix): algorithm,
// signature, exp/nbf/iat with the leeway, iss and aud, and the SMART
// claims. Every error matches ErrInvalidToken and is a *TokenError whose
// Description may be shown to the client. Verify is usable outside echo,
// for example by websocket handlers.
func (a *Authenticator) Verify(ctx context.Context, rawToken string) (*smart.Access, error) {
	if rawToken == "" {
		return nil, tokenErr("empty token", nil)
	}
	if len(rawToken) > maxTokenBytes {
		return nil, tokenErr(fmt.Sprintf("token longer than %d bytes", maxTokenBytes), nil)
	}
	if a.keys != nil {
		a.keys.refreshIfStale(ctx)
	}
	tok, err := a.parser.Parse(rawToken, a.keyFunc(ctx))
	if err != nil {
		return nil, a.describe(tok, err)
	}
	claims, ok := tok.Claims.(jwt.MapClaims)
	if !ok {
		return nil, tokenErr("unexpected claims", nil)
	}
	acc, err := smart.FromClaims(claims)
	if err != nil {
		return nil, tokenErr(err.Error(), err)
	}
	return acc, nil
}

// keyFunc returns the verification key(s) of a token whose algorithm the
// parser already checked against a.methods.
func (a *Authenticator) keyFunc(ctx context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		if a.keys == nil {
			return a.cfg.Secret, nil
		}
		kid, _ := t.Header["kid"].(string)
		return a.keys.lookup(ctx, kid, t.Method.Alg())
	}
}

// describe turns a jwt parse error into a TokenError with a short, safe
// description.
func (a *Authenticator) describe(tok *jwt.Token, err error) error {
	if tok != nil && tok.Header != nil {
		alg, _ := tok.Header["alg"].(string)
		allowed := false
		for _, m := range a.methods {
			allowed = allowed || m == alg
		}
		if !allowed {
			return tokenErr(fmt.Sprintf("signing algorithm %q not accepted (want %s)", alg, strings.Join(a.methods, " or ")), err)
		}
	}
	var ke *keyError
	switch {
	case errors.As(err, &ke):
		return tokenErr(ke.desc, err)
	case errors.Is(err, jwt.ErrTokenMalformed):
		return tokenErr("malformed token", err)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return tokenErr("invalid signature", err)
	case errors.Is(err, jwt.ErrTokenExpired):
		return tokenErr("token expired", err)
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return tokenErr("token not valid yet (nbf)", err)
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return tokenErr("token issued in the future (iat)", err)
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return tokenErr("wrong issuer", err)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return tokenErr("wrong audience", err)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return tokenErr("a required claim is missing (exp, and iss or aud when configured)", err)
	case errors.Is(err, jwt.ErrInvalidType):
		return tokenErr("a registered claim has the wrong type", err)
	}
	return tokenErr("token rejected", err)
}

// sanitize keeps a description printable ASCII without quotes or
// backslashes, so that it can go into a WWW-Authenticate header.
func sanitize(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s) && len(b) < 200; i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\'')
		case c < 0x20 || c > 0x7e:
			b = append(b, '?')
		default:
			b = append(b, c)
		}
	}
	return string(b)
}
