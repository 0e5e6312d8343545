# cf-app-discovery — see README.md. `make test` installs what the tests need
# (Debian's prometheus package, and Prometheus 3 built once into a cache)
# and runs lint, unit and acceptance tests.
GO ?= go
GOFILES = $(shell find . -name '*.go' -not -path './.git/*')
BIN = bin

.PHONY: test deps lint unit fuzz build clean bench-proxy

test: deps lint unit fuzz

# Prometheus (with promtool) is needed by the acceptance suite and the
# config checks, in both major versions: 2.x from Debian's packages when
# missing, and 3.x built from the Go module into a cache outside the
# checkout, once per machine (scripts/test-tools.sh says when it builds).
deps:
	@command -v prometheus >/dev/null && command -v promtool >/dev/null || { \
		echo "installing Debian's prometheus package"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends prometheus; }
	@prom3=$$(GO=$(GO) scripts/test-tools.sh prometheus) && echo "Prometheus 3: $$prom3"
	$(GO) mod download
	@weed=$$(GO=$(GO) scripts/test-tools.sh weed) && echo "SeaweedFS: $$weed"

lint:
	@out=$$(gofmt -l $(GOFILES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

unit:
	$(GO) test -race -count=1 ./...

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# A short run of every fuzz target (their seed corpora also run in `unit`),
# a few seconds each. The runs are counted in executions, not seconds: on a
# busy machine Go 1.26's fuzzing ends a timed run now and then with a
# spurious "context deadline exceeded" and no failing input. FuzzRender and
# FuzzBind run a few hundred inputs a second, the others thousands.
# For a long run: make fuzz FUZZTIME=10m (every target for that long).
FUZZ_FAST ?= 30000x
FUZZ_SLOW ?= 2000x
ifdef FUZZTIME
FUZZ_FAST := $(FUZZTIME)
FUZZ_SLOW := $(FUZZTIME)
endif
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzRender$$' -fuzztime $(FUZZ_SLOW) ./targets/
	$(GO) test -run '^$$' -fuzz '^FuzzParseParameters$$' -fuzztime $(FUZZ_FAST) ./targets/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZ_FAST) ./scrape/
	$(GO) test -run '^$$' -fuzz '^FuzzParseQuery$$' -fuzztime $(FUZZ_FAST) ./scrape/
	$(GO) test -run '^$$' -fuzz '^FuzzValidGUID$$' -fuzztime $(FUZZ_FAST) ./scrape/
	$(GO) test -run '^$$' -fuzz '^FuzzParseVCAPServices$$' -fuzztime $(FUZZ_FAST) ./config/
	$(GO) test -run '^$$' -fuzz '^FuzzBind$$' -fuzztime $(FUZZ_SLOW) ./broker/

clean:
	rm -rf $(BIN)

# paas-proxy against the nginx it replaces (installs wrk and nginx from
# Debian when missing). BENCH_DURATION, BENCH_THREADS, BENCH_CONNECTIONS.
bench-proxy:
	GO=$(GO) proxy/bench/bench-proxy.sh

# Reconcile at scale: the real target-updater --once, twice, against a fake
# CF API (20 ms per request) with BENCH_APPS bound apps (10,000 by default;
# 6 visible for every 5 bound) and an S3-compatible server. Prints CF
# requests, wall time, the updater's CPU time and peak RSS, S3 operations.
# make bench-reconcile BENCH_APPS=50000 for the large fleet.
BENCH_APPS ?= 10000
.PHONY: bench-reconcile
bench-reconcile:
	$(GO) build -o $(BIN)/ ./cmd/target-updater
	$(GO) run ./acceptance/bench/reconcile -updater $(BIN)/target-updater -bound $(BENCH_APPS)

# Freshness: the real target-updater watching every 10 s against a fake CF
# API (20 ms per request) with 10,000 bound apps of 12,000 and an
# S3-compatible server; CF requests per minute idle, then 100 changes at
# random moments, each timed until the bucket shows it. 3 to 4 minutes.
.PHONY: bench-freshness
bench-freshness:
	$(GO) build -o $(BIN)/ ./cmd/target-updater
	$(GO) run ./acceptance/bench/freshness -updater $(BIN)/target-updater

# One bind through the real handler and CF client against a fake CF API
# that adds 20 ms per request: CF requests per bind and bind latency; then
# 300 binds and 200 unbinds at once, to one broker and to two behind a
# round-robin front: bind p50/p99 and throughput.
.PHONY: bench-broker
bench-broker:
	$(GO) test -run '^$$' -bench BenchmarkBind -benchtime 50x ./broker/
	PRINT_FIGURES=1 $(GO) test -count=1 -v -run TestBroker ./broker/ -ginkgo.focus 'concurrent load' | grep -o 'broker load, .*' | sort -u


# Runs the whole chain locally on embedded defaults (fake CF API, directory
# store, Prometheus when installed) and prints the curl commands to try it.
.PHONY: demo
demo: build
	$(GO) build -o $(BIN)/ ./acceptance/demo
	@# exec: Ctrl-C reaches the demo, which stops what it started and exits 0.
	@exec $(BIN)/demo -bin $(BIN)

# The http_sd endpoint at scale: the real broker serving 10,000 apps' target
# files from an S3-compatible server. Prints the S3 operations of a refresh
# with 0, 100 and 1,000 changed apps, the answer's size, p50/p99 answer
# times under 3 polling hosts and bursts of 50 requests, and the broker's RSS.
.PHONY: bench-httpsd
bench-httpsd:
	$(GO) build -o $(BIN)/ ./cmd/broker
	$(GO) run ./acceptance/bench/httpsd -broker $(BIN)/broker
