// libFuzzer target: the age decryptor (controller/crypto) on arbitrary bytes,
// holding the age specification's example X25519 identity (the corpus has
// files encrypted to it, by Debian's age 1.1 and by lifeboat).
//
// Beyond "no crash, no sanitizer report", it checks that the outcome does not
// depend on how the bytes arrive: the input fed in one write and fed in small
// pieces of varying sizes must give the same plaintext, or the same error
// (kind and message); and a success never outputs more than it was given.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "controller/crypto/age.hpp"

namespace {

using namespace lifeboat::crypto;

constexpr std::string_view spec_identity =
    "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX";

struct outcome {
  bool ok = false;
  std::string text;  // the plaintext, or the error's description
};

outcome run(std::string_view input, bool pieces) {
  static const std::vector<identity> ids = parse_identities(spec_identity).value();
  std::string plaintext;
  auto dec = decryptor::make(ids, [&](std::span<const char> b) -> result<void> {
    plaintext.append(b.data(), b.size());
    return {};
  });
  std::size_t step = 1;
  while (!input.empty()) {
    const std::size_t n = pieces ? std::min(step, input.size()) : input.size();
    if (auto r = dec->write(input.substr(0, n)); !r) {
      return {false, r.error().describe()};
    }
    input.remove_prefix(n);
    step = step % 17 + 1;
  }
  if (auto r = dec->finish(); !r) {
    return {false, r.error().describe()};
  }
  return {true, plaintext};
}

[[noreturn]] void fail(const char* what, const outcome& a, const outcome& b) {
  std::fprintf(stderr, "age_decrypt_fuzz: %s\nwhole: %d %s\npieces: %d %s\n", what, a.ok,
               a.text.c_str(), b.ok, b.text.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const outcome whole = run(input, false);
  const outcome pieces = run(input, true);
  if (whole.ok != pieces.ok || whole.text != pieces.text) {
    fail("the outcome depends on how the input is split", whole, pieces);
  }
  if (whole.ok && whole.text.size() >= size) {
    fail("more plaintext than ciphertext", whole, pieces);
  }
  return 0;
}
