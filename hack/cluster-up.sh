#!/usr/bin/env bash
# Brings up a three-node Docker swarm on this one machine, for tests that need
# workers: one dockerd per node (n1 the manager, n2 and n3 workers), each in a
# network namespace of its own, all joined by a bridge in a hub namespace:
#   ${prefix}hub  bridge br0 10.231.0.1/26
#   ${prefix}nN   eth0 10.231.0.1N/26, a veth to br0; no default route
# $LIFEBOAT_CLUSTER_PREFIX (lb-) names the namespaces and cgroups; everything
# the daemons own lives under $LIFEBOAT_CLUSTER_DIR (/tmp/lbc).
# Imports $LIFEBOAT_TEST_IMAGE on n1 and copies it to n2 and n3, so its ID is
# the same everywhere, and so the images named in $LIFEBOAT_CLUSTER_IMAGES
# (space-separated; taken from the default engine, $DOCKER_HOST or swarm-up.sh's,
# when n1 lacks them).
# Writes $LIFEBOAT_CLUSTER_DIR/env: LIFEBOAT_NODEn_HOST, LIFEBOAT_NODEn_ID (for
# `node.id==` constraints), LIFEBOAT_TEST_IMAGE_ID and DOCKER_HOST (n1).
# A healthy cluster is reused; a half-up one is torn down and started afresh.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
started=$EPOCHREALTIME
[[ $(id -u) -eq 0 ]] || die "network namespaces and cgroups need root"
"$LIFEBOAT_ROOT/hack/setup.sh"

dir=$LIFEBOAT_CLUSTER_DIR
hub=${LIFEBOAT_CLUSTER_PREFIX}hub
# Read before anything points DOCKER_HOST at the cluster: where extra images
# come from when n1 lacks them. Empty means the client's default socket.
source_host=$(load_engine_env && echo "${DOCKER_HOST:-}")

ns() { echo "$LIFEBOAT_CLUSTER_PREFIX$1"; }
host() { echo "unix://$dir/$1/docker.sock"; }
addr() { echo "10.231.0.1${1#n}"; }
# `on n2 docker info`: one node's engine, whatever the caller's DOCKER_HOST says.
on() {
  local node=$1
  shift
  DOCKER_HOST=$(host "$node") "$@"
}
from_source() {
  if [[ -n "$source_host" ]]; then DOCKER_HOST=$source_host "$@"; else env -u DOCKER_HOST "$@"; fi
}

cluster_healthy() {
  [[ -f "$dir/env" && -e "/run/netns/$hub" ]] || return 1
  local node ready
  for node in "${cluster_nodes[@]}"; do
    [[ -e "/run/netns/$(ns "$node")" ]] || return 1
    [[ $(on "$node" timeout 5 docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null) == active ]] ||
      return 1
  done
  ready=$(on n1 timeout 5 docker node ls --format '{{.Status}}' 2>/dev/null | grep -c '^Ready$' || true)
  [[ "$ready" -eq ${#cluster_nodes[@]} ]]
}

leftovers_exist() {
  local node
  [[ -e "$dir" || -e "/run/netns/$hub" ]] && return 0
  for node in "${cluster_nodes[@]}"; do
    [[ -e "/run/netns/$(ns "$node")" ]] && return 0
  done
  return 1
}

start_network() {
  local node node_ns
  ip netns add "$hub"
  ip -n "$hub" link add br0 type bridge
  ip -n "$hub" addr add 10.231.0.1/26 dev br0
  ip -n "$hub" link set br0 up
  for node in "${cluster_nodes[@]}"; do
    node_ns=$(ns "$node")
    ip netns add "$node_ns"
    ip -n "$node_ns" link set lo up
    # The pair goes straight from the hub into the node: nothing of it ever sits in
    # the root namespace, where a bridge was seen to drop the traffic (its firewall
    # is not ours) and where interface names could clash.
    ip -n "$hub" link add "$node" type veth peer name eth0 netns "$node_ns"
    ip -n "$hub" link set "$node" master br0 up
    ip -n "$node_ns" addr add "$(addr "$node")/26" dev eth0
    ip -n "$node_ns" link set eth0 up
  done
}

start_daemon() {
  local node=$1 root="$dir/$1"
  mkdir -p "$root"/{data,exec}
  # nsenter, not `ip netns exec`: that one remounts /sys and dockerd then fails on
  # cgroups. unshare --uts gives the node its own hostname, the swarm's node name.
  # setsid: a signal to the caller's process group must not reach the daemon.
  # nsenter, unshare and sh all exec, so $! is dockerd's own PID.
  # No container networking is needed: no bridge, no iptables, nothing routed.
  # shellcheck disable=SC2016  # expanded by that sh, not here
  (close_inherited_fds; exec setsid nsenter --net="/run/netns/$(ns "$node")" \
    unshare --uts sh -c 'hostname "$0" && exec "$@"' "$node" dockerd \
    --data-root "$root/data" \
    --exec-root "$root/exec" \
    --pidfile "$root/dockerd.pid" \
    -H "$(host "$node")" \
    --cgroup-parent "/$(ns "$node")" \
    --bridge=none --iptables=false --ip-masq=false \
    </dev/null >"$root/dockerd.log" 2>&1) &
  echo "$!" >"$root/owned"
}

wait_for_daemons() {
  local node pending=("${cluster_nodes[@]}") left
  for _ in $(seq 1 300); do
    left=()
    for node in "${pending[@]}"; do
      on "$node" engine_reachable && continue
      process_running "$(cat "$dir/$node/owned")" ||
        { tail -20 "$dir/$node/dockerd.log" >&2; die "dockerd of $node exited"; }
      left+=("$node")
    done
    pending=("${left[@]}")
    ((${#pending[@]} == 0)) && return 0
    sleep 0.1
  done
  die "dockerd of ${pending[*]} did not answer in 30s (logs: $dir/<node>/dockerd.log)"
}

start_swarm() {
  local node i token pids=()
  # docker_gwbridge and the overlay pool are ours, so nothing lands in other
  # ranges; the pool stays clear of swarm-up.sh's 10.231.64.0/18.
  for node in "${cluster_nodes[@]}"; do
    i=${node#n}
    on "$node" docker network create --driver bridge --subnet "10.231.$((i + 1)).0/24" \
      --opt com.docker.network.bridge.name=docker_gwbridge \
      --opt com.docker.network.bridge.enable_icc=false \
      --opt com.docker.network.bridge.enable_ip_masquerade=false \
      docker_gwbridge >/dev/null
  done
  on n1 docker swarm init --advertise-addr "$(addr n1)" --listen-addr "$(addr n1):2377" \
    --default-addr-pool 10.231.128.0/18 --default-addr-pool-mask-length 24 >/dev/null
  token=$(on n1 docker swarm join-token -q worker)
  for node in "${cluster_nodes[@]:1}"; do
    on "$node" docker swarm join --token "$token" --advertise-addr "$(addr "$node")" \
      --listen-addr "$(addr "$node"):2377" "$(addr n1):2377" >/dev/null &
    pids+=("$!")
  done
  for i in "${pids[@]}"; do
    wait "$i" || die "a worker failed to join (logs: $dir/<node>/dockerd.log)"
  done
}

wait_for_nodes() {
  local ready
  for _ in $(seq 1 300); do
    ready=$(on n1 docker node ls --format '{{.Status}}' | grep -c '^Ready$' || true)
    [[ "$ready" -eq ${#cluster_nodes[@]} ]] && return 0
    sleep 0.1
  done
  on n1 docker node ls >&2
  die "the nodes were not all Ready in 30s"
}

# The test image, and any extra ones, on n1 first; then one `docker save` from n1
# loaded on each node that lacks an image or has another one under its name:
# an imported image's ID differs per import, a loaded one's does not.
copy_images() {
  local images=("$LIFEBOAT_TEST_IMAGE") image node want=() node_want=() pids=() p
  # shellcheck disable=SC2206  # a space-separated list of names
  images+=(${LIFEBOAT_CLUSTER_IMAGES:-})
  if ! on n1 docker image inspect "$LIFEBOAT_TEST_IMAGE" >/dev/null 2>&1; then
    log "importing $LIFEBOAT_TEST_IMAGE from busybox-static on n1"
    on n1 import_test_image
  fi
  for image in "${images[@]:1}"; do
    on n1 docker image inspect "$image" >/dev/null 2>&1 && continue
    from_source docker image inspect "$image" >/dev/null 2>&1 ||
      die "image $image is neither on n1 nor on the engine at ${source_host:-the default socket}"
    log "copying $image from ${source_host:-the default engine} to n1"
    from_source docker save "$image" | on n1 docker load >/dev/null
  done
  for node in "${cluster_nodes[@]:1}"; do
    for image in "${images[@]}"; do
      if [[ $(on "$node" docker image inspect -f '{{.Id}}' "$image" 2>/dev/null) != \
        "$(on n1 docker image inspect -f '{{.Id}}' "$image")" ]]; then
        [[ " ${want[*]} " == *" $image "* ]] || want+=("$image")
        [[ " ${node_want[*]} " == *" $node "* ]] || node_want+=("$node")
      fi
    done
  done
  ((${#want[@]})) || return 0
  log "copying ${want[*]} to ${node_want[*]}"
  on n1 docker save -o "$dir/images.tar" "${want[@]}"
  for node in "${node_want[@]}"; do
    on "$node" docker load -q -i "$dir/images.tar" >/dev/null &
    pids+=("$!")
  done
  for p in "${pids[@]}"; do
    wait "$p" || die "docker load failed"
  done
  rm -f "$dir/images.tar"
}

write_env() {
  local node id lines=("export LIFEBOAT_CLUSTER_DIR=$dir")
  for node in "${cluster_nodes[@]}"; do
    id=$(on "$node" docker info --format '{{.Swarm.NodeID}}')
    [[ -n "$id" ]] || die "$node has no swarm node ID"
    lines+=("export LIFEBOAT_NODE${node#n}_HOST=$(host "$node")" "export LIFEBOAT_NODE${node#n}_ID=$id")
  done
  id=$(on n1 docker image inspect -f '{{.Id}}' "$LIFEBOAT_TEST_IMAGE")
  lines+=("export LIFEBOAT_TEST_IMAGE_ID=$id" "export DOCKER_HOST=$(host n1)")
  printf '%s\n' "${lines[@]}" >"$dir/env.new"
  # Whole or not at all: the health check above trusts its presence.
  mv "$dir/env.new" "$dir/env"
}

if ! cluster_healthy; then
  if leftovers_exist; then
    log "a cluster is half up under $dir: tearing it down first"
    "$LIFEBOAT_ROOT/hack/cluster-down.sh"
  fi
  log "starting ${cluster_nodes[*]} under $dir"
  rm -f "$dir/env"
  mkdir -p "$dir"
  start_network
  for node in "${cluster_nodes[@]}"; do
    start_daemon "$node"
  done
  wait_for_daemons
  # Images are each node's own business: they go while the swarm forms.
  copy_images &
  images_job=$!
  start_swarm
  wait_for_nodes
  wait "$images_job" || die "copying the images failed"
else
  log "reusing the cluster under $dir"
  copy_images
fi
write_env
log "${#cluster_nodes[@]} nodes up in $(awk "BEGIN { printf \"%.1f\", $EPOCHREALTIME - $started }") s;" \
  "source $dir/env (DOCKER_HOST is n1, the manager)"
