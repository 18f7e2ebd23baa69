# binance-import: build, test and benchmark entry points. `make test` is THE test command (CI runs it).
SWIFT ?= swift
PYTHON ?= python3
ARCHIVE ?= ../shared/binance/BTCUSDT-1m-2020-01-01.zip

PORT ?= 5993

.PHONY: all build release test test-server bench bench-decode inspect clean

all: build

build:
	$(SWIFT) build

release:
	$(SWIFT) build -c release

# Builds everything (the CLI too: the tests run it), then runs every test; fails on any failure.
test:
	$(SWIFT) build --build-tests
	$(SWIFT) test

# The MarketStore test server in the foreground (point pymarketstore or the importer at it).
test-server:
	$(PYTHON) Tests/servers/marketstore_server.py --port $(PORT)

# Decoder speed: full decode vs inflate-only vs pandas, on generated archives (see docs/performance.md).
bench-decode: release
	$(PYTHON) bench/decode_bench.py --bin .build/release/decode-bench --out docs/performance-decode.md

bench: bench-decode

# Example: make inspect ARCHIVE=path/to/BTCUSDT-1m-2024-01.zip
inspect: build
	.build/debug/binance-import inspect $(ARCHIVE) --head 5

clean:
	rm -rf .build
