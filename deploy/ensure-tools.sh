#!/usr/bin/env bash
# Installs the Debian packages kubewire runs with, when missing: ensure-tools.sh nats-server tshark kubectl
set -euo pipefail
declare -A package=([nats-server]=nats-server [tshark]=tshark [kubectl]=kubernetes-client [dig]=bind9-dnsutils [dnsperf]=dnsperf)
missing=()
for tool in "$@"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${package[$tool]:-$tool}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing ${missing[*]} (Debian packages)" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${missing[@]}" >/dev/null
