// Lint tools whose own go.mod does not pin every dependency; this module pins
// them (go.sum) so that `make lint` builds the same tool on every machine.
module github.com/fhirsub/fhirsub/ci-tools

go 1.26.0

require github.com/timakin/bodyclose v0.0.0-20260723120731-857993a2939c

require (
	github.com/gostaticanalysis/analysisutil v0.7.1 // indirect
	github.com/gostaticanalysis/comment v1.4.2 // indirect
	golang.org/x/mod v0.43.0 // indirect
	golang.org/x/sync v0.25.0 // indirect
	golang.org/x/tools v0.53.0 // indirect
	golang.org/x/tools/go/packages/packagestest v0.1.1-deprecated // indirect
)
