package client

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// skipOrFail skips with the reason, or fails when CI is set (CI installs
// everything the tests need).
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// TestNodeSuite runs the JavaScript unit tests (client and React hooks)
// with node's test runner.
func TestNodeSuite(t *testing.T) {
	npm, err := exec.LookPath("npm")
	if err != nil {
		skipOrFail(t, "npm not found on PATH: install node >= 20 to run the JS tests")
	}
	if _, err := os.Stat(filepath.Join("node_modules", "react-test-renderer")); err != nil {
		skipOrFail(t, "web/client/node_modules is missing: run `npm ci --prefix web/client`")
	}
	cmd := exec.Command(npm, "test", "--silent")
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("npm test failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "# fail 0") {
		t.Fatalf("npm test output has no passing summary:\n%s", out)
	}
	t.Logf("%s", lastLines(string(out), 8))
}

// TestEmbeddedFiles checks that the served module set is complete.
func TestEmbeddedFiles(t *testing.T) {
	for _, name := range []string{"index.js", "client.js", "hooks.js", "index.d.ts", "hooks.d.ts", "package.json"} {
		b, err := FS.ReadFile(name)
		if err != nil || len(b) == 0 {
			t.Errorf("%s not embedded: %v", name, err)
		}
	}
	idx, _ := FS.ReadFile("index.js")
	if strings.Contains(string(idx), "react") && strings.Contains(string(idx), "from 'react'") {
		t.Error("index.js must not import react (the dashboard loads it without React)")
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
