#!/usr/bin/env bash
# Makes a Docker engine answer: nothing to do when one does; otherwise starts dockerd in the
# background (its log in a temporary file, named on stderr) and waits up to 60 s for it. Exits 1
# with the reason on stderr when no engine can run here (not installed, not root, no cgroups...):
# test/integration/compose.test.ts then skips and prints that reason.
set -euo pipefail
log() { printf '{"component":"docker-engine","msg":"%s"%s}\n' "$1" "${2:+,$2}" >&2; }
command -v docker >/dev/null 2>&1 || { log "no docker CLI (apt-get install docker.io)" '"error":true'; exit 1; }
docker info >/dev/null 2>&1 && exit 0
command -v dockerd >/dev/null 2>&1 || { log "no Docker engine: dockerd is not installed (apt-get install docker.io)" '"error":true'; exit 1; }
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo -n true 2>/dev/null || { log "dockerd is not running and starting it needs root (no passwordless sudo)" '"error":true'; exit 1; }
  sudo="sudo -n"
fi
logfile=$(mktemp /tmp/kubewire-dockerd.XXXXXX.log)
# setsid: the daemon outlives this script and the test run that called it, as a system service would.
$sudo setsid dockerd >"$logfile" 2>&1 </dev/null &
log "starting dockerd" "\"pid\":$!,\"log\":\"$logfile\""
for _ in $(seq 1 120); do
  if docker info >/dev/null 2>&1; then log "dockerd ready"; exit 0; fi
  kill -0 $! 2>/dev/null || break
  sleep 0.5
done
log "dockerd did not start: $(tail -n 3 "$logfile" | tr '"\n\\' "' /")" "\"log\":\"$logfile\",\"error\":true"
exit 1
