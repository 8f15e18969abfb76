#!/usr/bin/env bash
# What reading a volume on a worker costs, against the same volume on the
# manager, on the three-node swarm of cluster-up.sh (brought up here when it
# is not, with lifeboat:dev on every node; hack/image.sh builds that image).
# Two labelled services hold BENCH_MIB MiB (default 1024) each, written the
# same way (BENCH_FILES files of random data, half of each file zeros so that
# gzip has something to do), one pinned to n1 (the manager), one to n3. For
# each, BENCH_RUNS times (default 3), `lifeboat backup` of that one volume, and
# the figures of the last line:
#   - held: how long the service was at 0 replicas (the run's own figure)
#   - wall: the whole run, and the peak RSS of the `lifeboat backup` process
#   - for n3, the agent's peak RSS (it reports its own getrusage figure)
# and the medians, with the ratio worker/manager for held and wall. As the
# yardstick, `tar -czf` of the same data read directly on the host, timed
# the same way (what a hand-written cron job would hold the database for).
#   hack/bench-multinode.sh
#   BENCH_MIB=256 BENCH_RUNS=1 hack/bench-multinode.sh
# Everything it creates is removed on exit; the cluster stays up when it was.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

mib=${BENCH_MIB:-1024}
[[ "$mib" =~ ^[1-9][0-9]*$ ]] || die "BENCH_MIB must be a number of MiB"
files=${BENCH_FILES:-16}
runs=${BENCH_RUNS:-3}
work=$(mktemp -d /tmp/lifeboat-bench-mn.XXXXXX)
bin=${LIFEBOAT_BIN:-$LIFEBOAT_BUILD_DIR/controller/lifeboat}
[[ -x "$bin" ]] || die "no lifeboat binary at $bin: run hack/build.sh"

brought_up=false
if [[ ! -f "$LIFEBOAT_CLUSTER_DIR/env" ]]; then
  LIFEBOAT_CLUSTER_IMAGES=lifeboat:dev "$LIFEBOAT_ROOT/hack/cluster-up.sh" >&2
  brought_up=true
fi
# shellcheck source=/dev/null
source "$LIFEBOAT_CLUSTER_DIR/env"
image=$(docker image inspect -f '{{.Id}}' lifeboat:dev 2>/dev/null) ||
  die "no lifeboat:dev in the cluster: hack/image.sh, then hack/cluster-down.sh and rerun"
test_image=$LIFEBOAT_TEST_IMAGE_ID
tag=lbbench$$

cleanup() {
  docker service rm "$tag-n1" "$tag-n3" >/dev/null 2>&1 || true
  sleep 2
  docker volume rm -f "$tag-n1" >/dev/null 2>&1 || true
  DOCKER_HOST=$LIFEBOAT_NODE3_HOST docker ps -aq --filter label=lifeboat.agent-of |
    xargs -r env DOCKER_HOST="$LIFEBOAT_NODE3_HOST" docker rm -f >/dev/null 2>&1 || true
  DOCKER_HOST=$LIFEBOAT_NODE3_HOST docker volume rm -f "$tag-n3" >/dev/null 2>&1 || true
  rm -rf "$work"
  if $brought_up; then "$LIFEBOAT_ROOT/hack/cluster-down.sh" >&2 || true; fi
}
trap cleanup EXIT

# The same content on each node's volume: seeded, so both are alike.
fill() { # node-host volume
  local half=$((mib * 1048576 / files / 2))
  DOCKER_HOST=$1 docker run --rm --network none -v "$2:/data" "$test_image" sh -c "
    i=0; while [ \$i -lt $files ]; do
      { head -c $half /dev/urandom; head -c $half /dev/zero; } > /data/f\$i
      i=\$((i + 1)); done; sync" >&2
}
service() { # node-id name
  docker service create -d -q --name "$2" --mount "type=volume,source=$2,target=/data" \
    --constraint "node.id==$1" --stop-grace-period 1s \
    --label "docker-volume-backup.stop-during-backup=$2" \
    "$test_image" sh -c 'trap "exit 0" TERM; while true; do sleep 1; done' >/dev/null 2>&1
  for _ in $(seq 1 300); do
    [[ $(docker service ps "$2" --filter desired-state=running --format '{{.CurrentState}}') == Running* ]] &&
      return 0
    sleep 0.2
  done
  die "service $2 did not start"
}

log "filling ${mib} MiB on n1 and on n3"
DOCKER_HOST=$LIFEBOAT_NODE3_HOST docker volume create "$tag-n3" >/dev/null
docker volume create "$tag-n1" >/dev/null
fill "$LIFEBOAT_NODE3_HOST" "$tag-n3"
fill "$DOCKER_HOST" "$tag-n1"
service "$LIFEBOAT_NODE1_ID" "$tag-n1"
service "$LIFEBOAT_NODE3_ID" "$tag-n3"

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

declare -A held wall rss agent
for node in n1 n3; do
  for run in $(seq 1 "$runs"); do
    mkdir -p "$work/archives"
    cat >"$work/schedule.yaml" <<EOF
apiVersion: lifeboat/v1
kind: BackupSchedule
metadata: {name: $tag-$node}
spec:
  schedule: '@every 24h'
  volumes: [$tag-$node]
  stopDuringBackup: $tag-$node
  destinations:
    - local: {path: $work/archives}
EOF
    /usr/bin/time -f '%e %M' -o "$work/time" "$bin" backup --schedule "$work/schedule.yaml" \
      --agent-image "$image" --helper-image "$test_image" >"$work/out" 2>&1 ||
      { cat "$work/out" >&2; die "backup of $node failed"; }
    line=$(grep -m1 'succeeded:' "$work/out")
    h=$(sed -nE 's/.*held ([0-9.]+)s.*/\1/p' <<<"$line")
    read -r w m <"$work/time"
    held[$node]+="$h "
    wall[$node]+="$w "
    rss[$node]+="$((m / 1024)) "
    if [[ $node == n3 ]]; then
      a=$(sed -nE 's/.*agent peak RSS ([0-9.]+ [KMG]iB).*/\1/p' <<<"$line")
      agent[$node]+="${a// /} "
    fi
    printf '%s run %d: held %ss, wall %ss, lifeboat backup peak RSS %d MiB%s\n' "$node" "$run" \
      "$h" "$w" "$((m / 1024))" "${a:+, agent peak RSS $a}"
    rm -rf "$work/archives"
    unset a
  done
done

# The yardstick: tar | gzip of the same bytes, read where dockerd keeps them.
n1_dir=$(docker volume inspect -f '{{.Mountpoint}}' "$tag-n1")
tar_times=""
for _ in $(seq 1 "$runs"); do
  start=$EPOCHREALTIME
  tar -C "$n1_dir" -czf "$work/tar.tar.gz" .
  tar_times+="$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.2f", b - a}') "
  rm -f "$work/tar.tar.gz"
done

hm1=$(tr ' ' '\n' <<<"${held[n1]}" | grep . | median)
hm3=$(tr ' ' '\n' <<<"${held[n3]}" | grep . | median)
wm1=$(tr ' ' '\n' <<<"${wall[n1]}" | grep . | median)
wm3=$(tr ' ' '\n' <<<"${wall[n3]}" | grep . | median)
tm=$(tr ' ' '\n' <<<"$tar_times" | grep . | median)
echo
printf 'volume: %d MiB in %d files (half random, half zeros), %d run(s) each, medians\n' \
  "$mib" "$files" "$runs"
printf '  manager (n1): held %6.2fs   wall %6.2fs   lifeboat backup RSS %s MiB\n' "$hm1" "$wm1" \
  "${rss[n1]}"
printf '  worker  (n3): held %6.2fs   wall %6.2fs   lifeboat backup RSS %s MiB   agent RSS %s\n' \
  "$hm3" "$wm3" "${rss[n3]}" "${agent[n3]}"
printf '  tar -czf of the same data on the host: %6.2fs\n' "$tm"
awk -v a="$hm3" -v b="$hm1" -v c="$wm3" -v d="$wm1" -v t="$tm" 'BEGIN {
  printf "  worker/manager: held %.2fx, wall %.2fx; held on the worker / tar -czf: %.2fx\n",
    a / b, c / d, a / t }'
