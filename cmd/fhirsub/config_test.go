package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestParseConfig: typed flags, the environment as fallback, the flag
// winning over its variable.
func TestParseConfig(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(*config) any // returns the observed value
		want  any
	}{
		{"default workers", nil, nil, func(c *config) any { return c.DeliveryWorkers }, 64},
		{"int flag", []string{"--delivery-workers", "4"}, nil, func(c *config) any { return c.DeliveryWorkers }, 4},
		{"int env", nil, map[string]string{"FHIRSUB_DELIVERY_WORKERS": "7"}, func(c *config) any { return c.DeliveryWorkers }, 7},
		{"flag wins over env", []string{"--delivery-workers=3"}, map[string]string{"FHIRSUB_DELIVERY_WORKERS": "7"}, func(c *config) any { return c.DeliveryWorkers }, 3},
		{"flag wins over a bad env", []string{"--delivery-workers=3"}, map[string]string{"FHIRSUB_DELIVERY_WORKERS": "x"}, func(c *config) any { return c.DeliveryWorkers }, 3},
		{"duration flag", []string{"--retry-max", "90s"}, nil, func(c *config) any { return c.RetryMax }, 90 * time.Second},
		{"duration env", nil, map[string]string{"FHIRSUB_RETRY_BASE": "250ms"}, func(c *config) any { return c.RetryBase }, 250 * time.Millisecond},
		{"insecure is a switch", []string{"--insecure", "--addr", "0.0.0.0:8080"}, nil, func(c *config) any { return c.Auth.Insecure }, true},
		{"insecure from env", []string{"--addr", "0.0.0.0:8080"}, map[string]string{"FHIRSUB_INSECURE": "1"}, func(c *config) any { return c.Auth.Insecure }, true},
		{"insecure=false beats env", []string{"--insecure=false"}, map[string]string{"FHIRSUB_INSECURE": "true"}, func(c *config) any { return c.Auth.Insecure }, false},
		{"conditional delete single by default", nil, nil, func(c *config) any { return c.ConditionalDeleteMultiple }, false},
		{"conditional delete multiple from env", nil, map[string]string{"FHIRSUB_CONDITIONAL_DELETE_MULTIPLE": "true"}, func(c *config) any { return c.ConditionalDeleteMultiple }, true},
		{"int64", []string{"--max-body", "2048"}, nil, func(c *config) any { return c.MaxBodyBytes }, int64(2048)},
		{"list", nil, map[string]string{"FHIRSUB_RESTHOOK_ALLOW": " 127.0.0.1/32, ,10.0.0.0/8"}, func(c *config) any { return c.RestHookAllow }, []string{"127.0.0.1/32", "10.0.0.0/8"}},
		{"base url trimmed", []string{"--base-url", "https://fhir.example.org/r4/"}, nil, func(c *config) any { return c.BaseURL }, "https://fhir.example.org/r4"},
		{"data cleaned", []string{"--data", "a/b/../c/"}, nil, func(c *config) any { return c.DataDir }, filepath.Clean("a/c")},
		{"zero leeway allowed", []string{"--jwt-leeway", "0s"}, nil, func(c *config) any { return c.Auth.Leeway }, time.Duration(0)},
		{"mongo from env", nil, map[string]string{"MONGODB_URI": "mongodb://db:27017", "MONGODB_DATABASE": "x"}, func(c *config) any { return c.MongoURI + " " + c.MongoDatabase }, "mongodb://db:27017 x"},
		{"node id default", nil, nil, func(c *config) any { return c.NodeID != "" }, true},
		{"max notification lag default", nil, nil, func(c *config) any { return c.MaxNotificationLag }, 10 * time.Second},
		{"max notification lag from env", nil, map[string]string{"FHIRSUB_MAX_NOTIFICATION_LAG": "250ms"}, func(c *config) any { return c.MaxNotificationLag }, 250 * time.Millisecond},
		{"cors origins", []string{"--cors-origins", "https://app.example.org,http://localhost:3000"}, nil, func(c *config) any { return c.CORSOrigins }, []string{"https://app.example.org", "http://localhost:3000"}},
		{"cors any origin with auth on", []string{"--cors-origins", "*"}, map[string]string{"FHIRSUB_JWT_SECRET": strings.Repeat("s", 32)}, func(c *config) any { return c.CORSOrigins }, []string{"*"}},
		{"max notification lag off", []string{"--max-notification-lag", "0"}, nil, func(c *config) any { return c.MaxNotificationLag }, time.Duration(0)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig(tc.args, func(k string) string { return tc.env[k] }, io.Discard)
			if err != nil {
				t.Fatalf("parseConfig(%q, %v): %v", tc.args, tc.env, err)
			}
			if got := tc.check(c); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

// TestParseConfigErrors: every bad value is refused naming the flag and its
// environment variable, whichever it came from, and the first problem in
// the documented order is the one reported.
func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string // the whole error message
	}{
		{"int flag", []string{"--delivery-workers", "x"}, nil, `--delivery-workers (FHIRSUB_DELIVERY_WORKERS): "x" is not a number`},
		{"int env", nil, map[string]string{"FHIRSUB_DELIVERY_WORKERS": "x"}, `--delivery-workers (FHIRSUB_DELIVERY_WORKERS): "x" is not a number`},
		{"int below minimum", []string{"--partitions", "0"}, nil, `--partitions (FHIRSUB_PARTITIONS): "0" is less than 1`},
		{"negative max-body", []string{"--max-body", "-3"}, nil, `--max-body (FHIRSUB_MAX_BODY_BYTES): "-3" is less than 1`},
		{"duration", []string{"--retry-max", "10"}, nil, `--retry-max (FHIRSUB_RETRY_MAX): "10" is not a duration (e.g. 30s, 5m, 1h)`},
		{"duration env", nil, map[string]string{"FHIRSUB_LEASE_TTL": "-1s"}, `--lease-ttl (FHIRSUB_LEASE_TTL): "-1s" must be positive`},
		{"negative duration", []string{"--shutdown-timeout=-1s"}, nil, `--shutdown-timeout (FHIRSUB_SHUTDOWN_TIMEOUT): "-1s" must not be negative`},
		{"bool env", nil, map[string]string{"FHIRSUB_INSECURE": "maybe"}, `--insecure (FHIRSUB_INSECURE): "maybe" is not true or false`},
		{"bool flag", []string{"--insecure=maybe"}, nil, `--insecure (FHIRSUB_INSECURE): "maybe" is not true or false`},
		{"first bad flag wins", []string{"--retry-max", "x", "--delivery-workers", "y"}, nil, `--retry-max (FHIRSUB_RETRY_MAX): "x" is not a duration (e.g. 30s, 5m, 1h)`},
		{"env in table order", nil, map[string]string{"FHIRSUB_DELIVERY_WORKERS": "y", "FHIRSUB_MAX_BODY_BYTES": "z"}, `--max-body (FHIRSUB_MAX_BODY_BYTES): "z" is not a number`},
		{"flags before env", []string{"--retry-max", "x"}, map[string]string{"FHIRSUB_MAX_BODY_BYTES": "z"}, `--retry-max (FHIRSUB_RETRY_MAX): "x" is not a duration (e.g. 30s, 5m, 1h)`},
		{"addr", []string{"--addr", "nohost"}, nil, `--addr (FHIRSUB_ADDR): "nohost" is not host:port`},
		{"log level", []string{"--log-level", "loud"}, nil, `--log-level (FHIRSUB_LOG_LEVEL): "loud" is not debug, info, warn or error`},
		{"log format", nil, map[string]string{"FHIRSUB_LOG_FORMAT": "xml"}, `--log-format (FHIRSUB_LOG_FORMAT): "xml" is not text or json`},
		{"addr before log format", []string{"--addr", "x", "--log-format", "xml"}, nil, `--addr (FHIRSUB_ADDR): "x" is not host:port`},
		{"binding secret", []string{"--ws-binding-secret", "short"}, nil, `--ws-binding-secret (FHIRSUB_WS_BINDING_SECRET): must be at least 32 bytes`},
		{"binding ttl", []string{"--ws-binding-ttl", "2h"}, nil, `--ws-binding-ttl (FHIRSUB_WS_BINDING_TTL): "2h0m0s" is longer than 1h`},
		{"auth mode", []string{"--auth", "basic"}, nil, `--auth (FHIRSUB_AUTH): "basic" is not off, hs256 or jwks`},
		{"short secret", nil, map[string]string{"FHIRSUB_JWT_SECRET": "tiny"}, `--jwt-secret (FHIRSUB_JWT_SECRET): hs256 needs a secret of at least 32 bytes, got 4`},
		{"jwks without file", []string{"--auth", "jwks"}, nil, `--jwks (FHIRSUB_JWKS): jwks needs a JWKS file or URL`},
		{"off on all interfaces", []string{"--addr", ":8080"}, nil, `--addr (FHIRSUB_ADDR): authentication is off but :8080 is not a loopback address; set --auth hs256 --jwt-secret … or --auth jwks --jwks …, or pass --insecure (FHIRSUB_INSECURE=true)`},
		{"secret and jwks", []string{"--jwt-secret", strings.Repeat("s", 32)}, map[string]string{"FHIRSUB_JWKS": "keys.json"}, `--jwt-secret (FHIRSUB_JWT_SECRET) and --jwks (FHIRSUB_JWKS) are both set; choose with --auth (FHIRSUB_AUTH) hs256 or jwks`},
		{"leeway", []string{"--jwt-leeway", "6m"}, nil, `--jwt-leeway (FHIRSUB_JWT_LEEWAY): "6m0s" is longer than 5m`},
		{"auth after log format", []string{"--addr", ":8080", "--log-format", "xml"}, nil, `--log-format (FHIRSUB_LOG_FORMAT): "xml" is not text or json`},
		{"debug on all interfaces", []string{"--debug-addr", ":6060"}, nil, `--debug-addr (FHIRSUB_DEBUG_ADDR): ":6060" is not a loopback host:port`},
		{"debug elsewhere", nil, map[string]string{"FHIRSUB_DEBUG_ADDR": "10.0.0.1:6060"}, `--debug-addr (FHIRSUB_DEBUG_ADDR): "10.0.0.1:6060" is not a loopback host:port`},
		{"cors origin with a path", []string{"--cors-origins", "https://app.example.org/"}, nil, `--cors-origins (FHIRSUB_CORS_ORIGINS): "https://app.example.org/" is not an origin: write scheme://host[:port] in lower case, http or https, without a path (https://app.example.org)`},
		{"cors origin not http", nil, map[string]string{"FHIRSUB_CORS_ORIGINS": "https://ok.example,ftp://files.example"}, `--cors-origins (FHIRSUB_CORS_ORIGINS): "ftp://files.example" is not an origin: write scheme://host[:port] in lower case, http or https, without a path (https://app.example.org)`},
		{"cors origin in capitals", []string{"--cors-origins", "https://App.example.org"}, nil, `--cors-origins (FHIRSUB_CORS_ORIGINS): "https://App.example.org" is not an origin: write scheme://host[:port] in lower case, http or https, without a path (https://app.example.org)`},
		{"cors origin a host only", []string{"--cors-origins", "app.example.org"}, nil, `--cors-origins (FHIRSUB_CORS_ORIGINS): "app.example.org" is not an origin: write scheme://host[:port] in lower case, http or https, without a path (https://app.example.org)`},
		{"cors any origin without auth", []string{"--cors-origins", "*"}, nil, `--cors-origins (FHIRSUB_CORS_ORIGINS): "*" lets any web page read and write this server, and authentication is off: name the origins, or turn authentication on`},
		{"unknown flag", []string{"--frobnicate"}, nil, `flag provided but not defined: -frobnicate (see fhirsub --help)`},
		{"argument", []string{"extra"}, nil, `unexpected argument "extra" (see fhirsub --help)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig(tc.args, func(k string) string { return tc.env[k] }, io.Discard)
			if err == nil {
				t.Fatalf("parseConfig(%q, %v) accepted: %+v", tc.args, tc.env, c)
			}
			if err.Error() != tc.want {
				t.Errorf("error\n got %s\nwant %s", err, tc.want)
			}
		})
	}
}

// TestHelpListsTypes: --help goes to stdout with exit 0, and shows each
// setting's type, variable and default.
func TestHelpListsTypes(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"serve", "--help"}} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, func(string) string { return "" }, &out, &errb); code != 0 {
			t.Fatalf("%q: exit %d (stderr %q)", args, code, errb.String())
		}
		if errb.Len() != 0 {
			t.Errorf("%q wrote to stderr: %q", args, errb.String())
		}
		for _, want := range []string{
			"  --delivery-workers int\n", "(env FHIRSUB_DELIVERY_WORKERS, default 64)",
			"  --retry-max duration\n", "(env FHIRSUB_RETRY_MAX, default 10m0s)",
			"  --insecure\n", "  --addr string\n", "  --resthook-allow list\n",
			"MONGODB_URI", "FHIRSUB_DATA", "--version",
		} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%q: the usage lacks %q", args, want)
			}
		}
	}
}

func TestVersionFlag(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"-version"}, {"version"}, {"serve", "--version"}} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, func(string) string { return "" }, &out, &errb); code != 0 {
			t.Fatalf("%q: exit %d (stderr %q)", args, code, errb.String())
		}
		if got := out.String(); got != "fhirsub "+buildVersion()+"\n" {
			t.Errorf("%q printed %q", args, got)
		}
	}
}

// TestBadAuthOpensNoStore: a bad authentication setting is refused before
// the embedded store is created.
func TestBadAuthOpensNoStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"--addr", "0.0.0.0:0", "--data", dir}, func(string) string { return "" }, &out, &errb)
	if code == 0 {
		t.Fatal("serve without auth on all interfaces was accepted")
	}
	if !strings.Contains(errb.String(), "--insecure") {
		t.Errorf("stderr %q does not point to --insecure", errb.String())
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the store directory exists after a refused start: %v", err)
	}
	if _, err := parseConfig([]string{"-h"}, func(string) string { return "" }, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v, want flag.ErrHelp", err)
	}
}
