#!/usr/bin/env bash
# The kill loop: kill -9 `lifeboat backup`, `lifeboat restore` and the
# controller at N random instants against the local engine, recover after
# each, and check that nothing was lost or left down.
#
#   N=200 hack/chaos.sh        (default N=5; CHAOS_SEED=<n> replays a run;
#                               LIFEBOAT_CHAOS_DIR=<dir> keeps logs and archives)
#
# Set-up (once): a service "chaos_app" (2 replicas, labelled
# docker-volume-backup.stop-during-backup=chaos) and a plain container
# "chaos_solo" (same label) that both write to the volume "chaos_data"; a
# BackupSchedule over that volume into a local folder; one archive taken
# undisturbed, to restore from and to time each kind of run.
#
# Each round picks a victim: a `lifeboat backup` (reading directly or through
# the engine), a `lifeboat restore --wipe` (direct or through the engine), or
# a controller running a Backup or Restore object, and kills it with SIGKILL
# after a random delay between 0 and the time an undisturbed run takes, so the
# kills land in every phase (scaling down, reading, resuming, writing,
# renaming, pruning, restoring). Then `lifeboat recover` runs with its wall
# clock 2 minutes ahead (libfaketime), standing in for the wait until the dead
# run's ownership record expires, and for controller rounds a new controller
# finishes the objects. Then it checks, counting each violation:
#   below_prior_replicas  the service's replicas under its prior count (2)
#   not_running           a task or the plain container not running again
#   lifeboat_labels       a lifeboat.* label on a service or container (a
#                         helper container of a killed run counts)
#   run_records           a journal or ownership config left behind
#   half_archives         a visible archive without a .sha256 that verifies
#   stale_partials        a .partial left after a run that completed
#   not_terminal          a Backup or Restore object not Succeeded/Failed/Skipped
# Prints the counts and where the kills landed; exits 1 if any count is not 0.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

rounds=${N:-5}
seed=${CHAOS_SEED:-$(( $(date +%s) % 32768 ))}
RANDOM=$seed
# LIFEBOAT_BINARY: a copy to test, so a rebuild does not change it mid-run.
lifeboat=${LIFEBOAT_BINARY:-$LIFEBOAT_BUILD_DIR/controller/lifeboat}
work=${LIFEBOAT_CHAOS_DIR:-$(mktemp -d /tmp/lifeboat-chaos.XXXXXX)}
archives="$work/archives"
image=$LIFEBOAT_TEST_IMAGE

"$LIFEBOAT_ROOT/hack/setup.sh"
if [[ -n "${LIFEBOAT_BINARY:-}" ]]; then
  [[ -x "$lifeboat" ]] || die "LIFEBOAT_BINARY=$lifeboat is not an executable"
elif [[ -f "$LIFEBOAT_BUILD_DIR/build.ninja" ]]; then
  CCACHE_BASEDIR=$LIFEBOAT_ROOT cmake --build "$LIFEBOAT_BUILD_DIR" --target lifeboat >/dev/null
else
  "$LIFEBOAT_ROOT/hack/build.sh" >/dev/null
fi
started_here=0
[[ -f "$LIFEBOAT_ENGINE_DIR/owned" ]] || started_here=1
"$LIFEBOAT_ROOT/hack/swarm-up.sh"
load_engine_env

victim_pid=""
controller_pid=""
cleanup() {
  set +e
  for pid in $victim_pid $controller_pid; do
    kill -9 "$pid" 2>/dev/null
  done
  FAKETIME_DONT_FAKE_MONOTONIC=1 faketime -f '+120s' "$lifeboat" recover >/dev/null 2>&1
  docker service rm chaos_app >/dev/null 2>&1
  docker rm -f chaos_solo >/dev/null 2>&1
  docker ps -aq --filter label=lifeboat.volume-container | xargs -r docker rm -f >/dev/null 2>&1
  docker config ls -q --filter label=lifeboat.object | xargs -r docker config rm >/dev/null 2>&1
  for _ in $(seq 1 50); do
    docker volume rm chaos_data >/dev/null 2>&1 && break
    sleep 0.2
  done
  [[ -n "${LIFEBOAT_CHAOS_DIR:-}" ]] || rm -rf "$work"
  if [[ $started_here -eq 1 && -f "$LIFEBOAT_ENGINE_DIR/owned" ]]; then
    "$LIFEBOAT_ROOT/hack/swarm-down.sh"
  fi
}
trap cleanup EXIT

# --- Set-up ----------------------------------------------------------------

log "seed $seed, $rounds rounds, work folder $work"
mkdir -p "$archives" "$work/source" "$work/logs"
docker service rm chaos_app >/dev/null 2>&1 || true
docker rm -f chaos_solo >/dev/null 2>&1 || true
docker volume create chaos_data >/dev/null
# Some data to read and write: a few MiB that do not compress, and files.
docker run --rm -v chaos_data:/data "$image" sh -c \
  'head -c 16777216 /dev/urandom > /data/random.bin &&
   mkdir -p /data/files && for i in $(seq 1 300); do echo "$i" > /data/files/f$i; done' >/dev/null
writer='trap "exit 0" TERM; while true; do date >> /data/log-$HOSTNAME; sleep 0.2; done'
docker service create -d --no-resolve-image --name chaos_app --replicas 2 \
  --label docker-volume-backup.stop-during-backup=chaos --restart-condition any \
  --stop-grace-period 5s --mount type=volume,source=chaos_data,target=/data \
  "$image" sh -c "$writer" >/dev/null
docker run -d --name chaos_solo --label docker-volume-backup.stop-during-backup=chaos \
  -v chaos_data:/data "$image" sh -c "$writer" >/dev/null

cat >"$work/schedule.yaml" <<EOF
apiVersion: lifeboat/v1
kind: BackupSchedule
metadata:
  name: chaos
spec:
  schedule: "0 0 1 1 *"
  volumes: [chaos_data]
  stopDuringBackup: chaos
  archive: {compression: gzip}
  destinations:
    - local: {path: $archives}
  retention: {keepLast: 3}
EOF

running_tasks() {
  docker service ps chaos_app --filter desired-state=running --format '{{.CurrentState}}' |
    grep -c '^Running' || true
}
wait_for() {  # seconds, command...
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [[ $SECONDS -lt $deadline ]] || return 1
    sleep 0.2
  done
}
app_up() { [[ $(running_tasks) -eq 2 ]]; }
solo_up() { [[ $(docker inspect -f '{{.State.Running}}' chaos_solo) == true ]]; }
wait_for 60 app_up || die "chaos_app did not start"

# Times one undisturbed run of a command; prints seconds (at least 1).
timed() {
  local start=$SECONDS
  "$@" >"$work/logs/timed.log" 2>&1 || { cat "$work/logs/timed.log" >&2; die "undisturbed run failed: $*"; }
  echo $((SECONDS - start > 0 ? SECONDS - start : 1))
}
backup_args=(backup --schedule "$work/schedule.yaml" --helper-image "$image")
backup_time=$(timed "$lifeboat" "${backup_args[@]}")
wait_for 60 app_up || die "chaos_app did not come back after the first backup"
good=$(ls -t "$archives"/chaos-*.tar.gz | head -1)
cp "$good" "$good.sha256" "$work/source/"
good="$work/source/$(basename "$good")"
restore_args=(restore --archive "$good" --volume chaos_data --wipe --helper-image "$image")
restore_time=$(timed "$lifeboat" "${restore_args[@]}")
wait_for 60 app_up || die "chaos_app did not come back after the first restore"
log "an undisturbed backup takes ~${backup_time} s, a restore ~${restore_time} s"

# --- Checks ----------------------------------------------------------------

declare -A violations=(
  [below_prior_replicas]=0 [not_running]=0 [lifeboat_labels]=0 [run_records]=0
  [half_archives]=0 [stale_partials]=0 [not_terminal]=0)
declare -A landed=()
total_violations=0
violation() {  # kind, detail
  violations[$1]=$((violations[$1] + 1))
  total_violations=$((total_violations + 1))
  log "round $round: VIOLATION $1: $2"
}

check() {  # whether the last backup of the schedule completed
  local completed=$1
  local replicas labels
  replicas=$(docker service inspect chaos_app --format '{{.Spec.Mode.Replicated.Replicas}}')
  [[ "$replicas" -ge 2 ]] || violation below_prior_replicas "chaos_app has $replicas replicas"
  wait_for 60 app_up || violation not_running "chaos_app runs $(running_tasks) of 2 tasks"
  wait_for 10 solo_up || violation not_running "chaos_solo is $(docker inspect -f '{{.State.Status}}' chaos_solo)"
  labels=$(docker service inspect chaos_app --format \
    '{{json .Spec.Labels}}{{json .Spec.TaskTemplate.ContainerSpec.Labels}}')
  [[ "$labels" != *'"lifeboat.'* ]] || violation lifeboat_labels "chaos_app: $labels"
  local c
  for c in $(docker ps -aq); do
    # Swarm prunes old task containers at any time: one gone since the
    # listing has no labels left to count.
    labels=$(docker inspect -f '{{.Name}} {{json .Config.Labels}}' "$c" 2>/dev/null) || continue
    [[ "$labels" != *'"lifeboat.'* ]] || violation lifeboat_labels "container $labels"
  done
  local records
  records=$(docker config ls --format '{{.Name}}' --filter label=lifeboat.journal;
    docker config ls --format '{{.Name}}' --filter label=lifeboat.owner)
  [[ -z "$records" ]] || violation run_records "$(echo $records)"
  local a
  for a in "$archives"/*.tar.gz; do
    [[ -e "$a" ]] || continue
    if [[ ! -f "$a.sha256" ]] || ! (cd "$archives" && sha256sum --status -c "$(basename "$a").sha256"); then
      violation half_archives "$(basename "$a")"
    fi
  done
  if [[ $completed -eq 1 ]] && ls "$archives" | grep -q '\.partial$'; then
    violation stale_partials "$(ls "$archives" | grep '\.partial$' | tr '\n' ' ')"
  fi
  local what
  for what in backups restores; do
    "$lifeboat" get "$what" -o json 2>/dev/null | python3 -c '
import json, sys
for o in json.load(sys.stdin):
    if o["phase"] not in ("Succeeded", "Failed", "Skipped"):
        print(o["name"], o["phase"])' >"$work/not-terminal" || true
    while read -r name phase; do
      violation not_terminal "$what $name is $phase"
    done <"$work/not-terminal"
  done
}

recover() {
  FAKETIME_DONT_FAKE_MONOTONIC=1 faketime -f '+120s' "$lifeboat" recover --timeout 120 \
    >"$work/logs/recover.log" 2>&1 || {
    log "round $round: recover failed:"
    cat "$work/logs/recover.log" >&2
  }
}

# Kills `pid` after a random delay up to `max` seconds (in tenths); records
# the phase it was in from the last line of its log; sets `killed` to 0 when
# the process had finished by itself.
kill_later() {  # pid, max seconds, log, label
  local pid=$1 max=$2 out=$3 label=$4
  local tenths=$((RANDOM % (max * 10 + 1)))
  sleep "$((tenths / 10)).$((tenths % 10))"
  killed=1
  kill -9 "$pid" 2>/dev/null || killed=0
  wait "$pid" 2>/dev/null || true
  local phase
  if [[ $killed -eq 0 ]]; then
    phase=finished
  else
    # The CLI prints "  1.2s  Phase  message"; the controller logs event=...
    phase=$({ grep -oE '^ *[0-9.]+s +[A-Za-z]+' "$out" | awk '{print $2}';
      grep -oE 'event=[a-z_]+' "$out" | cut -d= -f2; } | tail -1 || true)
    phase=${phase:-starting}
  fi
  landed["$label/$phase"]=$((${landed["$label/$phase"]:-0} + 1))
}

# --- Rounds ----------------------------------------------------------------

controller_args=(controller --metrics-addr 127.0.0.1:0 --helper-image "$image" --resync 5)
for round in $(seq 1 "$rounds"); do
  round_started=$(date +%s)
  choice=$((RANDOM % 10))
  completed=0
  if [[ $choice -lt 4 ]]; then
    extra=()
    [[ $((RANDOM % 2)) -eq 0 ]] && extra=(--read-through-engine)
    "$lifeboat" "${backup_args[@]}" "${extra[@]}" >"$work/logs/victim.log" 2>&1 &
    victim_pid=$!
    kill_later "$victim_pid" "$backup_time" "$work/logs/victim.log" "backup${extra[*]:+ (engine)}"
    victim_pid=""
    [[ $killed -eq 1 ]] || completed=1
    recover
  elif [[ $choice -lt 8 ]]; then
    path=direct
    [[ $((RANDOM % 2)) -eq 0 ]] && path=engine
    "$lifeboat" "${restore_args[@]}" --path "$path" >"$work/logs/victim.log" 2>&1 &
    victim_pid=$!
    kill_later "$victim_pid" "$restore_time" "$work/logs/victim.log" "restore ($path)"
    victim_pid=""
    recover
  else
    # A Backup or a Restore object, run by a controller that is killed.
    if [[ $((RANDOM % 2)) -eq 0 ]]; then
      kind=backup
      printf 'apiVersion: lifeboat/v1\nkind: Backup\nmetadata: {name: chaos-%s}\nspec: {scheduleRef: chaos}\n' \
        "$round" >"$work/object.yaml"
    else
      kind=restore
      printf 'apiVersion: lifeboat/v1\nkind: Restore\nmetadata: {name: chaos-%s}\nspec:\n  archive: %s\n  volumes: [{from: chaos_data, to: chaos_data}]\n  wipe: true\n' \
        "$round" "$good" >"$work/object.yaml"
    fi
    "$lifeboat" apply -f "$work/schedule.yaml" >/dev/null
    "$lifeboat" apply -f "$work/object.yaml" >/dev/null
    "$lifeboat" "${controller_args[@]}" >"$work/logs/controller.log" 2>&1 &
    controller_pid=$!
    # The controller needs a moment to start and take the lease.
    max=$((restore_time + 3))
    [[ $kind == restore ]] || max=$((backup_time + 3))
    kill_later "$controller_pid" "$max" "$work/logs/controller.log" "controller ($kind)"
    controller_pid=""
    recover
    # A new controller finds the object the dead one left and finishes it.
    "$lifeboat" "${controller_args[@]}" >"$work/logs/controller2.log" 2>&1 &
    controller_pid=$!
    terminal() {
      "$lifeboat" get "${kind}s" -o json 2>/dev/null | python3 -c '
import json, sys
sys.exit(0 if all(o["phase"] in ("Succeeded", "Failed", "Skipped") for o in json.load(sys.stdin)) else 1)'
    }
    wait_for 120 terminal || true
    kill -TERM "$controller_pid" 2>/dev/null || true
    wait "$controller_pid" 2>/dev/null || true
    controller_pid=""
  fi
  before=$total_violations
  check "$completed"
  if (( total_violations > before )); then
    # The evidence of a violating round, kept beside the work folder's logs:
    # its processes' logs and what the engine did to the workloads meanwhile.
    mkdir -p "$work/round-$round"
    cp "$work"/logs/*.log "$work/round-$round/" 2>/dev/null || true
    docker events --since "$round_started" --until "$(date +%s)" \
      --filter container=chaos_solo --filter service=chaos_app \
      --format '{{.Time}} {{.Type}} {{.Action}} {{.Actor.Attributes.name}}' \
      >"$work/round-$round/events.log" 2>&1 || true
    log "round $round: logs and engine events kept in $work/round-$round"
  fi
  if (( round % 10 == 0 || round == rounds )); then
    log "round $round of $rounds done"
  fi
done

# The next undisturbed run cleans up what the killed ones left.
round=final
"$lifeboat" "${backup_args[@]}" >"$work/logs/final.log" 2>&1 || {
  cat "$work/logs/final.log" >&2
  violation not_running "the final undisturbed backup failed"
}
check 1

echo "kill loop: $rounds rounds, seed $seed (CHAOS_SEED=$seed N=$rounds replays it)"
echo "where the kills landed:"
for k in "${!landed[@]}"; do
  printf '  %-40s %d\n' "$k" "${landed[$k]}"
done | sort
echo "violations:"
total=0
for k in below_prior_replicas not_running lifeboat_labels run_records half_archives \
  stale_partials not_terminal; do
  printf '  %-22s %d\n' "$k" "${violations[$k]}"
  total=$((total + violations[$k]))
done
[[ $total -eq 0 ]] || die "$total violations"
log "no violation"
