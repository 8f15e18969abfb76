#!/usr/bin/env bash
# The controller at scale, on the local swarm: BENCH_SERVICES services
# (default 1000; BENCH_RUNNING of them with one `sleep` task, the rest at 0
# replicas, all labelled for stop-during-backup) and BENCH_SCHEDULES
# BackupSchedules (default 200; crons that do not fire during the run), then a
# controller process. Measures, in one run:
#   - start-up: controller start -> every schedule shows its next run
#   - latency: `docker config create` of a new schedule -> its config carries
#     lifeboat.status.next-run (BENCH_SAMPLES samples, median and max)
#   - CPU per resync of the controller and of dockerd, from /proc/<pid>/stat:
#     over 20 s without changes (the lease's own writes wake a resync every
#     2 s), and over BENCH_RESYNCS resyncs that config events trigger
#   - CPU per /metrics scrape, and peak RSS of the controller (VmHWM)
# and, as the yardstick, what one `docker service ls` over the same services
# costs (CLI plus dockerd). With BENCH_HISTORY=<n> (default 0) every service
# instead has one replica whose task fails at once, restarted until the swarm
# keeps n tasks of it (history, as a flapping or long-lived swarm has); with
# BENCH_HELD_MIB=<m> (default 0) a Backup object of one more service's volume
# (m MiB) is then run by the controller, and its peak RSS is shown before and
# after that run, whose workload stays held while the volume is read.
#   BENCH_SERVICES=300 BENCH_HISTORY=5 BENCH_HELD_MIB=1024 hack/bench-controller.sh
# With BENCH_HEAPTRACK=<file> the controller runs under heaptrack, which
# writes <file>.zst. Everything it creates is removed on exit.
#   LIFEBOAT_BIN=build/controller/lifeboat hack/bench-controller.sh
# Run under the e2e lock when others share the engine:
#   flock /tmp/lifeboat-e2e.lock hack/bench-controller.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"

services=${BENCH_SERVICES:-1000}
running=${BENCH_RUNNING:-20}
schedules=${BENCH_SCHEDULES:-200}
samples=${BENCH_SAMPLES:-10}
resyncs=${BENCH_RESYNCS:-20}
history=${BENCH_HISTORY:-0}
held_mib=${BENCH_HELD_MIB:-0}

if [[ -z "${LIFEBOAT_BIN:-}" ]]; then
  "$LIFEBOAT_ROOT/hack/build.sh" >&2
  LIFEBOAT_BIN=$LIFEBOAT_BUILD_DIR/controller/lifeboat
fi
bin=$LIFEBOAT_BIN
[[ -x "$bin" ]] || die "no lifeboat binary at $bin"
load_engine_env
engine_reachable || die "no engine at ${DOCKER_HOST:-the default socket}: run hack/swarm-up.sh"
[[ $(docker info --format '{{.Swarm.ControlAvailable}}') == "true" ]] ||
  die "the engine is not a swarm manager"
socket=${DOCKER_HOST#unix://}
# The dockerd behind this socket (others may run on the machine).
dockerd_pid=$(ss -xlpH src "$socket" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)
[[ -n "$dockerd_pid" ]] || die "cannot find the dockerd that listens on $socket"
api() { curl -sf --unix-socket "$socket" "$@"; }

prefix=lbbench$$
work=$(mktemp -d)
controller_pid=""
events_pid=""

cleanup() {
  set +e
  if [[ -n "$controller_pid" ]] && kill -0 "$controller_pid" 2>/dev/null; then
    kill -TERM "$controller_pid"
    for _ in $(seq 1 300); do kill -0 "$controller_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$controller_pid" 2>/dev/null
    wait "$controller_pid" 2>/dev/null
  fi
  # heaptrack writes its file after the controller exited.
  [[ -n "${wrapper_pid:-}" ]] && wait "$wrapper_pid" 2>/dev/null
  if [[ -n "$events_pid" ]]; then
    kill "$events_pid" 2>/dev/null
    wait "$events_pid" 2>/dev/null
  fi
  log "removing the benchmark's services and configs"
  docker service ls -q --filter "label=lifeboat.bench=$prefix" |
    xargs -r -P 4 -I{} curl -s -o /dev/null --unix-socket "$socket" -X DELETE "http://docker/v1.41/services/{}"
  docker config ls --format '{{.ID}} {{.Name}}' | awk -v p="$prefix" 'index($2, p) == 1 {print $1}' |
    xargs -r docker config rm >/dev/null
  for _ in $(seq 1 100); do
    docker volume rm "$prefix-data" >/dev/null 2>&1 && break
    docker volume inspect "$prefix-data" >/dev/null 2>&1 || break
    sleep 0.2
  done
  rm -rf "$work"
}
trap cleanup EXIT

# --- the cluster: services first, so the controller starts on a busy swarm.
command='["sleep","86400"]'
policy='{"Condition":"any"}'
image=$LIFEBOAT_TEST_IMAGE
if ((history > 0)); then
  # Tasks of an image that is nowhere are rejected at once and restarted,
  # with no container made: the pull goes to a closed loopback port.
  running=$services
  image=127.0.0.1:1/lifeboat-bench-absent:latest
  policy="{\"Condition\":\"on-failure\",\"Delay\":0,\"MaxAttempts\":$((history - 1))}"
fi
log "creating $services services ($running with one task), $schedules schedules"
for i in $(seq 1 "$services"); do
  replicas=0
  [[ $i -le $running ]] && replicas=1
  printf '{"Name":"%s-svc%04d","Labels":{"lifeboat.bench":"%s","docker-volume-backup.stop-during-backup":"%s-g%d"},' \
    "$prefix" "$i" "$prefix" "$prefix" $((i % schedules))
  printf '"TaskTemplate":{"ContainerSpec":{"Image":"%s","Command":%s,"StopGracePeriod":1000000000},' \
    "$image" "$command"
  printf '"RestartPolicy":%s},"Mode":{"Replicated":{"Replicas":%d}}}\n' "$policy" "$replicas"
done >"$work/services.jsonl"
xargs -d '\n' -P 4 -I{} curl -sf -o /dev/null --unix-socket "$socket" \
  -H 'Content-Type: application/json' -d '{}' "http://docker/v1.41/services/create" \
  <"$work/services.jsonl" || die "creating services failed"

task_count() { api "http://docker/v1.41/tasks" | python3 -c 'import json, sys; print(len(json.load(sys.stdin)))'; }
if ((history > 0)); then
  log "waiting for $history tasks of history per service"
  t0=$(date +%s)
  until (($(task_count) >= services * history)); do
    (($(date +%s) - t0 < 900)) || die "the swarm holds $(task_count) tasks after 900 s, not $((services * history))"
    sleep 2
  done
fi

# A schedule's YAML. Crons fire on January 1st only, so no run starts while
# this measures; half of them in a zone of their own.
schedule_yaml() { # name index
  local zone=UTC
  (($2 % 2)) && zone=Europe/Berlin
  printf 'apiVersion: lifeboat/v1\nkind: BackupSchedule\nmetadata: {name: %s}\nspec:\n' "$1"
  printf '  schedule: "%d %d 1 1 *"\n  timezone: %s\n' $(($2 % 60)) $(($2 % 24)) "$zone"
  printf '  volumeSelector: {matchLabels: {lifeboat.bench: %s}}\n' "$prefix"
  printf '  stopDuringBackup: "%s-g%d"\n' "$prefix" "$2"
  printf '  destinations: [{local: {path: %s/archive}}]\n  retention: {keepLast: 3}\n' "$work"
}
for i in $(seq 1 "$schedules"); do
  schedule_yaml "$(printf '%s-s%03d' "$prefix" "$i")" "$i"
  echo ---
done >"$work/schedules.yaml"
"$bin" apply -f "$work/schedules.yaml" >/dev/null
objects_in_swarm=$(docker config ls -q --filter label=lifeboat.object | wc -l)

# --- the controller, with a lease of its own; port 0 lets the kernel choose.
docker events --filter type=config --filter event=create --filter event=update \
  --format '{{.Action}} {{.Actor.ID}} {{.TimeNano}}' >"$work/events" &
events_pid=$!
start_ns=$(date +%s%N)
# The environment the image gives the controller (Dockerfile).
export GNUTLS_NO_IMPLICIT_INIT=1
controller_args=(controller --metrics-addr 127.0.0.1:0 --lease-name "$prefix-lease"
  --helper-image "$LIFEBOAT_TEST_IMAGE" --state-file "$work/state.json")
if [[ -n "${BENCH_HEAPTRACK:-}" ]]; then
  # Where the controller's heap goes (heaptrack_print -f <file>.zst): heaptrack
  # starts the controller as its child, and the figures below follow that child.
  heaptrack -o "$BENCH_HEAPTRACK" "$bin" "${controller_args[@]}" >"$work/controller.log" 2>&1 &
  wrapper_pid=$!
  controller_pid=""
  for _ in $(seq 1 100); do
    for p in $(pgrep -f -- "--lease-name $prefix-lease"); do
      [[ "$(readlink "/proc/$p/exe")" == "$(readlink -f "$bin")" ]] && controller_pid=$p
    done
    [[ -n "$controller_pid" ]] && break
    kill -0 "$wrapper_pid" 2>/dev/null || { cat "$work/controller.log" >&2; die "heaptrack exited"; }
    sleep 0.1
  done
  [[ -n "$controller_pid" ]] || die "no controller under heaptrack"
else
  "$bin" "${controller_args[@]}" >"$work/controller.log" 2>&1 &
  controller_pid=$!
fi
port=""
for _ in $(seq 1 100); do
  port=$(ss -ltnpH 2>/dev/null | awk -v pid="pid=$controller_pid," 'index($0, pid) {n = split($4, a, ":"); print a[n]; exit}')
  [[ -n "$port" ]] && break
  kill -0 "$controller_pid" 2>/dev/null || { cat "$work/controller.log" >&2; die "the controller exited"; }
  sleep 0.1
done
[[ -n "$port" ]] || die "the controller does not listen"

metric() { # name{labels} -> value (0 when absent)
  curl -s "http://127.0.0.1:$port/metrics" | awk -v m="$1" '$1 == m {print $2; found = 1} END {if (!found) print 0}'
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
with_next_run() { docker config ls -q --filter label=lifeboat.status.next-run | wc -l; }

# Start-up: every schedule of the swarm shows its next run.
until [[ $(with_next_run) -ge $schedules ]]; do
  (($(date +%s%N) - start_ns < 300000000000)) || die "schedules not synced after 300 s"
  sleep 0.1
done
startup_ms=$((($(date +%s%N) - start_ns) / 1000000))
log "start-up: $schedules schedules show their next run after $startup_ms ms"

# Settles: the work queue is empty and no reconcile ran during the last second.
settle() {
  local last="" now
  for _ in $(seq 1 600); do
    now=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^lifeboat_reconcile_total/ {s += $2} /^lifeboat_workqueue_depth / {d = $2} END {print s + 0, d + 0}')
    [[ "$now" == "$last" && "${now#* }" == "0" ]] && return 0
    last=$now
    sleep 1
  done
  die "the controller did not settle"
}
settle

# --- latency: docker config create -> next run in the config's labels.
: >"$work/latency"
for i in $(seq 1 "$samples"); do
  name=$(printf '%s-lat%02d' "$prefix" "$i")
  schedule_yaml "$name" $((schedules + i)) >"$work/$name.yaml"
  t0=$(date +%s%N)
  id=$(docker config create -l lifeboat.object=true -l lifeboat.kind=BackupSchedule \
    -l "lifeboat.name=$name" "$name.backupschedule" "$work/$name.yaml")
  seen=0
  while :; do
    n=$(grep -c "^update $id " "$work/events" || true)
    if ((n > seen)); then
      seen=$n
      if [[ -n $(docker config inspect -f '{{index .Spec.Labels "lifeboat.status.next-run"}}' "$id") ]]; then
        break
      fi
    fi
    (($(date +%s%N) - t0 < 60000000000)) || die "$name: no next run after 60 s"
    sleep 0.02
  done
  # The engine's timestamps of the config's creation and of the update that
  # showed the next run (the last one seen before the label was there).
  created=$(awk -v id="$id" '$1 == "create" && $2 == id {print $3; exit}' "$work/events")
  shown=$(awk -v id="$id" '$1 == "update" && $2 == id {t = $3} END {print t}' "$work/events")
  echo "$(((shown - t0) / 1000000)) $(((shown - created) / 1000000))" >>"$work/latency"
  settle
done
stats() { # column -> "median max"
  awk -v c="$1" '{print $c}' "$work/latency" | sort -n |
    awk '{v[NR] = $1} END {m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; print m, v[NR]}'
}
read -r lat_med lat_max < <(stats 1)
read -r react_med react_max < <(stats 2)

# --- idle: nothing happens but lease renewals (every 2 s).
resync_count() { metric 'lifeboat_reconcile_total{reconciler="resync",result="success"}'; }
idle_s=20
r0=$(resync_count)
c0=$(cpu_ticks "$controller_pid")
d0=$(cpu_ticks "$dockerd_pid")
sleep "$idle_s"
c1=$(cpu_ticks "$controller_pid")
d1=$(cpu_ticks "$dockerd_pid")
idle_resyncs=$(($(resync_count) - r0))
idle_pct=$(awk -v t=$((c1 - c0)) -v hz="$hz" -v s="$idle_s" 'BEGIN {printf "%.2f", 100 * t / hz / s}')
per_ms() { # ticks count -> ms per item
  awk -v t="$1" -v hz="$hz" -v n="$2" 'BEGIN {if (n > 0) printf "%.1f", 1000 * t / hz / n; else print "-"}'
}
idle_ctl_ms=$(per_ms $((c1 - c0)) "$idle_resyncs")
idle_dockerd_ms=$(per_ms $((d1 - d0)) "$idle_resyncs")

# --- one /metrics scrape (every schedule has its series).
scrapes=20
c0=$(cpu_ticks "$controller_pid")
for _ in $(seq 1 "$scrapes"); do curl -s -o /dev/null "http://127.0.0.1:$port/metrics"; done
scrape_ms=$(per_ms $(($(cpu_ticks "$controller_pid") - c0)) "$scrapes")
scrape_kib=$(curl -s "http://127.0.0.1:$port/metrics" | wc -c | awk '{printf "%.0f", $1 / 1024}')

# --- CPU per resync: each config event queues one; a config that is no
# lifeboat object changes nothing, so the resync writes nothing.
r0=$(resync_count)
c0=$(cpu_ticks "$controller_pid")
d0=$(cpu_ticks "$dockerd_pid")
for i in $(seq 1 "$resyncs"); do
  before=$(resync_count)
  docker config create "$prefix-tick$i" - <<<"tick" >/dev/null
  until (($(resync_count) > before)); do
    sleep 0.2
  done
  settle
done
r1=$(resync_count)
c1=$(cpu_ticks "$controller_pid")
d1=$(cpu_ticks "$dockerd_pid")
done_resyncs=$((r1 - r0))
# All of the controller's CPU in the window, over every resync it counted
# (some come from the lease's writes); includes the /metrics scrapes of settle.
ctl_ms=$(per_ms $((c1 - c0)) "$done_resyncs")
dockerd_ms=$(per_ms $((d1 - d0)) "$done_resyncs")
# Each resync also reconciles every schedule: show what one list of configs costs.
sched_reconciles=$(metric 'lifeboat_reconcile_total{reconciler="schedule",result="success"}')

# --- the yardstick: `docker service ls` over the same swarm (CLI + dockerd).
ls_runs=5
d0=$(cpu_ticks "$dockerd_pid")
: >"$work/ls"
for _ in $(seq 1 "$ls_runs"); do
  /usr/bin/time -a -o "$work/ls" -f '%e %U %S' docker service ls >/dev/null
done
d1=$(cpu_ticks "$dockerd_pid")
read -r ls_wall_ms ls_cli_ms < <(awk '{w += $1; c += $2 + $3} END {printf "%.0f %.0f\n", 1000 * w / NR, 1000 * c / NR}' "$work/ls")
ls_dockerd_ms=$(awk -v t=$((d1 - d0)) -v hz="$hz" -v n="$ls_runs" 'BEGIN {printf "%.0f", 1000 * t / hz / n}')
ls_total_ms=$((ls_cli_ms + ls_dockerd_ms))

# --- a run held while the swarm is this big: one more service, writing to a
# volume of held_mib MiB, stopped while the controller reads it.
held_line=""
if ((held_mib > 0)); then
  hwm_before=$(awk '/^VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$controller_pid/status")
  mkdir -p "$work/data" "$work/archive-held"
  head -c "$((held_mib << 20))" /dev/urandom >"$work/data/db.dat"
  docker volume create -d local -o type=none -o o=bind -o "device=$work/data" "$prefix-data" >/dev/null
  docker service create -q --name "$prefix-db" --label "lifeboat.bench=$prefix" \
    --label "docker-volume-backup.stop-during-backup=$prefix-held" \
    --mount "type=volume,source=$prefix-data,target=/data" --stop-grace-period 1s \
    "$LIFEBOAT_TEST_IMAGE" sleep 86400 >/dev/null
  printf 'apiVersion: lifeboat/v1\nkind: BackupSchedule\nmetadata: {name: %s-held}\nspec:\n' "$prefix" >"$work/held.yaml"
  printf '  schedule: "0 0 1 1 *"\n  volumes: [%s-data]\n  stopDuringBackup: "%s-held"\n' "$prefix" "$prefix" >>"$work/held.yaml"
  printf '  destinations: [{local: {path: %s/archive-held}}]\n' "$work" >>"$work/held.yaml"
  printf -- '---\napiVersion: lifeboat/v1\nkind: Backup\nmetadata: {name: %s-held-1}\nspec: {scheduleRef: %s-held}\n' \
    "$prefix" "$prefix" >>"$work/held.yaml"
  "$bin" apply -f "$work/held.yaml" >/dev/null
  t0=$(date +%s)
  phase=""
  until [[ "$phase" == Succeeded || "$phase" == Failed ]]; do
    (($(date +%s) - t0 < 600)) || die "the held run did not finish in 600 s"
    sleep 1
    phase=$("$bin" get backups -o json | python3 -c '
import json, sys
for o in json.load(sys.stdin):
    if o["name"] == sys.argv[1]:
        print(o["phase"], o.get("message", "").replace("\n", " "))' "$prefix-held-1")
    message=${phase#* }
    phase=${phase%% *}
  done
  [[ "$phase" == Succeeded ]] || die "the held run failed: $message"
  hwm_after=$(awk '/^VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$controller_pid/status")
  held_line="held run over $services services x $(($(task_count) / services)) tasks: $message"
fi

hwm_mib=$(awk '/^VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$controller_pid/status")
rss_mib=$(awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$controller_pid/status")

printf '\nlifeboat controller: %d services (%d running), %d lifeboat configs, %d cores\n' \
  "$services" "$running" "$objects_in_swarm" "$(nproc)"
printf '%-66s %s\n' \
  "start-up to $schedules schedules showing next run" "$startup_ms ms" \
  "latency config create -> next run shown ($samples samples)" "median $lat_med ms, max $lat_max ms" \
  "  of which the controller (engine create -> update event)" "median $react_med ms, max $react_max ms" \
  "idle ${idle_s} s (no changes): controller CPU, resyncs" "$idle_pct %, $idle_resyncs resyncs" \
  "CPU per resync (idle window): controller / dockerd" "$idle_ctl_ms ms / $idle_dockerd_ms ms" \
  "CPU per resync ($done_resyncs, config events + scrapes): ctl / dockerd" "$ctl_ms ms / $dockerd_ms ms" \
  "CPU per /metrics scrape (${scrape_kib} KiB)" "$scrape_ms ms" \
  "controller RSS now / peak (VmHWM)" "$rss_mib MiB / $hwm_mib MiB" \
  "one \`docker service ls\`: wall / CPU CLI+dockerd" "$ls_wall_ms ms / $ls_total_ms ms" \
  "resync CPU (idle window, ctl+dockerd) / one \`docker service ls\`" \
  "$(awk -v a="$idle_ctl_ms" -v b="$idle_dockerd_ms" -v c="$ls_total_ms" 'BEGIN {printf "%.2fx", (a + b) / c}')"
if [[ -n "$held_line" ]]; then
  printf '%-66s %s\n' "controller peak RSS before / after a ${held_mib} MiB held run" \
    "$hwm_before MiB / $hwm_after MiB"
  echo "$held_line"
fi
log "schedule reconciles in total: $sched_reconciles; controller log: $(grep -c 'level=warn\|level=error' "$work/controller.log" || true) warnings/errors"
