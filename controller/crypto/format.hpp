#pragma once

#include "controller/crypto/age.hpp"

#include <array>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

// age's framing: unpadded canonical base64, Bech32 keys, header stanzas and
// the header MAC line. Pure text handling, no cryptography. Internal to
// lifeboat::crypto (and its tests).
namespace lifeboat::crypto::detail {

/// RFC 4648 standard alphabet, without '=' padding.
std::string base64_encode(std::span<const unsigned char> bytes);
/// Strict: nullopt for padding, characters outside the alphabet, a length that cannot
/// end a quantum, or non-zero trailing bits (non-canonical).
std::optional<std::vector<unsigned char>> base64_decode(std::string_view text);

/// BIP 173 Bech32 without its length limit. The checksum is computed over the
/// lower-case form; the result is upper case when `hrp` is.
std::string bech32_encode(std::string_view hrp, std::span<const unsigned char> data);

struct bech32_data {
  std::string hrp;  ///< lower case
  std::vector<unsigned char> data;
};
/// invalid_key with what is wrong: mixed case, no separator, a character outside the
/// charset, a bad checksum, bad padding.
result<bech32_data> bech32_decode(std::string_view text);

/// A recipient stanza: "-> " args, then the body in base64 wrapped at 64 columns.
struct stanza {
  std::vector<std::string> args;
  std::vector<unsigned char> body;
};

/// The stanza's lines, each ending in '\n'; the body always ends with a line shorter
/// than 64 columns (empty when its length is a multiple of 48 bytes).
std::string format_stanza(const stanza& s);

inline constexpr std::string_view version_line = "age-encryption.org/v1\n";
/// The longest header accepted, so a file that is not age cannot fill memory.
inline constexpr std::size_t max_header_size = std::size_t{1} << 20;

/// Reads a header as its bytes arrive. advance() is given the whole buffer so far
/// (always a prefix of the same stream) and resumes at the first line it has not read.
class header_parser {
 public:
  /// True once the MAC line has been read; corrupt naming the line when the header is
  /// malformed, as soon as the bytes show it.
  result<bool> advance(std::string_view buffer);

  /// Header bytes, the MAC line included (where the payload starts).
  std::size_t size() const { return offset_; }
  /// Bytes the MAC covers: up to and including the final "---".
  std::size_t mac_input_size() const { return mac_input_size_; }
  const std::array<unsigned char, 32>& mac() const { return mac_; }
  const std::vector<stanza>& stanzas() const { return stanzas_; }

 private:
  enum class state { version, stanza_or_end, body, done };
  result<void> line(std::string_view text);
  error bad(std::string message) const;

  state state_ = state::version;
  std::size_t offset_ = 0;
  int line_number_ = 0;
  std::string body_text_;
  std::vector<stanza> stanzas_;
  std::size_t mac_input_size_ = 0;
  std::array<unsigned char, 32> mac_{};
};

}  // namespace lifeboat::crypto::detail
