package web

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	maxJWKSBytes = 1 << 20
	maxJWKSKeys  = 64
)

// keyError is a key lookup failure with a client-safe description.
type keyError struct{ desc string }

func (e *keyError) Error() string { return e.desc }

// jwk is one usable verification key of a JWKS.
type jwk struct {
	kid string
	alg string // "RS256" or "ES256"
	key any    // *rsa.PublicKey or *ecdsa.PublicKey
}

// keySource holds the keys of a JWKS file or URL and reloads them lazily.
type keySource struct {
	src         string
	client      *http.Client
	log         func(msg string, args ...any)
	now         func() time.Time
	refresh     time.Duration
	minInterval time.Duration

	loadMu    sync.Mutex // serialises loads; guards attempted
	attempted time.Time

	mu     sync.RWMutex // guards keys and loaded
	keys   []jwk
	loaded time.Time
}

func newKeySource(cfg AuthConfig) *keySource {
	return &keySource{
		src: cfg.JWKS, client: cfg.HTTPClient, now: cfg.Now,
		refresh: cfg.RefreshInterval, minInterval: cfg.MinRefreshInterval,
		log: func(msg string, args ...any) { cfg.Logger.Warn(msg, args...) },
	}
}

func (s *keySource) isURL() bool {
	return strings.HasPrefix(s.src, "https://") || strings.HasPrefix(s.src, "http://")
}

// load fetches and parses the key set and replaces the current keys.
func (s *keySource) load(ctx context.Context) error {
	raw, err := s.fetch(ctx)
	if err != nil {
		return err
	}
	keys, err := parseJWKS(raw)
	if err != nil {
		return fmt.Errorf("jwks %s: %w", s.src, err)
	}
	s.mu.Lock()
	s.keys, s.loaded = keys, s.now()
	s.mu.Unlock()
	return nil
}

func (s *keySource) fetch(ctx context.Context) ([]byte, error) {
	if !s.isURL() {
		f, err := os.Open(s.src)
		if err != nil {
			return nil, fmt.Errorf("read jwks: %w", err)
		}
		defer func() { _ = f.Close() }() // read only: closing cannot lose data
		return readLimited(f, s.src)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.src, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch jwks: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch jwks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch jwks %s: status %d", s.src, resp.StatusCode)
	}
	return readLimited(resp.Body, s.src)
}

func readLimited(r io.Reader, name string) ([]byte, error) {
	raw, err := io.ReadAll(io.LimitReader(r, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read jwks %s: %w", name, err)
	}
	if len(raw) > maxJWKSBytes {
		return nil, fmt.Errorf("jwks %s is larger than %d bytes", name, maxJWKSBytes)
	}
	return raw, nil
}

// tryLoad reloads the keys unless a load was attempted less than
// minInterval ago. Failures keep the current keys and are logged.
func (s *keySource) tryLoad(ctx context.Context, wait bool) {
	if wait {
		s.loadMu.Lock()
	} else if !s.loadMu.TryLock() {
		return // another request is loading; use the current keys
	}
	defer s.loadMu.Unlock()
	now := s.now()
	if !s.attempted.IsZero() && now.Sub(s.attempted) < s.minInterval {
		return
	}
	s.attempted = now
	if err := s.load(ctx); err != nil {
		s.log("jwks reload failed; keeping the current keys", "jwks", s.src, "err", err)
	}
}

// refreshIfStale reloads the keys when they are older than the refresh
// interval; requests do not wait for a load another request runs.
func (s *keySource) refreshIfStale(ctx context.Context) {
	s.mu.RLock()
	stale := s.now().Sub(s.loaded) >= s.refresh
	s.mu.RUnlock()
	if stale {
		s.tryLoad(ctx, false)
	}
}

// lookup returns the key(s) for a kid and algorithm; an unknown kid causes
// one rate-limited reload (key rotation).
func (s *keySource) lookup(ctx context.Context, kid, alg string) (any, error) {
	if keys := s.find(kid, alg); keys != nil {
		return keys, nil
	}
	s.tryLoad(ctx, true)
	keys := s.find(kid, alg)
	if keys == nil {
		if kid == "" {
			return nil, &keyError{desc: "no " + alg + " key in the key set"}
		}
		return nil, &keyError{desc: fmt.Sprintf("unknown signing key (kid %q)", kid)}
	}
	return keys, nil
}

// find returns the matching keys: by kid when the token names one, else
// every key of the algorithm.
func (s *keySource) find(kid, alg string) any {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var set jwt.VerificationKeySet
	for _, k := range s.keys {
		if k.alg == alg && (kid == "" || k.kid == kid) {
			set.Keys = append(set.Keys, k.key)
		}
	}
	switch len(set.Keys) {
	case 0:
		return nil
	case 1:
		return set.Keys[0]
	}
	return set
}

// parseJWKS reads the RSA (RS256, at least 2048 bits) and EC P-256
// (ES256) signature keys of a JWKS. Other keys (symmetric, encryption,
// other curves) are skipped; a set without a usable key is an error.
func parseJWKS(raw []byte) ([]jwk, error) {
	var set struct {
		Keys []struct {
			Kty string `json:"kty"`
			Kid string `json:"kid"`
			Use string `json:"use"`
			Alg string `json:"alg"`
			N   string `json:"n"`
			E   string `json:"e"`
			Crv string `json:"crv"`
			X   string `json:"x"`
			Y   string `json:"y"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, fmt.Errorf("parse jwks: %w", err)
	}
	if len(set.Keys) > maxJWKSKeys {
		return nil, fmt.Errorf("jwks holds %d keys, at most %d are accepted", len(set.Keys), maxJWKSKeys)
	}
	var out []jwk
	var errs []error
	for i, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		var (
			key any
			alg string
			err error
		)
		switch k.Kty {
		case "RSA":
			alg = "RS256"
			key, err = rsaKey(k.N, k.E)
		case "EC":
			alg = "ES256"
			if k.Crv != "P-256" {
				continue
			}
			key, err = ecKey(k.X, k.Y)
		default:
			continue // "oct" keys never verify here: no algorithm confusion
		}
		if k.Alg != "" && k.Alg != alg {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("key %d (kid %q): %w", i, k.Kid, err))
			continue
		}
		out = append(out, jwk{kid: k.Kid, alg: alg, key: key})
	}
	if len(out) == 0 {
		errs = append(errs, errors.New("no usable RS256 or ES256 signature key"))
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func b64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

func rsaKey(n, e string) (*rsa.PublicKey, error) {
	nb, err := b64(n)
	if err != nil || len(nb) == 0 {
		return nil, errors.New("bad modulus n")
	}
	eb, err := b64(e)
	if err != nil || len(eb) == 0 || len(eb) > 4 {
		return nil, errors.New("bad exponent e")
	}
	exp := 0
	for _, b := range eb {
		exp = exp<<8 | int(b)
	}
	k := &rsa.PublicKey{N: new(big.Int).SetBytes(nb), E: exp}
	if k.N.BitLen() < 2048 {
		return nil, fmt.Errorf("RSA key of %d bits; at least 2048 are required", k.N.BitLen())
	}
	if exp < 3 || exp%2 == 0 {
		return nil, errors.New("bad exponent e")
	}
	return k, nil
}

func ecKey(x, y string) (*ecdsa.PublicKey, error) {
	xb, err1 := b64(x)
	yb, err2 := b64(y)
	if err1 != nil || err2 != nil || len(xb) != 32 || len(yb) != 32 {
		return nil, errors.New("bad P-256 coordinates")
	}
	pt := append(append([]byte{4}, xb...), yb...)
	k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pt)
	if err != nil {
		return nil, errors.New("point is not on the P-256 curve")
	}
	return k, nil
}
