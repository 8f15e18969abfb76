#!/usr/bin/env bash
# How long a backup leaves a labelled workload with no running task, and where
# that time goes. On the local swarm (hack/swarm-up.sh; started here when no
# engine is reachable), with a volume of BENCH_MIB MiB (default 1024: files of
# random data, half of each file zeros) mounted by:
#   service:   a replicated service of 2 replicas with the deploy label
#              docker-volume-backup.stop-during-backup (scaled to zero)
#   container: a plain container with that label (stopped and started)
# each in a group of its own (the label's value).
# For each, BENCH_RUNS times (default 3), `lifeboat backup` of that volume
# (gzip, into a folder under /tmp). The engine's own event stream gives the
# window with no running task (from the last task's exit to the first
# start), and splits it:
#   engine:   the engine's own part: from the scale-up (service update event)
#             or the container's start (its volume's mount event) to the
#             first task running. The same
#             figure for a hold done by hand (docker service scale -d / docker
#             stop + start, nothing read) is printed beside it.
#   read:     lifeboat's reading of the volume (its "archiving" line to its
#             "resuming" line, stamped as they are printed)
#   lifeboat: the rest: noticing the tasks are gone, its checks before and
#             after reading, starting the resume.
# As the yardstick, docker-volume-backup's method done by hand in the same
# run: scale to zero (stop the container), wait for UpdateConfig.Monitor (5 s
# by default; docker-volume-backup waits for it after each scale), `tar -czf`
# of the volume while held, scale back (start the container). Its image is not
# used: no registry is reachable here, and its steps are what costs the time.
# Prints one line per run and the medians.
#   hack/bench-downtime.sh
#   BENCH_MIB=256 BENCH_RUNS=1 hack/bench-downtime.sh
# Everything it creates is removed on exit.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

mib=${BENCH_MIB:-1024}
[[ "$mib" =~ ^[1-9][0-9]*$ ]] || die "BENCH_MIB must be a number of MiB"
runs=${BENCH_RUNS:-3}
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive number"
files=16
monitor_seconds=5

"$LIFEBOAT_ROOT/hack/swarm-up.sh" >&2
load_engine_env
"$LIFEBOAT_ROOT/hack/build.sh" >&2
lifeboat=$LIFEBOAT_BUILD_DIR/controller/lifeboat
image=$LIFEBOAT_TEST_IMAGE
docker image inspect "$image" >/dev/null 2>&1 || import_test_image

tag=lbdown$$
work=$(mktemp -d /tmp/lifeboat-bench-downtime.XXXXXX)
# The event watchers run in subshells: their pids go to a file, so that
# cleanup finds them whatever ended the run.
cleanup() {
  xargs -r kill <"$work/watchers" 2>/dev/null || true
  docker service rm "$tag-svc" >/dev/null 2>&1 || true
  docker rm -f "$tag-ctr" >/dev/null 2>&1 || true
  # The service's tasks leave their containers for a moment after `rm`.
  for _ in $(seq 50); do
    docker ps -aq --filter "label=com.docker.swarm.service.name=$tag-svc" | grep -q . || break
    sleep 0.2
  done
  docker volume rm -f "$tag-svc" "$tag-ctr" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# Each kind's tasks when running, and its volume.
tasks_of() { if [[ $1 == service ]]; then echo 2; else echo 1; fi; }
volume_of() { if [[ $1 == service ]]; then echo "$tag-svc"; else echo "$tag-ctr"; fi; }

now_ns() { local t=$EPOCHREALTIME; echo "${t/./}000"; }

fill() { # volume
  local half=$((mib * 1048576 / files / 2))
  docker run --rm --network none -v "$1:/data" "$image" sh -c "
    i=0; while [ \$i -lt $files ]; do
      { head -c $half /dev/urandom; head -c $half /dev/zero; } > /data/f\$i
      i=\$((i + 1)); done; sync" >&2
}

# The workload: PID 1 exits at once on SIGTERM, as a database that stops
# cleanly would, so a stop is not the engine's 10 s kill timeout.
workload=(sh -c 'trap "exit 0" TERM; sleep 1000000 & wait')

log "filling two volumes of $mib MiB"
docker volume create "$tag-svc" >/dev/null
docker volume create "$tag-ctr" >/dev/null
fill "$tag-svc"
fill "$tag-ctr"
# Each workload in a group of its own: a run holds only its own.
docker service create -q --name "$tag-svc" --replicas 2 \
  --label "docker-volume-backup.stop-during-backup=$tag-svc" \
  --mount "type=volume,source=$tag-svc,target=/data" "$image" "${workload[@]}" >/dev/null
docker run -d --name "$tag-ctr" --label "docker-volume-backup.stop-during-backup=$tag-ctr" \
  -v "$tag-ctr:/data" "$image" "${workload[@]}" >/dev/null

schedule() { # volume
  cat >"$work/$1.yaml" <<EOF
apiVersion: lifeboat/v1
kind: BackupSchedule
metadata:
  name: $1
spec:
  schedule: "@daily"
  volumes: [$1]
  stopDuringBackup: $1
  archive: {compression: gzip}
  destinations:
    - local: {path: $work/archives}
EOF
}
schedule "$tag-svc"
schedule "$tag-ctr"
mkdir -p "$work/archives"
: >"$work/watchers"

# Engine events of the workload into $work/events (nanoseconds, action):
# its containers' die/start, and the service's updates.
watch_events() { # kind
  : >"$work/events"
  if [[ $1 == service ]]; then
    docker events --filter type=container --filter event=die --filter event=start \
      --filter "label=com.docker.swarm.service.name=$tag-svc" \
      --format '{{.TimeNano}} {{.Action}}' >>"$work/events" &
    echo $! >>"$work/watchers"
    docker events --filter type=service --filter "service=$tag-svc" \
      --format '{{.TimeNano}} service-{{.Action}}' >>"$work/events" &
    echo $! >>"$work/watchers"
  else
    docker events --filter type=container --filter "container=$tag-ctr" \
      --filter event=die --filter event=start \
      --format '{{.TimeNano}} {{.Action}}' >>"$work/events" &
    echo $! >>"$work/watchers"
    # A container's start has no request event; the volume's mount is the
    # first step of starting it.
    docker events --filter type=volume --filter "volume=$tag-ctr" --filter event=mount \
      --format '{{.TimeNano}} mount' >>"$work/events" &
    echo $! >>"$work/watchers"
  fi
  sleep 0.5 # docker events subscribes asynchronously
}
stop_watching() {
  sleep 0.5
  xargs -r kill <"$work/watchers" 2>/dev/null || true
  : >"$work/watchers"
}

# The no-task window and the engine's part of it, in ms: "window engine".
# $1 = tasks running before. The engine's part starts at the last scale-up
# (service update) or volume mount after the last task exited.
window() {
  sort -n "$work/events" | awk -v n="$1" '
    $2 == "die" { n--; if (n == 0) gone = $1 }
    ($2 == "service-update" || $2 == "mount") && gone { request = $1 }
    $2 == "start" { if (n == 0 && gone) { printf "%.0f %.0f\n", ($1 - gone) / 1e6, ($1 - request) / 1e6; exit } n++ }'
}

wait_running() { # kind count
  for _ in $(seq 300); do
    if [[ $1 == service ]]; then
      [[ $(docker service ps -q --filter desired-state=running "$tag-svc" |
        xargs -r docker inspect -f '{{.Status.State}}' | grep -c running) -ge $2 ]] && return
    else
      [[ $(docker inspect -f '{{.State.Running}}' "$tag-ctr") == true ]] && return
    fi
    sleep 0.2
  done
  die "the $1 did not come back"
}
wait_stopped() { # kind
  for _ in $(seq 300); do
    if [[ $1 == service ]]; then
      docker ps -q --filter "label=com.docker.swarm.service.name=$tag-svc" | grep -q . || return 0
    else
      [[ $(docker inspect -f '{{.State.Running}}' "$tag-ctr") == false ]] && return
    fi
    sleep 0.05
  done
  die "the $1 did not stop"
}

# A hold by hand, nothing read in between, or docker-volume-backup's method
# ($2 = dvb). Prints "window engine".
by_hand() { # kind [dvb]
  local kind=$1
  watch_events "$kind"
  if [[ $kind == service ]]; then
    docker service scale -d "$tag-svc=0" >/dev/null
  else
    docker stop "$tag-ctr" >/dev/null
  fi
  wait_stopped "$kind"
  if [[ ${2:-} == dvb ]]; then
    sleep "$monitor_seconds"
    local mountpoint
    mountpoint=$(docker volume inspect -f '{{.Mountpoint}}' "$(volume_of "$kind")")
    tar -C "$mountpoint" -czf "$work/dvb.tar.gz" .
  fi
  if [[ $kind == service ]]; then
    docker service scale -d "$tag-svc=2" >/dev/null
  else
    docker start "$tag-ctr" >/dev/null
  fi
  wait_running "$kind" 1
  stop_watching
  window "$(tasks_of "$kind")"
  if [[ ${2:-} == dvb ]]; then
    sleep "$monitor_seconds"
  fi
  wait_running "$kind" "$(tasks_of "$kind")"
  rm -f "$work/dvb.tar.gz"
}

# lifeboat's run; prints "window engine read".
by_lifeboat() { # kind
  local kind=$1 volume
  volume=$(volume_of "$kind")
  watch_events "$kind"
  "$lifeboat" backup --schedule "$work/$volume.yaml" |
    while IFS= read -r line; do printf '%s %s\n' "$(now_ns)" "$line"; done >"$work/lifeboat.out"
  stop_watching
  grep -q ' succeeded: ' "$work/lifeboat.out" || { cat "$work/lifeboat.out" >&2; die "lifeboat backup failed"; }
  local read_ms
  read_ms=$(awk 'tolower($3) == "archiving" { from = $1 } tolower($3) == "resuming" && from { printf "%.0f\n", ($1 - from) / 1e6; exit }' \
    "$work/lifeboat.out")
  [[ -n "$read_ms" ]] || { cat "$work/lifeboat.out" >&2; die "no archiving/resuming lines in lifeboat's output"; }
  echo "$(window "$(tasks_of "$kind")") $read_ms"
  wait_running "$kind" "$(tasks_of "$kind")"
  rm -rf "$work/archives"/*
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

wait_running service 2
for kind in service container; do
  : >"$work/rows-$kind"
  for run in $(seq "$runs"); do
    by_hand "$kind" >"$work/figures"
    read -r hand_window hand_engine <"$work/figures"
    by_lifeboat "$kind" >"$work/figures"
    read -r lb_window lb_engine lb_read <"$work/figures"
    by_hand "$kind" dvb >"$work/figures"
    read -r dvb_window _ <"$work/figures"
    overhead=$((lb_window - lb_read - lb_engine))
    printf '%-9s run %d: no task %6d ms = engine %5d + read %6d + lifeboat %5d | by hand: engine %5d | docker-volume-backup method: %6d ms (%.1fx)\n' \
      "$kind" "$run" "$lb_window" "$lb_engine" "$lb_read" "$overhead" "$hand_engine" "$dvb_window" \
      "$(awk -v a="$dvb_window" -v b="$lb_window" 'BEGIN { print a / b }')"
    echo "$lb_window $lb_engine $lb_read $overhead $hand_engine $dvb_window" >>"$work/rows-$kind"
  done
done

echo
echo "medians of $runs run(s), $mib MiB volume, gzip (ms):"
printf '%-10s %9s %7s %7s %9s %13s %12s %12s\n' kind no-task engine read lifeboat engine-by-hand dvb-method dvb/lifeboat
for kind in service container; do
  col() { awk -v c="$1" '{ print $c }' "$work/rows-$kind" | median; }
  w=$(col 1) e=$(col 2) r=$(col 3) o=$(col 4) h=$(col 5) d=$(col 6)
  printf '%-10s %9d %7d %7d %9d %13d %12d %11.1fx\n' "$kind" "$w" "$e" "$r" "$o" "$h" "$d" \
    "$(awk -v a="$d" -v b="$w" 'BEGIN { print a / b }')"
done
