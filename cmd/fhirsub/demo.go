package main

import (
	"context"
	"errors"
	"io"
)

// demoCmd generates clinical traffic against a running server.
func demoCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return errors.New("demo: not built yet")
}
