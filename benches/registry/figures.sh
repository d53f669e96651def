#!/bin/bash
# Issue 15's registry figures: whole processes, a loopback docker-registry,
# imgstore's runs alternated with the command it is compared with.
#
#   cargo build --release -p imgstore-cli
#   N=7 benches/registry/figures.sh pull|plain|push|present
#
# pull     1 GiB image (4 gzip layers of 256 MiB random data) into an empty
#          store vs `skopeo copy docker://… oci:DIR`; peak RSS of each
# plain    the same size in plain tar layers vs `openssl dgst -sha256` over
#          the 4 layer files
# push     the gzip image into an empty registry (restarted between runs,
#          outside the timing) vs `skopeo copy oci:DIR docker://…`
# present  a pull of the gzip image into a store that has it (30 runs, ms)
#
# Each line: NAME WALL_SECONDS PEAK_RSS_KB (GNU time), or NAME MS.
# IMGSTORE (default target/release/imgstore), WORK (default
# /tmp/registry-bench: the layouts and stores, up to 3.5 GiB) and REGDATA
# (the registry's storage, default $WORK/regdata, up to 2.2 GiB; a tmpfs
# takes the disk out of both sides) may be set.
set -u
B=$(realpath "${IMGSTORE:-target/release/imgstore}")
W=${WORK:-/tmp/registry-bench}
R=${REGDATA:-$W/regdata}
HERE=$(dirname "$(realpath "$0")")
PORT=5055
REG=127.0.0.1:$PORT
N=${N:-5}
export DOCKER_CONFIG=$W/docker-config
mkdir -p "$DOCKER_CONFIG"
T() { /usr/bin/time -f "%e %M" -o "$W/t.out" "$@" >/dev/null 2>"$W/err.out" || { echo "FAILED: $*"; cat "$W/err.out"; }; cat "$W/t.out"; }

start_registry() {
  rm -rf "$R"; mkdir -p "$R"
  cat > "$W/reg.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $R
http:
  addr: $REG
YML
  docker-registry serve "$W/reg.yml" >"$W/reg.log" 2>&1 &
  echo $! > "$W/reg.pid"
  for _ in $(seq 100); do curl -s -o /dev/null "http://$REG/v2/" && return; sleep 0.1; done
  echo "registry did not start"; exit 1
}
stop_registry() {
  [ -f "$W/reg.pid" ] || return 0
  kill "$(cat "$W/reg.pid")" 2>/dev/null; wait "$(cat "$W/reg.pid")" 2>/dev/null; rm -f "$W/reg.pid"
}
trap stop_registry EXIT

# The layout of KIND (gz or plain), made once.
layout() {
  [ -f "$W/$1/index.json" ] || python3 "$HERE/make_layout.py" "$W/$1" "$1" >/dev/null
}

# A fresh registry holding bench/KIND:v1: the gzip image copied by skopeo,
# the plain one pushed by imgstore (skopeo would compress its layers).
setup() {
  layout "$1"
  stop_registry; start_registry
  if [ "$1" = gz ]; then
    skopeo copy -q --dest-tls-verify=false "oci:$W/gz:v1" "docker://$REG/bench/gz:v1" >/dev/null
  else
    rm -rf "$W/src"; "$B" --root "$W/src" load -q -i "$W/plain" >/dev/null
    "$B" --root "$W/src" push -q "$("$B" --root "$W/src" images -q | head -1)" "$REG/bench/plain:v1" >/dev/null
    rm -rf "$W/src"
  fi
}

case "${1:-}" in
pull)
  setup gz
  for _ in $(seq "$N"); do
    rm -rf "$W/store"; sync
    echo "imgstore-pull $(T "$B" --root "$W/store" pull "$REG/bench/gz:v1")"
    rm -rf "$W/skopeo-oci"; sync
    echo "skopeo-pull $(T skopeo copy -q --src-tls-verify=false "docker://$REG/bench/gz:v1" "oci:$W/skopeo-oci:v1")"
  done
  ;;
plain)
  setup plain
  L=$(python3 -c "import json;m=json.load(open('$W/plain/blobs/sha256/'+json.load(open('$W/plain/index.json'))['manifests'][0]['digest'][7:]));print(' '.join('$W/plain/blobs/sha256/'+l['digest'][7:] for l in m['layers']))")
  for _ in $(seq "$N"); do
    rm -rf "$W/store"; sync
    echo "imgstore-plain-pull $(T "$B" --root "$W/store" pull "$REG/bench/plain:v1")"
    # shellcheck disable=SC2086 # four file names
    echo "openssl-dgst $(T openssl dgst -sha256 $L)"
  done
  ;;
push)
  layout gz
  rm -rf "$W/src"; "$B" --root "$W/src" load -q -i "$W/gz" >/dev/null
  ID=$("$B" --root "$W/src" images -q | head -1)
  for _ in $(seq "$N"); do
    stop_registry; start_registry; sync
    echo "imgstore-push $(T "$B" --root "$W/src" push "$ID" "$REG/push/gz:v1")"
    stop_registry; start_registry; sync
    echo "skopeo-push $(T skopeo copy -q --dest-tls-verify=false "oci:$W/gz:v1" "docker://$REG/push/gz:v1")"
  done
  ;;
present)
  setup gz
  rm -rf "$W/store"; "$B" --root "$W/store" pull -q "$REG/bench/gz:v1" >/dev/null
  for _ in $(seq 30); do
    s=$EPOCHREALTIME; "$B" --root "$W/store" pull "$REG/bench/gz:v1" >/dev/null; e=$EPOCHREALTIME
    echo "present-pull-ms $(python3 -c "print(round(($e-$s)*1000,1))")"
  done
  ;;
*)
  echo "usage: figures.sh pull|plain|push|present" >&2; exit 2
  ;;
esac
stop_registry
rm -rf "$W/store" "$W/skopeo-oci" "$W/src" "$R"
