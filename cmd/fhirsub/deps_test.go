package main

import (
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
