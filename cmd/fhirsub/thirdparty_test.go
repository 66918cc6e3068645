package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// clientsDir is the npm package of third-party FHIR clients
// (fhir-kit-client, fhirclient) installed by make testdeps and .ci/run.
var clientsDir = filepath.Join("testdata", "clients")

// TestThirdPartyClients drives the real binary with two widely used FHIR
// client libraries, as apps use them: CRUD, search with paging, _include,
// a chain, conditional create and update, PATCH, batch, and a transaction
// with urn:uuid references (testdata/clients/clients.mjs).
func TestThirdPartyClients(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		skipOrFail(t, "node not found on PATH: install node >= 20 to run the third-party client tests")
	}
	for _, pkg := range []string{"fhir-kit-client", "fhirclient"} {
		if _, err := os.Stat(filepath.Join(clientsDir, "node_modules", pkg)); err != nil {
			skipOrFail(t, "%s is not installed: run make testdeps (npm ci --prefix %s)", pkg, clientsDir)
		}
	}
	srv := startServerProc(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "clients.mjs")
	cmd.Dir = clientsDir
	cmd.Env = append(os.Environ(), "FHIRSUB_BASE="+srv.base)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()
	type result struct {
		Client, Check, Detail string
		OK                    bool
	}
	var results []result
	passed := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var r result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Errorf("unexpected output line %q", sc.Text())
			continue
		}
		results = append(results, r)
		status := "ok  "
		if r.OK {
			passed++
		} else {
			status = "FAIL"
		}
		t.Logf("%s %-16s %-26s %s", status, r.Client, r.Check, r.Detail)
	}
	figure := fmt.Sprintf("third-party FHIR clients: %d of %d checks passed", passed, len(results))
	t.Log(figure)
	reportFigure(figure)
	if stderr.Len() > 0 {
		t.Logf("node stderr:\n%s", stderr.String())
	}
	const wantChecks = 26
	if len(results) < wantChecks || passed != len(results) || runErr != nil {
		t.Fatalf("%s (want all of at least %d); node: %v", figure, wantChecks, runErr)
	}
}
