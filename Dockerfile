# syntax=docker/dockerfile:1
# Favorites API image, in two stages on Debian bookworm. The build stage compiles favorites-api and
# catalog-stub with the Debian -dev packages of scripts/install-deps.sh (plus nodejs/npm, which
# fetch the pinned swagger-ui-dist once, at configure time); the runtime stage holds only the
# shared libraries, the two binaries and the stub's products file, and runs as a non-root user.
#
#   docker build -t favorites-api .
#   docker run --rm -p 8080:8080 -e API_KEY=<32+ bytes> -e JWT_SECRET_KEY=<32+ bytes> favorites-api
#   docker compose up --build      # the service, PostgreSQL 15 and the catalog stub
# Checked without a Docker engine by tests/containers/check_containers.py.

FROM debian:bookworm-slim AS build
ARG DEBIAN_FRONTEND=noninteractive
# scripts/install-deps.sh's build packages, less libgtest-dev (the tests are not built here).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config ca-certificates \
      libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev libboost-system1.81-dev \
      libpq-dev libsqlite3-dev libsodium-dev libargon2-dev libssl-dev zlib1g-dev \
      libspdlog-dev libfmt-dev libcli11-dev \
      nodejs npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The pinned Swagger UI gets a layer of its own: fetched again only when the pin changes. The
# configure step below finds it in place and does not fetch it again.
COPY openapi/fetch-swagger-ui.sh openapi/
RUN bash openapi/fetch-swagger-ui.sh build && rm -rf /root/.npm
COPY CMakeLists.txt ./
COPY openapi/ openapi/
COPY tools/ tools/
COPY src/ src/
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DFAV_TESTS=OFF \
 && cmake --build build -j"$(nproc)" --target favorites-api catalog-stub \
 && strip build/favorites-api build/catalog-stub

FROM debian:bookworm-slim AS runtime
ARG DEBIAN_FRONTEND=noninteractive
# Only what the binaries load (libstdc++6, libgcc-s1 and libc6 are in the base image).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libboost-json1.81.0 libboost-url1.81.0 libpq5 libsqlite3-0 libsodium23 libargon2-1 \
      libssl3 zlib1g libspdlog1.10 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 favorites \
 && useradd --system --uid 10001 --gid favorites --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin favorites \
 && mkdir -p /app/data \
 && chown 10001:10001 /app/data
COPY --from=build /src/build/favorites-api /src/build/catalog-stub /usr/local/bin/
# The catalog stub's products (docker-compose.yaml runs the stub from this same image).
COPY --chown=10001:10001 data/fakestore-products.json /app/data/fakestore-products.json
# ./data is writable: the default SQLite database is ./data/favorites.db.
WORKDIR /app
# Production by default: the service refuses to start without real API_KEY / JWT_SECRET_KEY.
ENV ENV=prod \
    API_HOST=0.0.0.0 \
    API_PORT=8080
LABEL org.opencontainers.image.title="favorites-api" \
      org.opencontainers.image.description="Favorites API: aiqfome customers' favorite products"
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 CMD ["favorites-api", "healthcheck"]
STOPSIGNAL SIGTERM
CMD ["favorites-api", "serve"]
