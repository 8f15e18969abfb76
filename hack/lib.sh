# Shared by the hack/ scripts: paths, logging, and the engine's environment.
# shellcheck shell=bash

LIFEBOAT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Everything a local engine owns lives under one folder, so `down` removes it all.
# Kept short: containerd's socket paths under the exec root have a length limit.
LIFEBOAT_ENGINE_DIR=${LIFEBOAT_ENGINE_DIR:-/tmp/lifeboat-engine}
LIFEBOAT_BUILD_DIR=${LIFEBOAT_BUILD_DIR:-$LIFEBOAT_ROOT/build}
LIFEBOAT_TEST_IMAGE=${LIFEBOAT_TEST_IMAGE:-lifeboat-test/busybox:latest}
# The three-node swarm of cluster-up.sh: one folder for all its daemons (short, for
# the same socket-length reason) and a prefix for its network namespaces and
# cgroups, so a second cluster or anything else on the machine never clashes.
LIFEBOAT_CLUSTER_DIR=${LIFEBOAT_CLUSTER_DIR:-/tmp/lbc}
LIFEBOAT_CLUSTER_PREFIX=${LIFEBOAT_CLUSTER_PREFIX:-lb-}
# Its nodes: n1 is the manager. Each runs in the namespace $LIFEBOAT_CLUSTER_PREFIX<node>.
# shellcheck disable=SC2034  # used by cluster-up.sh and cluster-down.sh
cluster_nodes=(n1 n2 n3)

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# For a daemon started from here that outlives the script (dockerd): run in
# its subshell first, so that it inherits none of the caller's open files (a
# test's pipes, a lock), on which whoever waits would wait forever.
close_inherited_fds() {
  local fd
  for fd in "/proc/$BASHPID/fd/"*; do
    fd=${fd##*/}
    ((fd > 2)) && eval "exec $fd>&-" 2>/dev/null
  done
  return 0
}

# Loads DOCKER_HOST written by swarm-up.sh, unless the caller already chose one.
load_engine_env() {
  if [[ -z "${DOCKER_HOST:-}" && -f "$LIFEBOAT_ENGINE_DIR/env" ]]; then
    # shellcheck disable=SC1091
    source "$LIFEBOAT_ENGINE_DIR/env"
  fi
  export DOCKER_HOST
}

# True when the engine at $DOCKER_HOST (or the default socket) answers.
engine_reachable() {
  timeout 5 docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

# True while process $1 exists and is not a zombie: PID 1 on these machines may
# take seconds to reap a daemon that was killed, and kill -0 succeeds till then.
process_running() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ "${stat:0:1}" != Z ]]
}

# Imports $LIFEBOAT_TEST_IMAGE into the engine at $DOCKER_HOST. There is no
# registry: the image is busybox-static on an otherwise empty root filesystem.
import_test_image() {
  local rootfs
  rootfs=$(mktemp -d)
  mkdir -p "$rootfs"/{bin,tmp,data,etc}
  cp /bin/busybox "$rootfs/bin/busybox"
  # Every applet needs its link, or a task running e.g. `sleep` fails to start.
  # Made by one perl (perl-base is essential in Debian): 269 forks of ln took 1.1 s.
  (cd "$rootfs/bin" && ./busybox --list |
    perl -nle '-e or symlink("busybox", $_) or die "$_: $!\n"')
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
  tar -C "$rootfs" -c . | docker import -c 'CMD ["/bin/sh"]' - "$LIFEBOAT_TEST_IMAGE" >/dev/null ||
    { rm -rf "$rootfs"; return 1; }
  rm -rf "$rootfs"
}
