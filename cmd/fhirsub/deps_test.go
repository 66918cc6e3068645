package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// TestBinaryLinksNoFerretDB guards the promise that FerretDB, a test-only
// stand-in for MongoDB, never ends up in the production binary.
func TestBinaryLinksNoFerretDB(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := string(out)
	if !strings.Contains(deps, "go.mongodb.org/mongo-driver/v2/mongo") {
		t.Fatal("the binary should link the MongoDB driver v2 (is the mongo backend wired?)")
	}
	for _, line := range strings.Split(deps, "\n") {
		if strings.Contains(strings.ToLower(line), "ferretdb") {
			t.Fatalf("the fhirsub binary links %s", line)
		}
	}
}

// module is the import path prefix of the project's packages.
const module = "github.com/fhirsub/fhirsub/"

// arrow is what the packages under one part of the tree may import from the
// project (DESIGN.md §1) and which third-party modules they may import.
type arrow struct {
	from    string   // package path below the module; covers its subpackages
	may     []string // project packages (and their subpackages) it may import
	why     string   // DESIGN's words for the rule
	reserve []string // third-party import prefixes only it may import
}

// arrows are DESIGN.md §1's dependency rules. A package matching no rule
// fails the test: a new top-level package needs a rule here first.
// Production imports are checked (a package's tests may import more, e.g.
// a store backend to run against).
var arrows = []arrow{
	{from: "conformance", may: []string{"conformance"},
		why: "conformance is FHIR as code and data: it imports no other project package"},
	{from: "fhirstore/mongo", may: []string{"fhirstore", "conformance"},
		reserve: []string{"go.mongodb.org/"},
		why:     "a store backend imports the Store contract and conformance; Mongo types never leave it"},
	{from: "fhirstore/sqlite", may: []string{"fhirstore", "conformance"},
		reserve: []string{"modernc.org/sqlite"},
		why:     "a store backend imports the Store contract and conformance; SQL types never leave it"},
	{from: "fhirstore", may: []string{"fhirstore", "conformance"},
		why: "fhirstore imports no sibling except conformance"},
	{from: "channels", may: []string{"channels", "conformance"},
		why: "channels are transports: no sibling except conformance"},
	{from: "topics", may: []string{"topics", "conformance"},
		why: "topics → conformance only"},
	// The two adapters to the socket protocols of channels: wsbridge
	// implements channels' R4 and Backport Binder types, legacy feeds the
	// legacy protocol's events. No other subscription package imports
	// channels: the rest-hook Sender is an interface subscriptions
	// declares and cmd adapts.
	{from: "subscriptions/wsbridge", may: []string{"subscriptions", "topics", "conformance", "fhirstore", "channels"},
		why: "subscriptions/wsbridge adapts the pipeline to channels' websocket Binder types"},
	{from: "subscriptions/delivery", may: []string{"subscriptions/delivery", "fhirstore"},
		why: "subscriptions/delivery is delivery mechanics by subscription id (queue, timers, backoff, leases): fhirstore's value types only"},
	{from: "subscriptions/match", may: []string{"subscriptions/match", "conformance", "fhirstore"},
		why: "subscriptions/match is the tail of the change feed and the matcher's index primitives: conformance (search keys) and fhirstore's value types only"},
	{from: "subscriptions/legacy", may: []string{"subscriptions", "topics", "conformance", "fhirstore", "channels"},
		why: "subscriptions/legacy feeds the legacy protocol of channels"},
	{from: "subscriptions", may: []string{"subscriptions", "topics", "conformance", "fhirstore"},
		why: "subscriptions/* → topics, conformance, fhirstore (value types + Store); channels only through interfaces it declares (wsbridge and legacy adapt)"},
	{from: "web", may: []string{"web", "channels", "conformance", "fhirstore"},
		why: "web declares the interfaces it consumes: it imports channels, never subscriptions or a store backend"},
	{from: "cmd", may: []string{""},
		why: "only cmd sees everything"},
}

// exactly lists the project packages an arrow's may allows only as
// themselves, not with their subpackages: the store backends are internals.
var exactly = map[string]bool{"fhirstore": true}

// allowed reports whether a package under rule a may import the project
// package imp (both relative to the module).
func (a arrow) allowed(pkg, imp string) bool {
	for _, m := range a.may {
		if m == "" || imp == m {
			return true
		}
		if strings.HasPrefix(imp, m+"/") && (!exactly[m] || strings.HasPrefix(pkg, m+"/") || pkg == m) {
			return true
		}
	}
	return false
}

// under reports whether pkg is p or below it.
func under(pkg, p string) bool { return pkg == p || strings.HasPrefix(pkg, p+"/") }

// ruleFor is the first arrow covering pkg (the more specific ones come
// first in arrows).
func ruleFor(pkg string) (arrow, bool) {
	for _, a := range arrows {
		if under(pkg, a.from) {
			return a, true
		}
	}
	return arrow{}, false
}

// TestImportArrows derives the import graph from `go list -json` and fails
// on every import DESIGN.md §1 forbids, listing them all.
func TestImportArrows(t *testing.T) {
	out, err := exec.Command("go", "list", "-json=ImportPath,Imports", module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []struct {
		ImportPath string
		Imports    []string
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	var violations []string
	edges := 0
	for _, p := range pkgs {
		pkg := strings.TrimPrefix(p.ImportPath, module)
		rule, ok := ruleFor(pkg)
		if !ok {
			violations = append(violations, fmt.Sprintf("%s: no rule in arrows (add one from DESIGN.md §1)", pkg))
			continue
		}
		for _, imp := range p.Imports {
			if rel, ok := strings.CutPrefix(imp, module); ok {
				edges++
				if !rule.allowed(pkg, rel) {
					violations = append(violations, fmt.Sprintf("%s imports %s: %s", pkg, rel, rule.why))
				}
				continue
			}
			for _, other := range arrows {
				for _, r := range other.reserve {
					if strings.HasPrefix(imp, r) && !under(pkg, other.from) && !under(pkg, "cmd") {
						violations = append(violations, fmt.Sprintf("%s imports %s: %s", pkg, imp, other.why))
					}
				}
			}
		}
	}
	t.Logf("import arrows: %d packages, %d project imports checked, %d violations", len(pkgs), edges, len(violations))
	if len(pkgs) < 10 || edges < 20 {
		t.Fatalf("go list saw only %d packages and %d project imports: the check did not run on the tree", len(pkgs), edges)
	}
	if len(violations) > 0 {
		t.Errorf("imports DESIGN.md §1 forbids:\n  %s", strings.Join(violations, "\n  "))
	}
}

// TestArrowRules checks the rule table itself on made-up imports, so that
// a mistake in allowed cannot make TestImportArrows pass vacuously.
func TestArrowRules(t *testing.T) {
	tests := []struct {
		pkg, imp string
		ok       bool
	}{
		{"conformance/search", "conformance/fhirpath", true},
		{"conformance/search", "fhirstore", false},
		{"fhirstore", "conformance/search", true},
		{"fhirstore", "topics", false},
		{"fhirstore/mongo", "fhirstore", true},
		{"fhirstore/mongo", "fhirstore/sqlite", true}, // within fhirstore: its own business
		{"channels", "conformance/smart", true},
		{"channels", "subscriptions", false},
		{"channels", "fhirstore", false},
		{"topics", "conformance/fhirpath", true},
		{"topics", "fhirstore", false},
		{"subscriptions", "topics", true},
		{"subscriptions/legacy", "fhirstore", true},
		{"subscriptions/legacy", "fhirstore/sqlite", false},
		{"subscriptions", "web", false},
		{"subscriptions", "channels", false},
		{"subscriptions/match", "channels", false},
		{"subscriptions/wsbridge", "channels", true},
		{"subscriptions/legacy", "channels", true},
		{"subscriptions/delivery", "subscriptions", false},
		{"subscriptions/match", "conformance/search", true},
		{"subscriptions/match", "subscriptions", false},
		{"subscriptions", "subscriptions/delivery", true},
		{"web", "channels", true},
		{"web", "subscriptions", false},
		{"web", "fhirstore", true},
		{"web", "fhirstore/mongo", false},
		{"web/ui", "web/client", true},
		{"cmd/fhirsub", "fhirstore/mongo", true},
	}
	for _, tc := range tests {
		rule, ok := ruleFor(tc.pkg)
		if !ok {
			t.Errorf("%s: no rule", tc.pkg)
			continue
		}
		if got := rule.allowed(tc.pkg, tc.imp); got != tc.ok {
			t.Errorf("%s importing %s: allowed=%v, want %v", tc.pkg, tc.imp, got, tc.ok)
		}
	}
	if _, ok := ruleFor("newpkg"); ok {
		t.Error("a package outside every rule must have no rule")
	}
}
