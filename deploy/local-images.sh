#!/usr/bin/env bash
# Makes the base images docker-compose.yml and deploy/Dockerfile name (node:20-bookworm-slim,
# nats:2.10-alpine) exist in the local Docker engine without Docker Hub, which CI machines cannot
# reach. An image already present under that name (pulled, or built by an earlier run) is kept,
# so a second run costs two `docker image inspect`s. Otherwise:
#   - a Debian bookworm rootfs from the Debian archive (mmdebstrap, minbase, plus wget for the
#     NATS health check), imported as kubewire-local/bookworm;
#   - node:20-bookworm-slim: that rootfs, this machine's Node 20 and npm at the paths and with the
#     `node` user (uid 1000) of the official image, checked to start in it;
#   - nats:2.10-alpine: that rootfs and this machine's nats-server (deploy/ensure-tools.sh
#     installs it; it is the server the integration tests use).
# Both get this machine's CA bundle and NODE_EXTRA_CA_CERTS, so npm inside a build trusts what
# this machine trusts, and the label org.kubewire.local-base=true, so they can be told apart
# from (and replaced by) the real images: `docker image rm node:20-bookworm-slim nats:2.10-alpine`.
#
# Usage: bash deploy/local-images.sh          (needs a running Docker engine; root or sudo for mmdebstrap)
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_IMAGE=node:20-bookworm-slim
NATS_IMAGE=nats:2.10-alpine
BASE_IMAGE=kubewire-local/bookworm
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

log() { printf '{"component":"local-images","msg":"%s"%s}\n' "$1" "${2:+,$2}" >&2; }
die() { log "$1" "\"error\":true"; exit 1; }
have_image() { docker image inspect "$1" >/dev/null 2>&1; }

docker info >/dev/null 2>&1 || die "no Docker engine answers (start dockerd first)"
if have_image "$NODE_IMAGE" && have_image "$NATS_IMAGE"; then
  log "images present" "\"images\":[\"$NODE_IMAGE\",\"$NATS_IMAGE\"]"
  exit 0
fi
[ -r "$CA_BUNDLE" ] || die "no CA bundle at $CA_BUNDLE (apt-get install ca-certificates)"

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
work=$(mktemp -d /tmp/kubewire-images.XXXXXX)
trap 'rm -rf "$work"' EXIT

if ! have_image "$BASE_IMAGE"; then
  if ! command -v mmdebstrap >/dev/null 2>&1; then
    log "installing mmdebstrap (Debian package)"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq mmdebstrap >/dev/null
  fi
  log "building the Debian bookworm rootfs" "\"image\":\"$BASE_IMAGE\""
  # root mode (through sudo if need be): files owned as in the archive, no unshare set-up needed.
  $sudo mmdebstrap --quiet --mode=root --variant=minbase --include=wget \
    bookworm "$work/rootfs.tar" || die "mmdebstrap failed (is the Debian archive reachable?)"
  docker import --change 'CMD ["bash"]' "$work/rootfs.tar" "$BASE_IMAGE" >/dev/null
  rm -f "$work/rootfs.tar"
fi

cp "$CA_BUNDLE" "$work/ca-certificates.crt"

if ! have_image "$NODE_IMAGE"; then
  node_bin=$(command -v node) || die "no node on this machine to put in $NODE_IMAGE"
  node_bin=$(readlink -f "$node_bin")
  version=$("$node_bin" --version)
  [[ "$version" == v20.* ]] || die "this machine's node is $version; $NODE_IMAGE needs Node 20"
  npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
  [ -f "$npm_dir/package.json" ] || die "npm not found beside node (looked in $npm_dir)"
  mkdir -p "$work/node"
  cp "$node_bin" "$work/node/node"
  cp -r "$npm_dir" "$work/node/npm"
  cat >"$work/node/Dockerfile" <<EOF
FROM $BASE_IMAGE
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
# The official image's layout: npm and npx on PATH, a node user and group with uid/gid 1000.
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\
 && groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node \\
 && node --version && npm --version
ENV NODE_VERSION=${version#v} NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
LABEL org.kubewire.local-base=true
CMD ["node"]
EOF
  cp "$work/ca-certificates.crt" "$work/node/"
  log "building $NODE_IMAGE from this machine's node" "\"node\":\"$version\""
  # `node --version` in the RUN above fails the build if the binary's libraries are missing there.
  docker build -q -t "$NODE_IMAGE" "$work/node" >/dev/null || die "building $NODE_IMAGE failed"
fi

if ! have_image "$NATS_IMAGE"; then
  bash deploy/ensure-tools.sh nats-server
  mkdir -p "$work/nats"
  cp "$(readlink -f "$(command -v nats-server)")" "$work/nats/nats-server"
  cp "$work/ca-certificates.crt" "$work/nats/"
  cat >"$work/nats/Dockerfile" <<EOF
FROM $BASE_IMAGE
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY nats-server /usr/local/bin/nats-server
RUN nats-server --version
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
LABEL org.kubewire.local-base=true
EXPOSE 4222 8222
CMD ["nats-server"]
EOF
  log "building $NATS_IMAGE from this machine's nats-server" "\"nats\":\"$(nats-server --version)\""
  docker build -q -t "$NATS_IMAGE" "$work/nats" >/dev/null || die "building $NATS_IMAGE failed"
fi
log "images ready" "\"images\":[\"$NODE_IMAGE\",\"$NATS_IMAGE\"]"
