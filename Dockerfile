# syntax=docker/dockerfile:1
# Multi-stage build of the single `vitaqueue` binary (roles: api, admission, worker, all).
# Lua scripts and SQL migrations are compiled into the binary, so the runtime image needs
# nothing but the executable and CA certificates.

# ---- build ----------------------------------------------------------------------------
FROM rust:1-bookworm AS builder
WORKDIR /app
# sqlx: never try to reach a database at compile time.
ENV SQLX_OFFLINE=true
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    cargo build --release -p vitaqueue --bin vitaqueue

# ---- runtime --------------------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin vitaqueue
COPY --from=builder /app/target/release/vitaqueue /usr/local/bin/vitaqueue
USER vitaqueue
ENV VQ_HTTP__HOST=0.0.0.0 \
    VQ_HTTP__PORT=8080
EXPOSE 8080
CMD ["vitaqueue", "all"]
