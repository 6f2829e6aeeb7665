# syntax=docker/dockerfile:1
# fakemx container image: build with dev dependencies, run on the Node LTS slim image with
# production dependencies and dist/ only, as a non-root user. Config at /etc/fakemx, corpus and
# log files on the /var/lib/fakemx volume, stdout for `docker logs`. See docs/deploy.md.
#
#   docker build -t fakemx .
#   docker run -d --name fakemx -p 25:25 -v fakemx-data:/var/lib/fakemx fakemx
#
# Port 25 as a non-root user: Docker (20.10+) sets net.ipv4.ip_unprivileged_port_start=0 in the
# container's network namespace, so no capability is needed. Where that is not so (host
# networking, some rootless engines) listen on 2525 (FAKEMX_LISTEN_PORT or a mounted config)
# and publish -p 25:2525.

ARG NODE_IMAGE=node:22-bookworm-slim

# ---- production dependencies only ---------------------------------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /opt/fakemx
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# ---- build: TypeScript with dev dependencies -----------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
# `npm run build` also runs scripts/ (the console's assets and the manual page into dist/).
COPY tsconfig.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm run build

# ---- runtime -----------------------------------------------------------------------------
FROM ${NODE_IMAGE}
ENV NODE_ENV=production
# libuv's thread pool runs the store's fsync/rename/open; 4 threads (the default) queue busy
# sessions' durable writes. Read once at start-up, so it must be in the environment (the bin,
# dist/fakemx.cjs, sets the same if unset). `docker run -e UV_THREADPOOL_SIZE=32` wins.
ENV UV_THREADPOOL_SIZE=16
# V8's young generation at most 2 x 4 MiB instead of 2 x 16: 2.2 KiB less RSS per held session at
# 15,000, no more CPU per message (bench/RESULTS.md, round 5). The same as the systemd units.
ENV NODE_OPTIONS=--max-semi-space-size=4
# The state store (greylisting, the client cache, the AUTH salt) on the volume, writable by the
# fakemx user: the default ./var/state would be under the root-owned /opt/fakemx.
ENV FAKEMX_STATE_PATH=/var/lib/fakemx/state
WORKDIR /opt/fakemx
COPY --from=deps /opt/fakemx/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json README.md ./
COPY config ./config
COPY config/docker.json /etc/fakemx/fakemx.json
# A fixed non-root uid/gid so volume ownership survives image upgrades.
RUN groupadd --system --gid 2525 fakemx \
 && useradd --system --uid 2525 --gid fakemx --home-dir /var/lib/fakemx --shell /usr/sbin/nologin fakemx \
 && ln -s /opt/fakemx/dist/fakemx.cjs /usr/local/bin/fakemx \
 && chmod 0755 /opt/fakemx/dist/fakemx.cjs \
 && mkdir -p /var/lib/fakemx/corpus /var/lib/fakemx/log /var/lib/fakemx/state \
 && chown -R fakemx:fakemx /var/lib/fakemx \
 && chmod 0750 /var/lib/fakemx /var/lib/fakemx/corpus /var/lib/fakemx/log /var/lib/fakemx/state
USER fakemx
EXPOSE 25 2525
VOLUME /var/lib/fakemx
# SIGTERM: stop accepting, 421 to waiting clients, shutdownGrace to finish (docker stop -t 30).
STOPSIGNAL SIGTERM
# The daemon's own /healthz (http.port in config/docker.json, 127.0.0.1 inside the container),
# asked with the image's node: no curl in the image. Override the port with FAKEMX_HTTP_PORT.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.FAKEMX_HTTP_PORT||9025)+'/healthz',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["fakemx", "run", "--config", "/etc/fakemx/fakemx.json"]
