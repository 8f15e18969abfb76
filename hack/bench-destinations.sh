#!/usr/bin/env bash
# Ships one archive-sized file to local S3 (moto), WebDAV (rclone serve
# webdav) and SFTP (Debian's sshd) servers, started here on loopback, with
# lifeboat's destinations (bench/destination_bench: copy_archive, the path a
# backup takes to every destination after the first), beside `rclone copyto`
# and `curl -T` of the same file. Prints seconds, MiB/s, peak RSS and the time
# of each tool against lifeboat's, all from one run.
#
#   BENCH_SIZE_MIB   size of the file (default 2048; random bytes, as a
#                    compressed archive is)
#   BENCH_OUT        work folder (default /tmp/lifeboat-bench-destinations;
#                    removed on exit)
#   LIFEBOAT_BUILD_DIR  build folder (default build/)
#
# moto keeps objects in memory: it needs about three times the size in RAM.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

size_mib=${BENCH_SIZE_MIB:-2048}
out=${BENCH_OUT:-/tmp/lifeboat-bench-destinations}

for tool in rclone curl /usr/sbin/sshd ssh-keygen openssl /usr/bin/time python3; do
  command -v "$tool" >/dev/null || die "$tool is missing (hack/setup.sh installs it)"
done
if [[ ! -f "$LIFEBOAT_BUILD_DIR/build.ninja" ]]; then
  cmake -S "$LIFEBOAT_ROOT" -B "$LIFEBOAT_BUILD_DIR" -G Ninja >/dev/null
fi
cmake --build "$LIFEBOAT_BUILD_DIR" --target destination_bench >&2
bench=$LIFEBOAT_BUILD_DIR/bench/destination_bench

rm -rf "$out"
mkdir -p "$out/src" "$out/dav" "$out/sftp" "$out/keys"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$out"
}
trap cleanup EXIT

name=bench.tar.zst
log "writing $size_mib MiB of random bytes"
# openssl ends on SIGPIPE when head has enough: the size is what is checked.
(openssl enc -aes-128-ctr -nosalt -pass pass:lifeboat -in /dev/zero 2>/dev/null || true) |
  head -c "$((size_mib << 20))" >"$out/src/$name"
[[ $(stat -c %s "$out/src/$name") -eq $((size_mib << 20)) ]] || die "could not write $out/src/$name"
(cd "$out/src" && sha256sum "$name" >"$name.sha256")
cat "$out/src/$name" >/dev/null # into the page cache, for every tool alike

# wait_for_line FILE REGEX: the first capture group of the first matching line.
wait_for_line() {
  local i
  for i in $(seq 600); do
    if grep -qE "$2" "$1" 2>/dev/null; then
      sed -nE "s#.*$2.*#\\1#p" "$1" | head -1
      return
    fi
    sleep 0.1
  done
  die "no line matching '$2' in $1: $(tail -5 "$1")"
}

# S3: moto with authentication off (any signature is accepted).
python3 -m moto.server -H 127.0.0.1 -p 0 >"$out/moto.log" 2>&1 &
pids+=($!)
s3_port=$(wait_for_line "$out/moto.log" 'Running on http://127\.0\.0\.1:([0-9]+)')
echo AKIABENCH >"$out/keys/s3_key_id"
echo benchsecret >"$out/keys/s3_secret"
s3_curl=(curl -sS --fail --aws-sigv4 aws:amz:us-east-1:s3 -u AKIABENCH:benchsecret
  -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD')
"${s3_curl[@]}" -X PUT "http://127.0.0.1:$s3_port/backups" >/dev/null
cat >"$out/s3.yaml" <<YAML
s3: {bucket: backups, endpoint: "http://127.0.0.1:$s3_port", pathStyle: true,
     accessKeyIdFile: $out/keys/s3_key_id, secretAccessKeyFile: $out/keys/s3_secret}
YAML

# WebDAV: rclone's server, no authentication.
rclone serve webdav "$out/dav" --addr 127.0.0.1:0 >"$out/rclone.log" 2>&1 &
pids+=($!)
dav_port=$(wait_for_line "$out/rclone.log" 'started on http://127\.0\.0\.1:([0-9]+)/')
echo "webdav: {url: \"http://127.0.0.1:$dav_port/\"}" >"$out/webdav.yaml"

# SFTP: sshd on a port that was free a moment ago, keys made here.
ssh-keygen -q -t ed25519 -N '' -f "$out/keys/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$out/keys/user_key"
cp "$out/keys/user_key.pub" "$out/keys/authorized_keys"
[[ $(id -u) -ne 0 ]] || mkdir -p /run/sshd
sftp_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$out/sshd_config" <<CONF
ListenAddress 127.0.0.1:$sftp_port
HostKey $out/keys/host_key
AuthorizedKeysFile $out/keys/authorized_keys
PidFile $out/sshd.pid
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
Subsystem sftp internal-sftp
CONF
/usr/sbin/sshd -D -e -f "$out/sshd_config" >"$out/sshd.log" 2>&1 &
pids+=($!)
wait_for_line "$out/sshd.log" '(Server listening on 127\.0\.0\.1)' >/dev/null
echo "[127.0.0.1]:$sftp_port $(cut -d' ' -f1,2 "$out/keys/host_key.pub")" >"$out/keys/known_hosts"
user=$(id -un)
cat >"$out/sftp.yaml" <<YAML
sftp: {host: 127.0.0.1, port: $sftp_port, user: $user, path: $out/sftp,
       identityFile: $out/keys/user_key, knownHostsFile: $out/keys/known_hosts}
YAML

export RCLONE_CONFIG=/dev/null
# rclone's AWS SDK refuses a custom CA bundle with its own transport, and the
# servers here speak plain HTTP anyway.
unset AWS_CA_BUNDLE
export RCLONE_S3_PROVIDER=Other RCLONE_S3_ENDPOINT="http://127.0.0.1:$s3_port"
export RCLONE_S3_ACCESS_KEY_ID=AKIABENCH RCLONE_S3_SECRET_ACCESS_KEY=benchsecret
export RCLONE_WEBDAV_URL="http://127.0.0.1:$dav_port/"
export RCLONE_SFTP_HOST=127.0.0.1 RCLONE_SFTP_PORT=$sftp_port RCLONE_SFTP_USER=$user
export RCLONE_SFTP_KEY_FILE=$out/keys/user_key RCLONE_SFTP_KNOWN_HOSTS_FILE=$out/keys/known_hosts
export RCLONE_SFTP_DISABLE_HASHCHECK=true

rows=()
# measure DESTINATION TOOL COMMAND...: seconds and peak RSS of one run.
measure() {
  local dest=$1 tool=$2
  shift 2
  log "$dest: $tool"
  /usr/bin/time -f '%e %M' -o "$out/time" "$@" >"$out/cmd.log" 2>&1 ||
    die "$dest/$tool failed: $(tail -5 "$out/cmd.log")"
  read -r secs kib <"$out/time"
  rows+=("$dest $tool $secs $kib")
}

file=$out/src/$name
for dest in s3 webdav sftp; do
  measure "$dest" lifeboat "$bench" "$out/$dest.yaml" "$out/src" "$name"
  case $dest in
  s3)
    measure s3 rclone rclone copyto "$file" ":s3:backups/rclone-$name"
    measure s3 "curl -T" "${s3_curl[@]}" -T "$file" "http://127.0.0.1:$s3_port/backups/curl-$name"
    ;;
  webdav)
    measure webdav rclone rclone copyto "$file" ":webdav:rclone-$name"
    measure webdav "curl -T" curl -sS --fail -T "$file" "http://127.0.0.1:$dav_port/curl-$name"
    ;;
  sftp)
    measure sftp rclone rclone copyto "$file" ":sftp:$out/sftp/rclone-$name"
    # --insecure: curl reads no known_hosts of ours; the host is the one above.
    measure sftp "curl -T" curl -sS --fail --insecure --key "$out/keys/user_key" \
      --pubkey "$out/keys/user_key.pub" -u "$user:" -T "$file" \
      "sftp://127.0.0.1:$sftp_port$out/sftp/curl-$name"
    ;;
  esac
done

# Every copy arrived whole: the served folders hold the same bytes.
want=$(cut -d' ' -f1 "$out/src/$name.sha256")
for f in "$out/dav/$name" "$out/dav/rclone-$name" "$out/sftp/$name" "$out/sftp/curl-$name"; do
  [[ $(sha256sum <"$f" | cut -d' ' -f1) == "$want" ]] || die "$f differs from the source"
done

printf '\n%s MiB, one run each (lifeboat also writes the .sha256 beside the archive)\n' "$size_mib"
printf '%-8s %-10s %8s %8s %8s %14s\n' destination tool seconds MiB/s "RSS MiB" "s / lifeboat s"
declare -A base
for row in "${rows[@]}"; do
  read -r dest tool secs kib <<<"$row"
  [[ $tool == lifeboat ]] && base[$dest]=$secs
done
for row in "${rows[@]}"; do
  read -r dest t1 t2 rest <<<"$row"
  if [[ $t1 == curl ]]; then tool="curl -T"; read -r secs kib <<<"$rest"; else tool=$t1; secs=$t2; kib=$rest; fi
  awk -v d="$dest" -v t="$tool" -v s="$secs" -v k="$kib" -v m="$size_mib" -v b="${base[$dest]}" \
    'BEGIN { printf "%-11s %-10s %8.2f %8.0f %8.1f %14.2f\n", d, t, s, (s > 0 ? m / s : 0), k / 1024, (b > 0 ? s / b : 0) }'
done
