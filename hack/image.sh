#!/usr/bin/env bash
# Builds the local image of lifeboat (no registry, no Dockerfile build): the
# binary, the shared libraries ldd lists, the time zone database, and busybox
# for probes (`wget` of /healthz). Imported as $LIFEBOAT_IMAGE (lifeboat:dev).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
image=${LIFEBOAT_IMAGE:-lifeboat:dev}

"$LIFEBOAT_ROOT/hack/build.sh" >&2
load_engine_env
binary="$LIFEBOAT_BUILD_DIR/controller/lifeboat"

rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
mkdir -p "$rootfs"/{usr/local/bin,bin,etc,tmp,archive,var/lib/lifeboat,usr/share}
chmod 1777 "$rootfs/tmp"
cp "$binary" "$rootfs/usr/local/bin/lifeboat"
strip --strip-debug "$rootfs/usr/local/bin/lifeboat"
# gpg, gpg-agent and gpgconf at the paths gpgme and gpgconf know them by: the
# OpenPGP streams (controller/crypto/openpgp) run them.
mkdir -p "$rootfs/usr/bin"
gpg_tools=()
for tool in gpg gpg-agent gpgconf; do
  path=$(command -v "$tool") || die "$tool is missing (hack/setup.sh installs gnupg)"
  cp -L "$path" "$rootfs/usr/bin/$tool"
  gpg_tools+=("$path")
done
# Every library the binary and those tools load, and the loader itself, at
# the same paths.
for lib in $(ldd "$binary" "${gpg_tools[@]}" | grep -o '/[^ ]*' | grep -v ':$' | sort -u); do
  mkdir -p "$rootfs$(dirname "$lib")"
  cp -L "$lib" "$rootfs$lib"
done
cp -r /usr/share/zoneinfo "$rootfs/usr/share/zoneinfo"
cp /bin/busybox "$rootfs/bin/busybox"
for applet in sh wget cat ls; do ln -s busybox "$rootfs/bin/$applet"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\n' >"$rootfs/etc/group"

tar -C "$rootfs" -c . | docker import \
  -c 'ENTRYPOINT ["/usr/local/bin/lifeboat"]' \
  -c 'CMD ["controller"]' \
  -c 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
  -c 'ENV LIFEBOAT_IN_IMAGE=1' \
  -c 'ENV GNUTLS_NO_IMPLICIT_INIT=1' \
  - "$image" >/dev/null
log "built $image ($(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.1f MiB", $1/1048576}'))"
