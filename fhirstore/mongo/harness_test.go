package mongo

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The tests run against an embedded FerretDB (SQLite handler) started by
// TestMain on 127.0.0.1, and against a real MongoDB when MONGODB_TEST_URI
// is set. FerretDB is a test-only dependency: only _test.go files import it.

var (
	ferretURI string // the embedded FerretDB's URI
	dbCounter atomic.Int64
)

func TestMain(m *testing.M) {
	start := startFerretDB
	if raceEnabled {
		start = startFerretDBProcess
	}
	stop, err := start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start embedded ferretdb:", err)
		os.Exit(1)
	}
	code := m.Run()
	stop()
	os.Exit(code)
}

// startFerretDB starts FerretDB v1 embedded, with its SQLite files in a
// temporary directory, and returns the function that stops it.
func startFerretDB() (func(), error) {
	dir, err := ferretDir()
	if err != nil {
		return nil, err
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
		Handler:   "sqlite",
		SQLiteURL: "file:" + dir + "/",
		// FerretDB logs every error reply (duplicate keys included) at
		// WARN with a wire dump.
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.Run(ctx)
	}()
	ferretURI = f.MongoDBURI()
	return func() {
		cancel()
		<-done
		_ = os.RemoveAll(dir)
	}, nil
}

// startFerretDBProcess builds testdata/ferretserver without the race
// detector, runs it and returns the function that stops it. The server
// exits when its standard input closes, so it dies with this process.
func startFerretDBProcess() (func(), error) {
	dir, err := ferretDir()
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(dir, "ferretserver")
	build := exec.Command("go", "build", "-o", bin, "./testdata/ferretserver")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("build testdata/ferretserver: %w", err)
	}
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, data)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	stop := func() {
		_ = stdin.Close()
		_ = cmd.Wait()
		_ = os.RemoveAll(dir)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		stop()
		return nil, fmt.Errorf("read ferretserver URI: %w", err)
	}
	ferretURI = strings.TrimSpace(line)
	return stop, nil
}

// ferretDir makes the temporary directory of the FerretDB files, in
// memory (/dev/shm) when the machine has it: FerretDB's SQLite syncs every
// write to disk (synchronous=FULL), which made the suites several times
// slower, and no test needs the files to outlive the server.
func ferretDir() (string, error) {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "fhirsub-ferretdb-"); err == nil {
			return dir, nil
		}
	}
	return os.MkdirTemp("", "fhirsub-ferretdb-")
}

// backend is a server the tests run against.
type backend struct {
	name string // printed as storetest: backend=<name>
	uri  string
}

func ferretBackend() backend { return backend{name: "mongo(ferretdb-embedded)", uri: ferretURI} }

// envMongo returns the real MongoDB named by MONGODB_TEST_URI, if set.
func envMongo() (backend, bool) {
	uri := os.Getenv("MONGODB_TEST_URI")
	return backend{name: "mongo(mongodb)", uri: uri}, uri != ""
}

// mongoBackend returns the real MongoDB named by MONGODB_TEST_URI or skips:
// no MongoDB server can be installed on these machines, CI's included.
func mongoBackend(t testing.TB) backend {
	b, ok := envMongo()
	if !ok {
		t.Skip("MONGODB_TEST_URI is not set: no MongoDB server here (the FerretDB runs cover the driver path)")
	}
	return b
}

// openTest opens a DB on a fresh database of b, dropped at the end of the
// test; the DB itself is closed by the caller or by storetest.
func openTest(tb testing.TB, b backend, cfg Config) *DB {
	tb.Helper()
	name := fmt.Sprintf("fhirsub_test_%d_%d", os.Getpid(), dbCounter.Add(1))
	cfg.URI, cfg.Database = b.uri, name
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := Open(ctx, cfg)
	if err != nil {
		tb.Fatalf("Open %s: %v", b.name, err)
	}
	tb.Cleanup(func() { dropDatabase(tb, b.uri, name) })
	return db
}

func dropDatabase(tb testing.TB, uri, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		tb.Logf("drop %s: %v", name, err)
		return
	}
	defer func() { _ = cl.Disconnect(ctx) }()
	if err := cl.Database(name).Drop(ctx); err != nil {
		tb.Logf("drop %s: %v", name, err)
	}
}

// indexNames lists "collection.index" of the DB's collections.
func (d *DB) indexNames(ctx context.Context) (map[string]bool, error) {
	out := map[string]bool{}
	for _, c := range []*mongo.Collection{d.resources, d.versions, d.changes, d.events} {
		specs, err := c.Indexes().ListSpecifications(ctx)
		if err != nil {
			return nil, err
		}
		for _, s := range specs {
			out[c.Name()+"."+s.Name] = true
		}
	}
	return out, nil
}
