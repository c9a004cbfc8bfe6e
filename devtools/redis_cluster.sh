#!/usr/bin/env bash
# A local 3-node Redis Cluster (3 primaries, no replicas) for the tests and CI.
#   devtools/redis_cluster.sh up      start the nodes and create the cluster; already up: nothing to do
#   devtools/redis_cluster.sh down    stop the nodes and remove their directory
#   devtools/redis_cluster.sh status  exit 0 when the cluster answers with cluster_state:ok
# Ports: REDIS_CLUSTER_PORTS (default "7101 7102 7103"); data (nodes.conf, logs) under
# REDIS_CLUSTER_DIR (default /tmp/holysheep-redis-cluster); REDIS_CLUSTER_NODE_TIMEOUT (ms, default 5000):
# how long before the others mark a stopped node failed; REDIS_CLUSTER_PASSWORD: the nodes require it.
# Nothing is saved to disk: it is test state.
# The plugin's URL for it: redis+cluster://127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103
set -euo pipefail
PORTS=(${REDIS_CLUSTER_PORTS:-7101 7102 7103})
DIR=${REDIS_CLUSTER_DIR:-/tmp/holysheep-redis-cluster}
HOST=127.0.0.1

AUTH=()
[ -n "${REDIS_CLUSTER_PASSWORD:-}" ] && AUTH=(-a "$REDIS_CLUSTER_PASSWORD" --no-auth-warning)
cli() { redis-cli -h "$HOST" -p "$1" "${AUTH[@]}" "${@:2}"; }
answers() { cli "$1" ping 2>/dev/null | grep -q PONG; }
cluster_ok() {
  local port info
  for port in "${PORTS[@]}"; do
    info=$(cli "$port" cluster info 2>/dev/null) || return 1
    grep -q '^cluster_state:ok' <<<"$info" || return 1
    grep -q "^cluster_known_nodes:${#PORTS[@]}" <<<"$info" || return 1
  done
}

unassigned() {
  local port
  for port in "${PORTS[@]}"; do
    cli "$port" cluster info 2>/dev/null | grep -q '^cluster_slots_assigned:0' || return 1
  done
}

up() {
  command -v redis-server >/dev/null || { echo "redis-server is not installed" >&2; return 1; }
  mkdir -p "$DIR"
  # Two callers at once (CI and a test fixture, or two pytest runs) must not create the cluster twice
  # (flock is util-linux: without it, as on macOS, callers are trusted to take turns).
  if command -v flock >/dev/null; then
    exec 9>"$DIR/.lock"
    flock 9
  fi
  cluster_ok && return 0
  local port
  for port in "${PORTS[@]}"; do
    answers "$port" && continue
    mkdir -p "$DIR/$port"
    # --dir holds nodes.conf: a node restarted after a crash rejoins the cluster it knew.
    local secret=()
    [ -n "${REDIS_CLUSTER_PASSWORD:-}" ] && secret=(--requirepass "$REDIS_CLUSTER_PASSWORD" --masterauth "$REDIS_CLUSTER_PASSWORD")
    redis-server "${secret[@]}" --daemonize yes --bind "$HOST" --port "$port" --dir "$DIR/$port" \
      --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout "${REDIS_CLUSTER_NODE_TIMEOUT:-5000}" \
      --save '' --appendonly no --logfile "$DIR/$port/redis.log" --pidfile "$DIR/$port/redis.pid" 9>&-
  done
  for port in "${PORTS[@]}"; do
    for _ in $(seq 100); do answers "$port" && break; sleep 0.05; done
    answers "$port" || { echo "redis-server on port $port did not start (see $DIR/$port/redis.log)" >&2; return 1; }
  done
  # Restarted nodes that kept their nodes.conf (slots assigned) find each other again within a moment.
  if ! unassigned; then
    for _ in $(seq 40); do cluster_ok && return 0; sleep 0.1; done
  fi
  # Not a cluster (first start, or nodes left half-made): start over empty on every node, then create it.
  for port in "${PORTS[@]}"; do
    cli "$port" flushall >/dev/null
    cli "$port" cluster reset hard >/dev/null
  done
  local nodes=()
  for port in "${PORTS[@]}"; do nodes+=("$HOST:$port"); done
  redis-cli "${AUTH[@]}" --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >"$DIR/create.log" 2>&1 ||
    { cat "$DIR/create.log" >&2; return 1; }
  for _ in $(seq 100); do cluster_ok && return 0; sleep 0.1; done
  echo "the Redis Cluster on ports ${PORTS[*]} did not reach cluster_state:ok (see $DIR/create.log)" >&2
  return 1
}

down() {
  local port
  for port in "${PORTS[@]}"; do
    answers "$port" && cli "$port" shutdown nosave >/dev/null 2>&1 || true
  done
  rm -rf "$DIR"
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  status) cluster_ok ;;
  *) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
