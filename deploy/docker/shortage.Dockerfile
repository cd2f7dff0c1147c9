# syntax=docker/dockerfile:1
# The shortage service of medkoord. Build from the repository root:
#   docker build -f deploy/docker/shortage.Dockerfile -t medkoord/shortage:dev .
# Settings come from MEDKOORD_* environment variables and *_FILE secrets
# (docs/OPERATIONS.md); the image only fixes the listen addresses.

# ---- build: Debian 12 toolchain and -dev packages, only the shortage target.
FROM debian:bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      g++ cmake ninja-build pkg-config \
      protobuf-compiler protobuf-compiler-grpc libprotobuf-dev libgrpc++-dev libgrpc-dev \
      libabsl-dev libpqxx-dev libpq-dev libssl-dev nlohmann-json3-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY cmake cmake
COPY protos protos
COPY common common
COPY services services
COPY tools tools
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DMEDKOORD_BUILD_TESTS=OFF -DMEDKOORD_BUILD_BENCHMARKS=OFF \
 && cmake --build /build -j"$(nproc)" --target shortage \
 && install -D -m 0755 /build/services/shortage/shortage /out/shortage \
 && strip --strip-debug /out/shortage

# ---- runtime: only the shared libraries the binary links against.
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libgrpc++1.51 libprotobuf32 libpqxx-6.4 libpq5 libabsl20220623 libssl3 \
      ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 medkoord \
 && useradd --system --uid 10001 --gid medkoord --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin medkoord
COPY --from=build /out/shortage /usr/local/bin/shortage
# "Today" and calendar years are Europe/Copenhagen (ARCHITECTURE.md, Storage).
ENV TZ=Europe/Copenhagen \
    MEDKOORD_LISTEN=0.0.0.0:7103 \
    MEDKOORD_METRICS_LISTEN=0.0.0.0:9103
# 7103: gRPC (health, reflection, API); 9103: /metrics, /healthz.
EXPOSE 7103 9103
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/shortage"]
