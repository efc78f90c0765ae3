# GitVista, hosted mode. Multi-stage: a release build, then a slim runtime with git and CA
# certificates; clones and the SQLite database live in the /data volume.
#
#   docker build -t gitvista . && docker run -p 8080:8080 -v gitvista-data:/data gitvista
#
# The build stage runs the same command CI builds with (`cargo build --release --locked`).

FROM rust:1.95-bookworm AS build
WORKDIR /src
# libpq is built from source (pq-sys "bundled") and links OpenSSL; SQLite is bundled.
RUN apt-get update && apt-get install -y --no-install-recommends libssl-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cargo build --release --locked --bin gitvista \
    && cp target/release/gitvista /usr/local/bin/gitvista

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends git ca-certificates libssl3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /data --shell /usr/sbin/nologin gitvista \
    && mkdir -p /data && chown gitvista /data
COPY --from=build /usr/local/bin/gitvista /usr/local/bin/gitvista
USER gitvista
ENV GITVISTA_DATA_DIR=/data \
    GITVISTA_HOST=0.0.0.0 \
    GITVISTA_PORT=8080
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD git --version >/dev/null && \
    (exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /healthz HTTP/1.0\r\n\r\n' >&3 && grep -q ok <&3) || exit 1
ENTRYPOINT ["gitvista", "serve"]
