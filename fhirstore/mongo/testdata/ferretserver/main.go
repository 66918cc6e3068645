// Command ferretserver runs an embedded FerretDB v1 (SQLite handler) on
// 127.0.0.1 for the tests of fhirstore/mongo when they are built with the
// race detector: run as a separate, uninstrumented process it is several
// times faster than in the test binary. It prints its MongoDB URI on one
// line and stops when its standard input closes (so it never outlives the
// test process). Usage: ferretserver DATADIR
//
// It lives under testdata so that ./... never builds it: FerretDB stays a
// test-only dependency, never linked into fhirsub.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: ferretserver DATADIR")
		os.Exit(2)
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
		Handler:   "sqlite",
		SQLiteURL: "file:" + os.Args[1] + "/",
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferretserver:", err)
		os.Exit(1)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.Run(ctx)
	}()
	fmt.Println(f.MongoDBURI())
	_, _ = io.Copy(io.Discard, os.Stdin)
	cancel()
	<-done
}
