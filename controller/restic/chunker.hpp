#pragma once

#include "controller/restic/error.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

// restic's content-defined chunker (restic/chunker, as its README and the
// design document describe it): a Rabin fingerprint over a sliding 64-byte
// window modulo the repository's polynomial; a chunk ends after the byte at
// which the fingerprint's low 20 bits are all zero, but never before 512 KiB
// and always at 8 MiB. Same polynomial and bytes -> the same boundaries as
// restic, so lifeboat's blobs deduplicate against restic's own.
namespace lifeboat::restic {

/// A polynomial over GF(2): bit i is the coefficient of x^i.
using polynomial = std::uint64_t;

/// The degree; -1 for the zero polynomial.
int degree(polynomial p) noexcept;
/// Ben-Or's test: p has no factor of degree 1..deg(p)/2.
bool is_irreducible(polynomial p) noexcept;
/// A random irreducible polynomial of degree 53 (random 54-bit values with
/// x^53 and 1 set until one is irreducible), as restic picks a repository's.
result<polynomial> random_polynomial();

/// Fills the buffer with up to its size; 0 only at the end of the data.
using byte_source = std::function<result<std::size_t>(std::span<unsigned char>)>;

struct chunk {
  std::uint64_t offset = 0;             // of its first byte in the stream
  std::span<const unsigned char> data;  // valid until the next call of next()
};

/// Splits one stream into chunks. Memory: one buffer of max_size + read_size
/// bytes, whatever the stream's length. Not thread-safe; one stream per object.
class chunker {
 public:
  static constexpr std::size_t window_size = 64;
  static constexpr std::size_t min_size = std::size_t{512} * 1024;
  static constexpr std::size_t max_size = std::size_t{8} * 1024 * 1024;
  static constexpr std::size_t read_size = std::size_t{512} * 1024;
  static constexpr std::uint64_t split_mask = (std::uint64_t{1} << 20) - 1;

  /// Throws std::invalid_argument when `pol` has a degree outside 9..53 (a bug:
  /// configs are validated when parsed).
  chunker(polynomial pol, byte_source source);

  /// The next chunk, std::nullopt after the last one; an error of the source is
  /// passed on (and returned again by later calls).
  result<std::optional<chunk>> next();

 private:
  void reset_state();
  result<void> fill();

  unsigned shift_;  // deg(pol) - 8
  std::array<std::uint64_t, 256> out_{};
  std::array<std::uint64_t, 256> mod_{};
  byte_source source_;

  std::vector<unsigned char> buffer_;  // [0, filled_) read; chunks start at 0
  std::size_t filled_ = 0;
  std::size_t consumed_ = 0;  // the previous chunk's length, dropped on the next call
  std::uint64_t offset_ = 0;  // stream offset of buffer_[0]
  bool eof_ = false;
  std::optional<error> failed_;

  std::array<unsigned char, window_size> window_{};
  std::size_t wpos_ = 0;
  std::uint64_t digest_ = 0;
};

}  // namespace lifeboat::restic
