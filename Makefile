# binance-import: build, test and benchmark entry points. `make test` is THE test command (CI runs it).
SWIFT ?= swift
PYTHON ?= python3
ARCHIVE ?= ../shared/binance/BTCUSDT-1m-2020-01-01.zip

PORT ?= 5993
JOB ?= jobs/demo.yml
# The tests run the debug build; the commands people run (import, nightly, demo) the release build.
BIN = .build/debug/binance-import
RELEASE_BIN = .build/release/binance-import
DECODE_BENCH = .build/release/decode-bench
export SWIFT PYTHON

.PHONY: all deps test-deps check-deploy check-imports build release test test-server bench bench-compare bench-decode bench-decode-compare bench-trades bench-scale bench-wan bench-http2 inspect import nightly follow demo demo-server samples reliability fuzz fuzz-coverage clean

all: build

# What a fresh Debian machine lacks (system libraries; for tests, the Python packages) is
# installed first, as root or through sudo; otherwise the exact command to run is printed.
deps:
	@scripts/ensure-deps run

test-deps:
	@scripts/ensure-deps test

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

# Builds everything (the CLI too: the tests run it), then runs every test, then the reliability
# trials (figures to a temporary file; `make reliability` writes docs/reliability.md). Fails on
# any failure. Each test runs in a process of its own with its own servers and folder; most of
# the suite waits (servers, real timeouts, the follow soak), so TEST_WORKERS processes at once on
# two cores take a third of the serial time (README: the test suite).
TEST_WORKERS ?= 4
test: test-deps check-deploy check-imports
	$(SWIFT) build --build-tests
	$(SWIFT) test --parallel --num-workers $(TEST_WORKERS)
	$(PYTHON) Tests/reliability/reliability.py --bin $(BIN) --out $${TMPDIR:-/tmp}/binance-import-reliability.md --trials 20

# The deployment files checked by the tools that read them: compose.yaml by docker-compose, the
# Kubernetes manifests against the API schemas, the Dockerfile by hadolint (.hadolint.yaml), the
# shell scripts by shellcheck.
check-deploy: test-deps
	docker-compose -f compose.yaml config --quiet
	kubernetes-validate --strict deploy/k8s/*.yaml
	hadolint Dockerfile
	shellcheck scripts/ensure-deps .ci/run Tests/fuzz/*.sh

# Who may import whom (docs/architecture.md): fails on an import a module must not make.
check-imports:
	$(PYTHON) scripts/check-imports

# The MarketStore test server in the foreground (point pymarketstore or the importer at it).
test-server: test-deps
	$(PYTHON) Tests/servers/marketstore_server.py --port $(PORT)

# Reliability trials (crash/resume, signals, faults, hostile input, load) -> docs/reliability.md.
reliability: build
	$(PYTHON) Tests/reliability/reliability.py --bin $(BIN) --out docs/reliability.md --trials 20

# 1,000,000 seeded inputs each to the CSV parser, the zip reader and the msgpack decoder.
fuzz:
	FUZZ_ITERATIONS=1000000 $(SWIFT) test -c release --filter FuzzTests 2>&1 | tee .fuzz.log | grep -E "FUZZ|error|Executed"
	(echo "# make fuzz ($$(date -u +%Y-%m-%d)): 1,000,000 seeded inputs per decoder, release build"; echo; \
	 echo "Each CSV input is decoded by the one-pass row parser and by the careful line-by-line path, which must agree; zip inputs alternate the ISA-L and zlib inflaters."; \
	 echo; grep "^FUZZ" .fuzz.log) > docs/fuzz.md; rm -f .fuzz.log

# Coverage-guided fuzzing with libFuzzer (not in CI): the zip reader, the CSV parser and the msgpack
# decoder, FUZZ_SECONDS each (default 600), figures appended to docs/fuzz.md.
fuzz-coverage:
	Tests/fuzz/run.sh

# Decoder speed: full decode vs inflate-only vs pandas, on generated archives (see docs/performance.md).
bench-decode: release
	$(PYTHON) bench/decode_bench.py --bin $(DECODE_BENCH) --out docs/performance-decode.md

# The importer against the Python baseline, the directory sink against RPC (docs/performance.md).
bench: release
	$(PYTHON) bench/bench.py --bin .build/release/binance-import --decode-bin $(DECODE_BENCH)

# Trades: the importer against a pandas + pymarketstore baseline and the sink's ceiling, and its
# peak memory against the archive's size (1 and 50 million trades): docs/performance-trades.md.
bench-trades: release
	$(PYTHON) bench/bench_trades.py --bin .build/release/binance-import

# Cost per unit as jobs grow (2,400 / 9,600 / 38,400 units of tiny archives): docs/performance.md.
# Two binaries side by side on make bench's job: `make bench-compare A=path/to/old B=.build/release/binance-import`.
bench-compare: release
	$(PYTHON) bench/compare.py --a $(A) --b $(or $(B),$(RELEASE_BIN))

# Two decode-bench binaries side by side: `make bench-decode-compare A=path/to/old-decode-bench`.
bench-decode-compare: release
	$(PYTHON) bench/decode_compare.py --a $(A) --b $(or $(B),$(DECODE_BENCH))

bench-scale: release
	$(PYTHON) bench/scale.py --bin $(RELEASE_BIN)

# Over a real network's round trip (0, 100, 250 ms through a delaying proxy): quiet and first
# nightlies of 50 and 200 keys beside curl --parallel of the same files (docs/performance.md).
# BASELINE=path/to/an/earlier/binance-import runs it beside.
bench-wan: release test-deps
	$(PYTHON) bench/wan.py --bin $(RELEASE_BIN) $(if $(BASELINE),--baseline-bin $(BASELINE))

# HTTP/2 against HTTP/1.1 for a first nightly's small archives: nginx (nginx-light, TLS) behind the
# latency proxy, curl --parallel with each protocol beside the importer (issue 35, item 2).
bench-http2: release test-deps
	$(PYTHON) bench/http2.py --bin $(RELEASE_BIN)

# A month range of a job: make import JOB=jobs/spot-majors-1m.yml FROM=2024-01 TO=2024-06 [TARGET=http://host:5993/rpc] [SHARD=K/N]
import: release
	$(RELEASE_BIN) run $(JOB) $(if $(FROM),--from $(FROM)) $(if $(TO),--to $(TO)) $(if $(TARGET),--target $(TARGET)) $(if $(SHARD),--shard $(SHARD))

# The nightly incremental import (CI): the job's whole range up to yesterday, settled units
# skipped; JSON summary, meaningful exit code. TARGET overrides the job's MarketStore.
nightly: release
	$(RELEASE_BIN) nightly $(JOB) --log-format json $(if $(TARGET),--target $(TARGET)) $(if $(SHARD),--shard $(SHARD))

# Follow mode: catch up, then Binance's kline streams into MarketStore, with /healthz and /metrics
# on METRICS_ADDR (default 127.0.0.1:9108): make follow JOB=jobs/spot-majors-1m.yml [TARGET=http://host:5993/rpc]
follow: release
	$(RELEASE_BIN) follow $(JOB) $(if $(TARGET),--target $(TARGET)) $(if $(METRICS_ADDR),--metrics-addr $(METRICS_ADDR))

# The demo: the synthetic samples/ archives into ./data/mktsdb, MarketStore's own on-disk format
# (no server, no network), then a few rows read back and a verification.
demo: release
	$(RELEASE_BIN) run jobs/demo.yml
	$(RELEASE_BIN) show BTCUSDT/1H/OHLCV --target data/mktsdb --limit 5
	$(RELEASE_BIN) verify jobs/demo.yml

# The demo job into the MarketStore test server instead (a server protocol round trip).
demo-server: build test-deps
	@$(PYTHON) Tests/servers/marketstore_server.py --port $(PORT) > /dev/null & echo $$! > .demo-server.pid; sleep 1; \
	$(BIN) run jobs/demo.yml --force --target http://127.0.0.1:$(PORT)/rpc && \
	$(BIN) verify jobs/demo.yml --target http://127.0.0.1:$(PORT)/rpc; status=$$?; \
	kill $$(cat .demo-server.pid); rm -f .demo-server.pid; exit $$status

# Regenerates samples/mirror (deterministic).
samples:
	$(PYTHON) samples/generate.py

# Example: make inspect ARCHIVE=path/to/BTCUSDT-1m-2024-01.zip
inspect: build
	.build/debug/binance-import inspect $(ARCHIVE) --head 5

clean:
	rm -rf .build
