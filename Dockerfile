# binance-import in a container: built on the official Swift image, run on slim Debian with the C
# libraries it links (libcurl, ISA-L, zlib, SQLite) and curl (the follow service's healthcheck), as
# a non-root user. State, cache and the
# metrics file live under /var/lib/binance-import (a volume in compose.yaml).
#   docker build -t binance-import .
#   docker run --rm -v $PWD/jobs:/jobs:ro -v state:/var/lib/binance-import binance-import run /jobs/demo.yml
FROM swift:6.1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends zlib1g-dev libisal-dev libcurl4-openssl-dev libsqlite3-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Package.swift names the test targets too: SwiftPM wants their folders present to build.
COPY Package.swift ./
COPY Sources ./Sources
COPY Tests ./Tests
RUN swift build -c release --product binance-import --static-swift-stdlib \
 && install -D .build/release/binance-import /out/binance-import

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libcurl4 libisal2 zlib1g libsqlite3-0 ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 importer \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/binance-import --create-home importer
COPY --from=build /out/binance-import /usr/local/bin/binance-import
# Numeric, so that Kubernetes' runAsNonRoot can check it (a name may not resolve on the host).
USER 10001:10001
WORKDIR /var/lib/binance-import
ENTRYPOINT ["binance-import"]
CMD ["--help"]
