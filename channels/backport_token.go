package channels

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fhirsub/fhirsub/conformance/smart"
)

// Binding token claims fixed by this server.
const (
	bindingIssuer   = "fhirsub"
	bindingAudience = "fhirsub-ws-binding"
	// maxBindingToken bounds the tokens Verify looks at.
	maxBindingToken = 16 << 10
)

// MaxTokenSubscriptions is the most subscriptions one binding token names.
const MaxTokenSubscriptions = 100

// ErrBindingToken is matched (errors.Is) by every error of
// BindingTokens.Verify.
var ErrBindingToken = errors.New("invalid or expired binding token")

// BindingToken is the answer of $get-ws-binding-token.
type BindingToken struct {
	// Token is the signed JWT to send in bind-with-token.
	Token string
	// Expires is when the token stops being accepted for a bind.
	Expires time.Time
	// Subscriptions are the ids of the subscriptions it binds.
	Subscriptions []string
	// URL is the websocket URL to connect to (ws:// or wss://).
	URL string
}

// BindingClaims is what a verified binding token carries.
type BindingClaims struct {
	// Subscriptions are the ids of the subscriptions the token binds.
	Subscriptions []string
	// Access is the access of the caller the token was issued to.
	Access *smart.Access
	// Expires is the token's exp.
	Expires time.Time
	// BearerExpires is the exp of the bearer token the binding token was
	// issued to (zero when it had none, e.g. authentication off): a
	// connection bound with the token closes then.
	BearerExpires time.Time
}

// BindingTokensConfig configures BindingTokens. Zero values mean defaults.
type BindingTokensConfig struct {
	// Secret is the HS256 key (at least 32 bytes). Empty: a random key
	// made per process — tokens then bind only on the node that issued
	// them, so several nodes behind one URL must share a configured secret.
	Secret []byte
	// TTL is how long a token may be used to bind (default 5 minutes, at
	// most one hour).
	TTL time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// BindingTokens issues and verifies the short-lived tokens of the Backport
// websocket channel: HS256 JWTs (golang-jwt/v5) bound to subscription ids
// and to the caller's access. Safe for concurrent use.
type BindingTokens struct {
	secret []byte
	ttl    time.Duration
	now    func() time.Time
	parser *jwt.Parser
	lax    *jwt.Parser // also accepts expired tokens (unbind)
}

// bindingJWT is the claim set of a binding token.
type bindingJWT struct {
	jwt.RegisteredClaims
	Use           string           `json:"token_use"`
	Subscriptions []string         `json:"subscriptions"`
	Access        json.RawMessage  `json:"access"`
	BearerExp     *jwt.NumericDate `json:"bearer_exp,omitempty"`
}

// NewBindingTokens checks cfg and returns the issuer/verifier.
func NewBindingTokens(cfg BindingTokensConfig) (*BindingTokens, error) {
	if cfg.TTL == 0 {
		cfg.TTL = 5 * time.Minute
	}
	if cfg.TTL < 0 || cfg.TTL > time.Hour {
		return nil, fmt.Errorf("binding tokens: ttl %v out of range (0 to 1h)", cfg.TTL)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	secret := cfg.Secret
	switch {
	case len(secret) == 0:
		secret = make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return nil, fmt.Errorf("binding tokens: random secret: %w", err)
		}
	case len(secret) < 32:
		return nil, fmt.Errorf("binding tokens: the secret must be at least 32 bytes, got %d", len(secret))
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(bindingIssuer),
		jwt.WithAudience(bindingAudience),
		jwt.WithTimeFunc(cfg.Now),
		jwt.WithLeeway(5 * time.Second),
	}
	return &BindingTokens{
		secret: secret,
		ttl:    cfg.TTL,
		now:    cfg.Now,
		parser: jwt.NewParser(append(opts, jwt.WithExpirationRequired())...),
		lax:    jwt.NewParser(append(opts, jwt.WithoutClaimsValidation())...),
	}, nil
}

// TTL returns the lifetime of the tokens issued.
func (t *BindingTokens) TTL() time.Duration { return t.ttl }

// Issue signs a token for the subscription ids (1 to MaxTokenSubscriptions)
// on behalf of acc, and returns it with its expiry: the TTL, but never
// later than the exp of acc's bearer token (a binding token does not
// outlive the token that obtained it), which the token also carries
// (BindingClaims.BearerExpires).
func (t *BindingTokens) Issue(acc *smart.Access, ids []string) (string, time.Time, error) {
	if len(ids) == 0 || len(ids) > MaxTokenSubscriptions {
		return "", time.Time{}, fmt.Errorf("binding token: %d subscriptions (want 1 to %d)", len(ids), MaxTokenSubscriptions)
	}
	enc, err := acc.Encode()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("binding token: %w", err)
	}
	jti := make([]byte, 12)
	if _, err := rand.Read(jti); err != nil {
		return "", time.Time{}, fmt.Errorf("binding token: %w", err)
	}
	now := t.now().Truncate(time.Second)
	exp := now.Add(t.ttl)
	var bearerExp *jwt.NumericDate
	if be := expiryOf(acc); !be.IsZero() {
		bearerExp = jwt.NewNumericDate(be)
		if be.Before(exp) {
			exp = be
		}
	}
	c := bindingJWT{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    bindingIssuer,
			Subject:   acc.Subject,
			Audience:  jwt.ClaimStrings{bindingAudience},
			ExpiresAt: jwt.NewNumericDate(exp),
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ID:        fmt.Sprintf("%x", jti),
		},
		Use:           "ws-binding",
		Subscriptions: ids,
		Access:        enc,
		BearerExp:     bearerExp,
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(t.secret)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("binding token: sign: %w", err)
	}
	return s, exp, nil
}

// Verify checks a token's signature, issuer, audience, use and expiry and
// returns its claims. Every error matches ErrBindingToken.
func (t *BindingTokens) Verify(raw string) (*BindingClaims, error) {
	return t.verify(t.parser, raw)
}

// VerifyIgnoringExpiry is Verify without the time checks: a client may
// unbind with the token it bound with, even after it expired.
func (t *BindingTokens) VerifyIgnoringExpiry(raw string) (*BindingClaims, error) {
	return t.verify(t.lax, raw)
}

func (t *BindingTokens) verify(p *jwt.Parser, raw string) (*BindingClaims, error) {
	if raw == "" || len(raw) > maxBindingToken {
		return nil, fmt.Errorf("%w: empty or longer than %d bytes", ErrBindingToken, maxBindingToken)
	}
	var c bindingJWT
	if _, err := p.ParseWithClaims(raw, &c, func(*jwt.Token) (any, error) { return t.secret, nil }); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBindingToken, err)
	}
	if c.Use != "ws-binding" {
		return nil, fmt.Errorf("%w: not a websocket binding token", ErrBindingToken)
	}
	if len(c.Subscriptions) == 0 || len(c.Subscriptions) > MaxTokenSubscriptions {
		return nil, fmt.Errorf("%w: %d subscriptions", ErrBindingToken, len(c.Subscriptions))
	}
	acc, err := smart.Decode(c.Access)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBindingToken, err)
	}
	out := &BindingClaims{Subscriptions: c.Subscriptions, Access: acc}
	if c.ExpiresAt != nil {
		out.Expires = c.ExpiresAt.Time
	}
	if c.BearerExp != nil {
		out.BearerExpires = c.BearerExp.Time
	}
	return out, nil
}
