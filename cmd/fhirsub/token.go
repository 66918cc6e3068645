package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/fhirsub/fhirsub/conformance/smart"
)

var patientIDPattern = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

// tokenCmd mints an HS256 development token and prints it:
//
//	fhirsub token --secret S --scope 'patient/*.rs' --patient 123 [--sub dev] [--ttl 1h] [--iss I] [--aud A]
func tokenCmd(_ context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fhirsub token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	secret := fs.String("secret", getenv("FHIRSUB_JWT_SECRET"), "HS256 shared secret, at least 32 bytes (env FHIRSUB_JWT_SECRET)")
	scope := fs.String("scope", "user/*.rs", "space-separated SMART scopes, v1 or v2 (e.g. 'patient/*.rs launch/patient')")
	patient := fs.String("patient", "", "patient in context (the patient claim); limits the token to that patient's compartment")
	fhirUser := fs.String("fhir-user", "", "fhirUser claim (e.g. Practitioner/1)")
	sub := fs.String("sub", "dev", "subject (sub claim)")
	ttl := fs.Duration("ttl", time.Hour, "lifetime (exp = now + ttl)")
	iss := fs.String("iss", getenv("FHIRSUB_JWT_ISSUER"), "issuer (iss claim; env FHIRSUB_JWT_ISSUER)")
	aud := fs.String("aud", getenv("FHIRSUB_JWT_AUDIENCE"), "audience (aud claim; env FHIRSUB_JWT_AUDIENCE)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: fhirsub token --secret S [--scope SCOPES] [--patient ID] [flags]\n\n"+
			"Prints an HS256 JWT for development and tests. Flags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("token: unexpected argument %q", fs.Arg(0))
	}
	tok, err := mintToken(mintOptions{Secret: []byte(*secret), Scope: *scope, Patient: *patient, FHIRUser: *fhirUser,
		Subject: *sub, TTL: *ttl, Issuer: *iss, Audience: *aud, Now: time.Now()})
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}

// mintOptions are the claims of a development token.
type mintOptions struct {
	Secret                    []byte
	Scope, Patient, FHIRUser  string
	Subject, Issuer, Audience string
	TTL                       time.Duration
	Now                       time.Time
}

// mintToken signs an HS256 token after checking what the server would
// refuse anyway (short secret, invalid scope or patient id).
func mintToken(o mintOptions) (string, error) {
	if len(o.Secret) < 32 {
		return "", errors.New("--secret (or FHIRSUB_JWT_SECRET) of at least 32 bytes is required")
	}
	if _, err := smart.ParseScopes(o.Scope); err != nil {
		return "", fmt.Errorf("--scope: %w", err)
	}
	if strings.TrimSpace(o.Scope) == "" {
		return "", errors.New("--scope: at least one scope is required")
	}
	if o.Patient != "" && !patientIDPattern.MatchString(o.Patient) {
		return "", fmt.Errorf("--patient: %q is not a FHIR id", o.Patient)
	}
	if o.TTL <= 0 || o.TTL > 366*24*time.Hour {
		return "", fmt.Errorf("--ttl: %v is out of range (0 to 366 days)", o.TTL)
	}
	c := jwt.MapClaims{
		"sub": o.Subject, "scope": o.Scope, "jti": uuid.NewString(),
		"iat": o.Now.Unix(), "exp": o.Now.Add(o.TTL).Unix(),
	}
	if o.Patient != "" {
		c["patient"] = o.Patient
	}
	if o.FHIRUser != "" {
		c["fhirUser"] = o.FHIRUser
	}
	if o.Issuer != "" {
		c["iss"] = o.Issuer
	}
	if o.Audience != "" {
		c["aud"] = o.Audience
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(o.Secret)
}
