// Ships one archive (and its .sha256) from a local folder to a destination,
// the way a backup copies its archive to every destination after the first:
// destinations::copy_archive, streamed through an upload. hack/bench-
// destinations.sh runs it beside rclone and curl against local servers.
//
//   destination_bench DESTINATION_FILE SOURCE_FOLDER NAME
//
// DESTINATION_FILE holds one destination as a schedule lists it. Prints
// "seconds bytes" on success; the error on stderr and exit 1 otherwise.

#include "api/decode.hpp"
#include "controller/destinations/destination.hpp"

#include <fmt/core.h>

#include <chrono>
#include <fstream>
#include <sstream>

int main(int argc, char** argv) {
  using namespace lifeboat;
  if (argc != 4) {
    fmt::print(stderr, "usage: destination_bench DESTINATION_FILE SOURCE_FOLDER NAME\n");
    return 2;
  }
  std::ifstream in(argv[1]);
  std::stringstream text;
  text << in.rdbuf();
  const auto decoded = api::decode_destination(text.str());
  if (!decoded.value) {
    for (const auto& e : decoded.errors) {
      fmt::print(stderr, "{}:{}\n", argv[1], api::format_error(e));
    }
    return 2;
  }
  const auto from = destinations::make_destination(api::local_destination{argv[2]});
  const auto to = destinations::make_destination(*decoded.value);
  const auto start = std::chrono::steady_clock::now();
  const auto copied = destinations::copy_archive(*from, *to, argv[3]);
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  if (!copied) {
    fmt::print(stderr, "{}: {}\n", to->describe(), copied.error().describe());
    return 1;
  }
  fmt::print("{:.2f} {}\n", took.count(), copied->size);
  return 0;
}
