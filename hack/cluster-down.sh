#!/usr/bin/env bash
# Tears down what cluster-up.sh started: stops each node's dockerd by its PID
# (SIGTERM, SIGKILL after 30 s), kills what they left behind in their network
# namespaces and cgroups (shims and containers of a killed daemon), unmounts
# leftovers under $LIFEBOAT_CLUSTER_DIR, deletes the namespaces (and with them
# the veths and the bridge), the cgroups and the folder.
# Works from names alone, so it succeeds when nothing is up and when only part
# of the cluster is (a failed cluster-up.sh, a folder removed by hand).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

dir=$LIFEBOAT_CLUSTER_DIR
[[ "$dir" == /?* ]] || die "LIFEBOAT_CLUSTER_DIR must be an absolute path other than /"
hub=${LIFEBOAT_CLUSTER_PREFIX}hub
started=$EPOCHREALTIME
ns() { echo "$LIFEBOAT_CLUSTER_PREFIX$1"; }
namespaces() {
  local node
  for node in "${cluster_nodes[@]}"; do ns "$node"; done
  echo "$hub"
}

is_dockerd() { process_running "$1" && [[ $(cat "/proc/$1/comm" 2>/dev/null) == dockerd ]]; }
# The daemons: those cluster-up.sh recorded, and any dockerd in a node's
# namespace (its record may be gone). A recorded PID counts only while it is
# still a dockerd: it may have been reused since.
daemon_pids() {
  local node pid
  for node in "${cluster_nodes[@]}"; do
    cat "$dir/$node/owned" 2>/dev/null || true
    if [[ -e "/run/netns/$(ns "$node")" ]]; then ip netns pids "$(ns "$node")"; fi
  done | sort -un | while read -r pid; do
    if is_dockerd "$pid"; then echo "$pid"; fi
  done
}
# Whatever still runs in our namespaces or in the nodes' cgroups (--cgroup-parent):
# containerd, shims and containers outlive a daemon that was killed.
leftover_pids() {
  local name cg
  for name in $(namespaces); do
    if [[ -e "/run/netns/$name" ]]; then ip netns pids "$name"; fi
    for cg in /sys/fs/cgroup/"$name" /sys/fs/cgroup/*/"$name"; do
      if [[ -d "$cg" ]]; then find "$cg" -name cgroup.procs -exec cat {} +; fi
    done
  done | sort -un
}
# Those of our namespaces that exist.
present_namespaces() { ip netns list | awk '{ print $1 }' | grep -xF -f <(namespaces) || true; }
alive() {
  local pid
  for pid in "$@"; do process_running "$pid" && return 0; done
  return 1
}

if [[ ! -e "$dir" && -z "$(present_namespaces)" ]]; then
  log "no cluster under $dir; nothing to stop"
  exit 0
fi

mapfile -t pids < <(daemon_pids)
if ((${#pids[@]})); then
  log "stopping dockerd ${pids[*]}"
  # All at once: each waits for its containers' stop grace period. A daemon a
  # test froze (SIGSTOP, a node lost) and could not thaw is woken first.
  kill -CONT "${pids[@]}" 2>/dev/null || true
  kill "${pids[@]}" 2>/dev/null || true
  for _ in $(seq 1 300); do
    alive "${pids[@]}" || break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do
    if process_running "$pid"; then
      log "dockerd $pid did not stop in 30s; killing it"
      kill -9 "$pid" 2>/dev/null || true
    fi
  done
fi

mapfile -t pids < <(leftover_pids)
if ((${#pids[@]})); then
  log "killing what the daemons left running: ${pids[*]}"
  kill -9 "${pids[@]}" 2>/dev/null || true
  for _ in $(seq 1 50); do
    alive "${pids[@]}" || break
    sleep 0.1
  done
fi

# Whatever dockerd left mounted under its roots must go before the folder does.
{ grep -o " $dir/[^ ]*" /proc/mounts || true; } | sort -r | while read -r m; do
  umount -l "$m" 2>/dev/null || true
done

for name in $(namespaces); do
  # Children first: a cgroup directory goes only once it is empty.
  for cg in /sys/fs/cgroup/"$name" /sys/fs/cgroup/*/"$name"; do
    if [[ -d "$cg" ]]; then
      find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || log "cgroup $cg is still in use"
    fi
  done
  # A veth goes with either end's namespace, the bridge with the hub's.
  if [[ -e "/run/netns/$name" ]]; then ip netns delete "$name"; fi
done
rm -rf "$dir"

left=$(present_namespaces | tr '\n' ' ')
[[ -z "$left" ]] || die "namespaces left behind: $left"
log "cluster stopped and $dir removed in $(awk "BEGIN { printf \"%.1f\", $EPOCHREALTIME - $started }") s"
