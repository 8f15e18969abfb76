#!/usr/bin/env bash
# Issue 16's figures: how long `lifeboat backup` holds a labelled service whose
# volume of BENCH_MIB MiB (1024) lives on the manager, read by lifeboat itself,
# against the same volume on a worker, read by an agent job there; with the
# peak RSS of lifeboat and of the agent. BENCH_RUNS runs each (3), medians.
# Uses the three-node cluster of hack/cluster-up.sh (brought up when absent)
# with lifeboat's image from hack/image.sh; everything it creates is removed.
#   BENCH_MIB  BENCH_RUNS  BENCH_COMPRESSION (zstd)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

mib=${BENCH_MIB:-1024}
runs=${BENCH_RUNS:-3}
compression=${BENCH_COMPRESSION:-zstd}
image=${LIFEBOAT_IMAGE:-lifeboat:dev}
lifeboat=$LIFEBOAT_BUILD_DIR/controller/lifeboat

"$LIFEBOAT_ROOT/hack/build.sh" >&2
(load_engine_env && LIFEBOAT_IMAGE=$image "$LIFEBOAT_ROOT/hack/image.sh") >&2
LIFEBOAT_CLUSTER_IMAGES=$image "$LIFEBOAT_ROOT/hack/cluster-up.sh" >&2
source "$LIFEBOAT_CLUSTER_DIR/env"
on() { # node command...: one node's engine
  local host_var="LIFEBOAT_NODE${1#n}_HOST"
  shift
  DOCKER_HOST=${!host_var} "$@"
}

tag=lb-bench-agents-$$
work=$(mktemp -d /tmp/lifeboat-bench-agents.XXXXXX)
cleanup() {
  local node container
  docker service rm "$tag-n1" "$tag-n3" >/dev/null 2>&1 || true
  for node in n1 n3; do
    # Agent containers that exited stay on their node holding the volume.
    for container in $(on "$node" docker ps -aq --filter "label=lifeboat.agent-of"); do
      on "$node" docker rm -f "$container" >/dev/null 2>&1 || true
    done
    for _ in $(seq 50); do
      on "$node" docker volume rm "$tag-$node" >/dev/null 2>&1 && break
      sleep 0.2
    done
  done
  rm -rf "$work"
}
trap cleanup EXIT

# A volume of $mib MiB on each node (64 MiB files of random bytes: what the
# compressor gets is the same on both), and a labelled service pinned there.
for node in n1 n3; do
  id_var="LIFEBOAT_NODE${node#n}_ID"
  on "$node" docker volume create "$tag-$node" >/dev/null
  on "$node" docker run --rm --network none -v "$tag-$node:/data" "$LIFEBOAT_TEST_IMAGE_ID" \
    sh -c "i=0; while [ \$i -lt $((mib / 64)) ]; do dd if=/dev/urandom of=/data/f\$i bs=1M count=64 2>/dev/null; i=\$((i+1)); done"
  docker service create -q --no-resolve-image --name "$tag-$node" --replicas 1 \
    --constraint "node.id==${!id_var}" \
    --label "docker-volume-backup.stop-during-backup=$tag-$node" \
    --mount "type=volume,source=$tag-$node,target=/data" "$LIFEBOAT_TEST_IMAGE_ID" sleep 1000000 >/dev/null
  cat >"$work/$node.yaml" <<EOF
apiVersion: lifeboat/v1
kind: BackupSchedule
metadata:
  name: $tag-$node
spec:
  schedule: "@daily"
  volumes: [$tag-$node]
  stopDuringBackup: $tag-$node
  archive: {compression: $compression}
  destinations:
    - local: {path: $work/archives}
EOF
done
mkdir -p "$work/archives"

# The peak RSS (VmHWM, KiB) of the agent process, wherever its node runs it:
# every node's processes are this machine's.
watch_agent() {
  local peak=0 pid hwm
  while [[ ! -e "$work/stop-watch" ]]; do
    for pid in $(pgrep -f "agent --run" || true); do
      hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
      [[ -n "$hwm" && "$hwm" -gt "$peak" ]] && peak=$hwm && echo "$peak" >"$work/agent-rss"
    done
    sleep 0.05
  done
}

# One run: prints "held_ms lifeboat_rss_kib agent_rss_kib".
one_run() { # node
  local node=$1
  rm -f "$work/stop-watch" "$work/agent-rss"
  watch_agent &
  local watcher=$!
  /usr/bin/time -o "$work/time" -f '%M' "$lifeboat" backup --schedule "$work/$node.yaml" --agent-image "$image" |
    while IFS= read -r line; do printf '%s %s\n' "$(date +%s%N)" "$line"; done >"$work/out"
  touch "$work/stop-watch"
  wait "$watcher"
  grep -q ' succeeded: ' "$work/out" || { cat "$work/out" >&2; die "lifeboat backup of $node failed"; }
  local held
  held=$(awk 'tolower($3) == "archiving" { from = $1 } tolower($3) == "resuming" && from { printf "%.0f\n", ($1 - from) / 1e6; exit }' "$work/out")
  [[ -n "$held" ]] || { cat "$work/out" >&2; die "no archiving/resuming lines in lifeboat's output"; }
  echo "$held $(tail -1 "$work/time") $(cat "$work/agent-rss" 2>/dev/null || echo 0)"
  rm -rf "$work/archives"/*
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

printf '%-22s %9s %16s %14s\n' "volume ($mib MiB)" "held ms" "lifeboat RSS MiB" "agent RSS MiB"
for node in n1 n3; do
  : >"$work/figures"
  for _ in $(seq "$runs"); do
    one_run "$node" >>"$work/figures"
  done
  where=$([[ $node == n1 ]] && echo "on the manager" || echo "on a worker (agent)")
  printf '%-22s %9s %16.1f %14.1f\n' "$where" \
    "$(cut -d' ' -f1 "$work/figures" | median)" \
    "$(cut -d' ' -f2 "$work/figures" | median | awk '{ print $1 / 1024 }')" \
    "$(cut -d' ' -f3 "$work/figures" | median | awk '{ print $1 / 1024 }')"
done
