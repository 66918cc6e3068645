//go:build tools

// Package tools pins the lint tools built by `make lint`.
package tools

import _ "github.com/timakin/bodyclose"
