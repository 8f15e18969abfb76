// Streams a file through lifeboat's age encryptor or decryptor, 1 MiB reads,
// for hack/bench-crypto.sh (which times it beside `age` and `openssl enc`).
//   crypto_bench encrypt RECIPIENT IN OUT
//   crypto_bench decrypt IDENTITY-FILE IN OUT
#include "controller/crypto/age.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace {

int fail(const std::string& message) {
  fmt::print(stderr, "crypto_bench: {}\n", message);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace lifeboat::crypto;
  if (argc != 5) {
    return fail("usage: crypto_bench encrypt RECIPIENT IN OUT | decrypt IDENTITY-FILE IN OUT");
  }
  const std::string mode = argv[1];
  std::ifstream in(argv[3], std::ios::binary);
  std::ofstream out(argv[4], std::ios::binary);
  if (!in || !out) {
    return fail("cannot open the input or the output");
  }
  const byte_sink sink = [&out](std::span<const char> bytes) -> result<void> {
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) {
      return make_error(errc::internal, "write failed");
    }
    return {};
  };
  std::function<result<void>(std::span<const char>)> write;
  std::function<result<void>()> finish;
  std::unique_ptr<encryptor> enc;
  std::unique_ptr<decryptor> dec;
  if (mode == "encrypt") {
    auto to = parse_recipient(argv[2]);
    if (!to) {
      return fail(to.error().describe());
    }
    auto made = encryptor::make(std::span<const recipient>(&*to, 1), sink);
    if (!made) {
      return fail(made.error().describe());
    }
    enc = std::move(*made);
    write = [&](std::span<const char> b) { return enc->write(b); };
    finish = [&] { return enc->finish(); };
  } else if (mode == "decrypt") {
    std::ifstream key_file(argv[2]);
    std::stringstream keys;
    keys << key_file.rdbuf();
    auto ids = parse_identities(keys.str());
    if (!ids) {
      return fail(ids.error().describe());
    }
    dec = decryptor::make(std::move(*ids), sink);
    write = [&](std::span<const char> b) { return dec->write(b); };
    finish = [&] { return dec->finish(); };
  } else {
    return fail("unknown mode " + mode);
  }
  std::vector<char> buffer(std::size_t{1} << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const auto n = static_cast<std::size_t>(in.gcount());
    if (n == 0) {
      break;
    }
    if (auto r = write(std::span<const char>(buffer.data(), n)); !r) {
      return fail(r.error().describe());
    }
  }
  if (auto r = finish(); !r) {
    return fail(r.error().describe());
  }
  out.flush();
  return out ? 0 : fail("write failed");
}
