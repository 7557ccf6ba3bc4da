# syntax=docker/dockerfile:1
# One image for every mzchat process: mzchatd (all services and `migrate`), the mzchat CLI and
# mzchat-operator, on distroless as non-root. Build with `make image`, which also builds the
# `debug` target (the same binaries plus busybox) as <tag>-debug for `helm test`'s round trip.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# Registry and target dir are cache mounts, so a rebuild compiles only what changed; the
# binaries are copied out because the target cache is not part of the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p mzchatd -p mzchat-client -p mzchat-operator \
    && mkdir -p /out \
    && cp target/release/mzchatd target/release/mzchat target/release/mzchat-operator /out/

# Containers are reached from outside: listen on every interface, not loopback (the binaries'
# default). The operator may still set these per Deployment.
FROM gcr.io/distroless/cc-debian12:debug-nonroot AS debug
COPY --from=build /out/ /usr/local/bin/
ENV MZCHAT_LISTEN=0.0.0.0:7600 MZCHAT_ASSETS_LISTEN=0.0.0.0:7601 MZCHAT_ADMIN_LISTEN=0.0.0.0:9600
USER 65532:65532
EXPOSE 7600 7601 9600
ENTRYPOINT ["/usr/local/bin/mzchatd"]

# The default target: no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
COPY --from=build /out/ /usr/local/bin/
ENV MZCHAT_LISTEN=0.0.0.0:7600 MZCHAT_ASSETS_LISTEN=0.0.0.0:7601 MZCHAT_ADMIN_LISTEN=0.0.0.0:9600
USER 65532:65532
EXPOSE 7600 7601 9600
ENTRYPOINT ["/usr/local/bin/mzchatd"]
