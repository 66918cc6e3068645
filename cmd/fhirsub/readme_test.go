package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readmeBlocks returns the ```sh blocks of the README section titled
// heading (up to the next "## " heading).
func readmeBlocks(t *testing.T, heading string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("README.md has no %q section", heading)
	}
	s = s[i+len(heading)+2:]
	if j := strings.Index(s, "\n## "); j >= 0 {
		s = s[:j]
	}
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)\n```sh\n(.*?)\n```").FindAllStringSubmatch(s, -1) {
		blocks = append(blocks, m[1])
	}
	return blocks
}

// TestReadmeTryIt pastes the README's "Try it" blocks into bash, each into
// a fresh shell, in an empty directory, against the fhirsub binary as
// built: the first screen a newcomer runs cannot rot. Two things differ
// from a newcomer's terminal, both said here: `make build` is a shell
// function (the test built bin/fhirsub already, from the same source), and
// FHIRSUB_ADDR moves the server to a free port (the blocks honour it).
// The shell runs with -e and pipefail, so any failing command fails the
// block.
func TestReadmeTryIt(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the server binary; skipped in -short mode")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		skipOrFail(t, "the README's blocks need curl: %v", err)
	}
	blocks := readmeBlocks(t, "## Try it")
	if len(blocks) != 2 {
		t.Fatalf("README \"Try it\" has %d sh blocks, this test knows 2 (the first screen, with authentication)", len(blocks))
	}
	bin := fhirsubBinary(t)
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(bin, filepath.Join(dir, "bin", "fhirsub")); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	port := addr[strings.LastIndex(addr, ":")+1:]
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FHIRSUB_") && !strings.HasPrefix(kv, "MONGODB_") {
			env = append(env, kv)
		}
	}
	env = append(env, "FHIRSUB_ADDR="+addr)
	const preamble = "set -eo pipefail\n" +
		"make() { [ \"$*\" = build ] && echo 'make build: bin/fhirsub was built by the test' || { echo \"unexpected: make $*\" >&2; return 1; }; }\n"

	want := [][]string{
		{
			"HTTP/1.1 201 Created", `Etag: W/"1"`, "Location: http://localhost:" + port + "/Patient/",
			"Observation: 201", `"total":1`, "first PUT: 200", "second PUT: 412", `"total":2`,
			"fhirsub demo: http://127.0.0.1:" + port, "errors 0",
		},
		{"without a token: 401", "with a token: 200", "errors 0"},
	}
	for i, block := range blocks {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := exec.CommandContext(ctx, "bash", "-c", preamble+block)
		cmd.Dir, cmd.Env = dir, env
		// Own process group: if the block fails half-way, its background
		// server is stopped with it.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		out, err := cmd.CombinedOutput()
		cancel()
		if cmd.Process != nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		t.Logf("README \"Try it\" block %d: exit %v\n%s", i+1, err, out)
		if err != nil {
			t.Fatalf("block %d failed: %v (log: %s)", i+1, err, readLog(dir))
		}
		for _, w := range want[i] {
			if !strings.Contains(string(out), w) {
				t.Errorf("block %d: output lacks %q", i+1, w)
			}
		}
		if m := regexp.MustCompile(`patient id: (\S*)`).FindStringSubmatch(string(out)); i == 0 && (m == nil || m[1] == "") {
			t.Errorf("block 1 did not capture the patient id")
		}
		if strings.Contains(string(out), "\r") {
			t.Errorf("block %d: output has carriage returns (demo progress not in plain lines)", i+1)
		}
	}
}

func readLog(dir string) string {
	b, _ := os.ReadFile(filepath.Join(dir, "fhirsub.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}
