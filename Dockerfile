# lifeboat's image, built from source:
#   docker build -t lifeboat:latest .
#   LIFEBOAT_IMAGE=lifeboat:latest docker stack deploy -c manifests/stack.yml lifeboat
# (hack/image.sh makes the local development image from an existing build
# instead, without a registry or this file.)

# --- build: the compiler and the -dev packages lifeboat links against.
FROM debian:bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      cmake ninja-build g++ pkg-config \
      libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev libboost-system1.81-dev \
      libarchive-dev libyaml-cpp-dev prometheus-cpp-dev libspdlog-dev libfmt-dev \
      libcli11-dev libhowardhinnant-date-dev \
      libdeflate-dev libisal-dev libzstd-dev nettle-dev libcurl4-openssl-dev libxml2-dev \
      libssl-dev libgpgme-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Only the binary: no tests, benchmarks or their libraries. Warnings stay
# warnings here (-Werror is for CI, not for users' builds).
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DLIFEBOAT_TEST=OFF \
      -DLIFEBOAT_WERROR=OFF \
 && cmake --build /build --target lifeboat -j "$(nproc)" \
 && strip /build/controller/lifeboat

# --- runtime: the shared libraries the binary loads (the packages behind the
# NEEDED entries of `readelf -d`; their own dependencies come with them), the
# time zone database for schedules' `timezone`, and busybox: the volume
# helper runs /bin/busybox (wiping volumes before a restore) and the stack's
# health check runs `wget`. gpg, gpg-agent and gpgconf: the OpenPGP streams
# (controller/crypto/openpgp) run them through gpgme.
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libstdc++6 libgcc-s1 \
      libboost-json1.81.0 libyaml-cpp0.7 libprometheus-cpp-core1.0 libspdlog1.10 libfmt9 \
      libarchive13 libnettle8 libdeflate0 libisal2 libzstd1 libdate-tz3 libcurl4 libxml2 \
      libssl3 libgpgme11 \
      gpg gpg-agent gpgconf \
      ca-certificates \
      tzdata busybox-static \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s /bin/busybox /usr/local/bin/wget \
 && mkdir -p /archive /var/lib/lifeboat
COPY --from=build /build/controller/lifeboat /usr/local/bin/lifeboat
# Fails the build if a library is missing from the list above.
RUN ! ldd /usr/local/bin/lifeboat | grep 'not found'
# Swarm's /var/run/docker.sock is root's; so is the process that reads it.
# Tells lifeboat it runs in its own image: a local destination on this
# container's root file system is refused (archives would die with it).
ENV LIFEBOAT_IN_IMAGE=1
# GnuTLS comes in only as a dependency of libcurl's dependencies (librtmp,
# libldap); lifeboat's TLS is OpenSSL's. Its load-time initialisation alone
# costs 0.9 MiB of the controller's 25 MiB (measured: 14.8 -> 13.9 MiB at
# start); whoever does use GnuTLS still initialises it explicitly.
ENV GNUTLS_NO_IMPLICIT_INIT=1
ENTRYPOINT ["/usr/local/bin/lifeboat"]
CMD ["controller"]
