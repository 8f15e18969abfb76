// Streams GET /containers/{id}/archive?path=... through lifeboat's engine client
// and discards it: the client's share of reading a volume. hack/bench-engine.sh
// runs it beside `docker cp` and curl on the same container.
#include "controller/engine/client.hpp"

#include <fmt/core.h>

#include <array>
#include <chrono>
#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 3) {
    fmt::print(stderr, "usage: {} CONTAINER PATH\n", argv[0]);
    return 2;
  }
  auto client = lifeboat::engine::client::connect();
  if (!client) {
    fmt::print(stderr, "error: {}\n", client.error().describe());
    return 1;
  }
  const auto start = std::chrono::steady_clock::now();
  auto body = client->get_archive(argv[1], argv[2]);
  if (!body) {
    fmt::print(stderr, "error: {}\n", body.error().describe());
    return 1;
  }
  std::array<char, 256 * 1024> buffer{};
  std::uint64_t total = 0;
  for (;;) {
    auto n = body->read(buffer);
    if (!n) {
      fmt::print(stderr, "error after {} bytes: {}\n", total, n.error().describe());
      return 1;
    }
    if (*n == 0) {
      break;
    }
    total += *n;
  }
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  fmt::print("{} bytes in {:.3f} s\n", total, elapsed.count());
  return 0;
}
