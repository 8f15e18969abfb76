#!/usr/bin/env bash
# Installs the Debian packages lifeboat builds, tests and runs with.
# Idempotent and quiet when everything is already there.
#   hack/setup.sh          what the build, the tests and the engine need
#   hack/setup.sh --fuzz   also clang and libFuzzer, for hack/fuzz.sh only
#   hack/setup.sh --tidy   also clang-tidy, for hack/verify-tidy.sh only
set -euo pipefail
source "$(dirname "$0")/lib.sh"

packages=(
  cmake ninja-build g++ pkg-config curl clang-format
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev libboost-system1.81-dev
  libarchive-dev libssl-dev libyaml-cpp-dev prometheus-cpp-dev libgtest-dev libgmock-dev
  libspdlog-dev libfmt-dev libcli11-dev libhowardhinnant-date-dev tzdata
  docker.io busybox-static
  iproute2  # `ip netns`: hack/cluster-up.sh's nodes (nsenter, unshare: util-linux, always there)
  faketime  # hack/chaos.sh: `lifeboat recover` as if a dead run's record had expired
  libdeflate-dev libisal-dev libzstd-dev nettle-dev pigz zstd libarchive-tools
  libcurl4-openssl-dev libxml2-dev  # remote destinations: S3, WebDAV, SFTP (libssh2)
  rclone  # `rclone serve webdav` for tests/e2e/webdav_destination_e2e_test.cpp
  openssh-server openssh-client  # sshd, ssh-keygen for tests/e2e/sftp_destination_e2e_test.cpp
  restic  # Debian's restic 0.14: interop of controller/restic (tests/controller/restic)
  age  # Debian's age 1.1 and age-keygen: interop of controller/crypto (tests/controller/crypto)
  libgpgme-dev gnupg gpg-agent  # OpenPGP through gpgme (controller/crypto/openpgp), gpg for its interop
  prometheus  # the server and promtool, for tests/e2e/prometheus_e2e_test.cpp
  python3-aiosmtpd  # a real SMTP server for tests/controller/notify (python3 -m aiosmtpd)
)
if [[ "${1:-}" == "--fuzz" ]]; then
  # libFuzzer's runtime is in libclang-rt-14-dev, apart from the compiler.
  packages+=(clang libclang-rt-14-dev)
elif [[ "${1:-}" == "--tidy" ]]; then
  packages+=(clang-tidy)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

log "installing: ${missing[*]}"
[[ $(id -u) -eq 0 ]] || die "installing packages needs root (missing: ${missing[*]})"
export DEBIAN_FRONTEND=noninteractive
apt_log=$(mktemp)
# The package lists may be stale or absent on a fresh machine; refresh once.
if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >"$apt_log" 2>&1; then
  apt-get update -q >>"$apt_log" 2>&1
  apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$apt_log" 2>&1 ||
    { cat "$apt_log" >&2; die "apt-get install failed"; }
fi
rm -f "$apt_log"
