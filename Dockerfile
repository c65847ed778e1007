# syntax=docker/dockerfile:1
#
# relbot: one static binary on a small Debian.
#   docker build -t relbot .
#   docker run --env-file deploy/relbot.env -v relbot-artifacts:/var/lib/relbot/artifacts \
#     -v "$PWD/apps.yaml:/etc/relbot/apps.yaml:ro" -p 8080:8080 relbot

# ---- build ---------------------------------------------------------------------
FROM golang:1.26-bookworm AS build
# The Go release .ci/run checks (govulncheck finds the standard library of
# 1.26 vulnerable); the go command fetches it.
ENV GOTOOLCHAIN=go1.27.3
WORKDIR /src
# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/relbot ./cmd/relbot

# ---- runtime -------------------------------------------------------------------
FROM debian:bookworm-slim
# ca-certificates: TLS to Slack, to the databases and to the hooks' HTTPS URLs.
# tzdata: RELBOT_TIME_ZONE and the zones named in apps.yaml.
# postgresql-client: pg_dump writes each backup's schema (relbot refuses one
# older than the database's server: use PostgreSQL's apt repository, or set
# RELBOT_PG_BIN, for servers newer than Debian's); psql and pg_restore are
# there for operators too.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tzdata postgresql-client \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 relbot \
 && useradd --system --uid 10001 --gid relbot --home-dir /var/lib/relbot --no-create-home \
        --shell /usr/sbin/nologin relbot \
 && install -d -o relbot -g relbot -m 0750 /var/lib/relbot /var/lib/relbot/artifacts \
 && install -d -m 0755 /etc/relbot

COPY --from=build /out/relbot /usr/local/bin/relbot

ENV RELBOT_ARTIFACT_DIR=/var/lib/relbot/artifacts \
    RELBOT_APPS_FILE=/etc/relbot/apps.yaml \
    RELBOT_HTTP_ADDR=:8080
# Backups and migration files: keep them on a volume that outlives the container.
VOLUME ["/var/lib/relbot/artifacts"]
WORKDIR /var/lib/relbot
USER relbot:relbot
EXPOSE 8080
ENTRYPOINT ["relbot"]
CMD ["serve"]
