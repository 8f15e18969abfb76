// The age file as a stream: the header (stanzas and their MAC), the payload
// nonce, then ChaCha20-Poly1305 chunks of 64 KiB whose nonce is a big-endian
// counter and a last-chunk flag.
#include "controller/crypto/format.hpp"
#include "controller/crypto/keys.hpp"
#include "controller/crypto/primitives.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <optional>

namespace lifeboat::crypto {

namespace {

using detail::byte_view;
using detail::key32;

constexpr std::size_t chunk_size = std::size_t{64} * 1024;
constexpr std::size_t sealed_chunk_size = chunk_size + detail::aead_tag_size;
constexpr std::size_t nonce_size = 16;

std::array<unsigned char, 12> chunk_nonce(std::uint64_t counter, bool last) {
  std::array<unsigned char, 12> nonce{};
  for (int i = 0; i < 8; ++i) {
    nonce[10 - i] = static_cast<unsigned char>(counter >> (8 * i));
  }
  nonce[11] = last ? 1 : 0;
  return nonce;
}

std::span<const char> as_chars(std::span<const unsigned char> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

byte_view as_uchars(std::span<const char> chars) {
  return {reinterpret_cast<const unsigned char*>(chars.data()), chars.size()};
}

result<key32> header_mac(byte_view file_key, std::string_view header_up_to_dashes) {
  auto mac_key = detail::hkdf_sha256(file_key, {}, "header");
  if (!mac_key) {
    return mac_key.error();
  }
  return detail::hmac_sha256(mac_key->view(), detail::as_bytes(header_up_to_dashes));
}

class age_encryptor final : public encryptor {
 public:
  age_encryptor(const key32& payload_key, byte_sink sink)
      : payload_key_(payload_key), sink_(std::move(sink)) {
    chunk_.reserve(chunk_size);
    sealed_.resize(sealed_chunk_size);
  }

  result<void> write(std::span<const char> plaintext) override {
    if (failed_) {
      return *failed_;
    }
    if (finished_) {
      return make_error(errc::internal, "encryptor: write after finish");
    }
    while (!plaintext.empty()) {
      // A full chunk is sealed only once more data follows: until then it may be the last.
      if (chunk_.size() == chunk_size) {
        if (auto r = seal(false); !r) {
          return r;
        }
      }
      const std::size_t take = std::min(chunk_size - chunk_.size(), plaintext.size());
      const byte_view piece = as_uchars(plaintext.first(take));
      chunk_.insert(chunk_.end(), piece.begin(), piece.end());
      plaintext = plaintext.subspan(take);
    }
    return {};
  }

  result<void> finish() override {
    if (failed_) {
      return *failed_;
    }
    if (finished_) {
      return make_error(errc::internal, "encryptor: finish called twice");
    }
    finished_ = true;
    return seal(true);
  }

 private:
  result<void> seal(bool last) {
    const auto nonce = chunk_nonce(counter_, last);
    const std::span<unsigned char> out(sealed_.data(), chunk_.size() + detail::aead_tag_size);
    auto r = detail::aead_seal(payload_key_.view(), nonce, chunk_, out);
    if (r) {
      r = sink_(as_chars(out));
    }
    if (!r) {
      failed_ = r.error();
      return r;
    }
    ++counter_;
    chunk_.clear();
    return {};
  }

  key32 payload_key_;
  byte_sink sink_;
  std::vector<unsigned char> chunk_;
  std::vector<unsigned char> sealed_;
  std::uint64_t counter_ = 0;
  bool finished_ = false;
  std::optional<error> failed_;
};

class age_decryptor final : public decryptor {
 public:
  age_decryptor(std::vector<identity> identities, byte_sink sink)
      : identities_(std::move(identities)), sink_(std::move(sink)) {}

  result<void> write(std::span<const char> ciphertext) override {
    if (failed_) {
      return *failed_;
    }
    if (finished_) {
      return make_error(errc::internal, "decryptor: write after finish");
    }
    auto r = consume(ciphertext);
    if (!r) {
      failed_ = r.error();
    }
    return r;
  }

  result<void> finish() override {
    if (failed_) {
      return *failed_;
    }
    if (finished_) {
      return make_error(errc::internal, "decryptor: finish called twice");
    }
    finished_ = true;
    auto r = end_of_input();
    if (!r) {
      failed_ = r.error();
    }
    return r;
  }

 private:
  enum class phase { header, nonce, payload, done };

  result<void> consume(std::span<const char> input) {
    while (!input.empty()) {
      switch (phase_) {
        case phase::header: {
          // Small steps, so a large write does not all land in the header buffer.
          const std::size_t take = std::min<std::size_t>(input.size(), 4096);
          header_.append(input.data(), take);
          input = input.subspan(take);
          auto complete = parser_.advance(header_);
          if (!complete) {
            return complete.error();
          }
          if (*complete) {
            if (auto r = open_header(); !r) {
              return r;
            }
            // What followed the header in this step belongs to the payload.
            std::string rest = header_.substr(parser_.size());
            header_.clear();
            header_.shrink_to_fit();
            phase_ = phase::nonce;
            if (auto r = consume(std::span<const char>(rest.data(), rest.size())); !r) {
              return r;
            }
          }
          break;
        }
        case phase::nonce: {
          const std::size_t take = std::min(nonce_size - nonce_.size(), input.size());
          const byte_view piece = as_uchars(input.first(take));
          nonce_.insert(nonce_.end(), piece.begin(), piece.end());
          input = input.subspan(take);
          if (nonce_.size() == nonce_size) {
            auto key = detail::hkdf_sha256(file_key_.bytes(), nonce_, "payload");
            if (!key) {
              return key.error();
            }
            payload_key_ = *key;
            file_key_ = {};
            phase_ = phase::payload;
            chunk_.reserve(sealed_chunk_size + 1);
            plain_.resize(chunk_size);
          }
          break;
        }
        case phase::payload: {
          // A full chunk is opened once one more byte shows it is not the last.
          const std::size_t take = std::min(sealed_chunk_size + 1 - chunk_.size(), input.size());
          const byte_view piece = as_uchars(input.first(take));
          chunk_.insert(chunk_.end(), piece.begin(), piece.end());
          input = input.subspan(take);
          if (chunk_.size() == sealed_chunk_size + 1) {
            if (auto r = open_full_chunk(); !r) {
              return r;
            }
          }
          break;
        }
        case phase::done:
          return make_error(errc::corrupt, "trailing data after the final chunk");
      }
    }
    return {};
  }

  /// Finds the file key with the identities and checks the header MAC with it.
  result<void> open_header() {
    const auto& stanzas = parser_.stanzas();
    const bool has_scrypt = std::any_of(stanzas.begin(), stanzas.end(), [](const auto& s) {
      return !s.args.empty() && s.args[0] == "scrypt";
    });
    if (has_scrypt && stanzas.size() > 1) {
      return make_error(errc::corrupt,
                        "an scrypt (passphrase) stanza is not the header's only stanza");
    }
    for (const identity& id : identities_) {
      auto key = detail::access::unwrap(id, stanzas);
      if (!key) {
        return key.error();
      }
      if (*key) {
        file_key_ = std::move(**key);
        break;
      }
    }
    if (file_key_.empty()) {
      std::vector<std::string> types;
      for (const auto& s : stanzas) {
        if (std::find(types.begin(), types.end(), s.args[0]) == types.end()) {
          types.push_back(s.args[0]);
        }
      }
      return make_error(errc::no_matching_identity,
                        fmt::format("none of the {} identities given opens the file's stanzas "
                                    "({}): a wrong key or passphrase",
                                    identities_.size(), fmt::join(types, ", ")));
    }
    auto mac = header_mac(file_key_.bytes(),
                          std::string_view(header_).substr(0, parser_.mac_input_size()));
    if (!mac) {
      return mac.error();
    }
    if (!detail::equal_constant_time(mac->view(), parser_.mac())) {
      return make_error(errc::corrupt, "header MAC mismatch");
    }
    header_size_ = parser_.size();
    return {};
  }

  /// Where chunk `index` starts in the file, for messages.
  std::uint64_t chunk_offset(std::uint64_t index) const {
    return header_size_ + nonce_size + (index * sealed_chunk_size);
  }

  error chunk_failed(std::size_t size) const {
    return make_error(errc::corrupt,
                      fmt::format("chunk {} (at byte {}, {} bytes) failed authentication", counter_,
                                  chunk_offset(counter_), size));
  }

  result<bool> open_chunk(std::size_t size, bool last) {
    const std::span<unsigned char> out(plain_.data(), size - detail::aead_tag_size);
    return detail::aead_open(payload_key_.view(), chunk_nonce(counter_, last),
                             byte_view(chunk_).first(size), out);
  }

  result<void> emit(std::size_t plain_size) {
    if (auto r =
            sink_(std::span<const char>(reinterpret_cast<const char*>(plain_.data()), plain_size));
        !r) {
      return r;
    }
    ++counter_;
    return {};
  }

  result<void> open_full_chunk() {
    auto opened = open_chunk(sealed_chunk_size, false);
    if (!opened) {
      return opened.error();
    }
    if (!*opened) {
      auto as_last = open_chunk(sealed_chunk_size, true);
      if (as_last && *as_last) {
        return make_error(errc::corrupt,
                          fmt::format("trailing data after the final chunk {} (which ends at "
                                      "byte {})",
                                      counter_, chunk_offset(counter_ + 1)));
      }
      return chunk_failed(sealed_chunk_size);
    }
    if (auto r = emit(chunk_size); !r) {
      return r;
    }
    chunk_.erase(chunk_.begin(), chunk_.begin() + sealed_chunk_size);
    return {};
  }

  result<void> end_of_input() {
    switch (phase_) {
      case phase::header:
        if (header_.empty()) {
          return make_error(errc::truncated, "empty input: no age header");
        }
        // A complete header is refused by advance() already; here a line is missing.
        return make_error(errc::truncated,
                          fmt::format("ends inside the header, after {} bytes", header_.size()));
      case phase::nonce:
        return make_error(errc::truncated,
                          fmt::format("ends after the header, inside the payload nonce ({} of {} "
                                      "bytes)",
                                      nonce_.size(), nonce_size));
      case phase::done:
        return {};
      case phase::payload:
        break;
    }
    const std::size_t size = chunk_.size();
    if (size == 0) {
      if (counter_ == 0) {
        return make_error(errc::truncated, "ends after the payload nonce, without the final chunk");
      }
      return make_error(errc::truncated,
                        fmt::format("ends after chunk {} without the final chunk", counter_ - 1));
    }
    if (size < detail::aead_tag_size) {
      return make_error(errc::truncated,
                        fmt::format("ends inside chunk {} (at byte {}): {} bytes, less than its "
                                    "tag",
                                    counter_, chunk_offset(counter_), size));
    }
    auto opened = open_chunk(size, true);
    if (!opened) {
      return opened.error();
    }
    if (!*opened) {
      if (size == sealed_chunk_size) {
        auto as_middle = open_chunk(size, false);
        if (as_middle && *as_middle) {
          return make_error(errc::truncated,
                            fmt::format("ends after chunk {} without the final chunk", counter_));
        }
      }
      return chunk_failed(size);
    }
    if (size == detail::aead_tag_size && counter_ > 0) {
      return make_error(errc::corrupt,
                        fmt::format("final chunk {} is empty; only an empty file may end with "
                                    "an empty chunk",
                                    counter_));
    }
    if (auto r = emit(size - detail::aead_tag_size); !r) {
      return r;
    }
    phase_ = phase::done;
    chunk_.clear();
    return {};
  }

  std::vector<identity> identities_;
  byte_sink sink_;
  phase phase_ = phase::header;
  std::string header_;
  detail::header_parser parser_;
  std::size_t header_size_ = 0;
  detail::secret_bytes file_key_;
  std::vector<unsigned char> nonce_;
  key32 payload_key_;
  std::vector<unsigned char> chunk_;
  std::vector<unsigned char> plain_;
  std::uint64_t counter_ = 0;
  bool finished_ = false;
  std::optional<error> failed_;
};

}  // namespace

encryptor::~encryptor() = default;
decryptor::~decryptor() = default;

namespace detail {

result<std::unique_ptr<encryptor>> make_encryptor(std::span<const recipient> recipients,
                                                  byte_sink sink,
                                                  std::span<const unsigned char> file_key,
                                                  std::span<const unsigned char> nonce) {
  if (recipients.empty()) {
    return make_error(errc::invalid_key, "no recipients to encrypt to");
  }
  for (const recipient& r : recipients) {
    if (r.type() != recipient::kind::scrypt) {
      continue;
    }
    if (recipients.size() > 1) {
      return make_error(errc::invalid_key,
                        "a passphrase (scrypt) recipient must be the file's only recipient");
    }
    const int work_factor = access::work_factor(r);
    if (work_factor < 1 || work_factor > max_log2_work_factor) {
      return make_error(errc::invalid_key,
                        fmt::format("scrypt work factor 2^{} is outside 2^1..2^{}", work_factor,
                                    max_log2_work_factor));
    }
  }
  if (file_key.size() != file_key_size || nonce.size() != nonce_size) {
    return make_error(errc::internal, "make_encryptor: a file key and a nonce are 16 bytes");
  }
  std::string header(version_line);
  for (const recipient& r : recipients) {
    auto s = access::wrap(r, file_key);
    if (!s) {
      return s.error();
    }
    header += format_stanza(*s);
  }
  header += "---";
  auto mac = header_mac(file_key, header);
  if (!mac) {
    return mac.error();
  }
  header += ' ';
  header += base64_encode(mac->view());
  header += '\n';
  header.append(reinterpret_cast<const char*>(nonce.data()), nonce.size());
  auto payload_key = hkdf_sha256(file_key, nonce, "payload");
  if (!payload_key) {
    return payload_key.error();
  }
  if (auto r = sink(std::span<const char>(header.data(), header.size())); !r) {
    return r.error();
  }
  return std::unique_ptr<encryptor>(std::make_unique<age_encryptor>(*payload_key, std::move(sink)));
}

}  // namespace detail

result<std::unique_ptr<encryptor>> encryptor::make(std::span<const recipient> recipients,
                                                   byte_sink sink) {
  std::array<unsigned char, detail::file_key_size> file_key{};
  std::array<unsigned char, nonce_size> nonce{};
  if (auto r = detail::random_bytes(file_key); !r) {
    return r.error();
  }
  if (auto r = detail::random_bytes(nonce); !r) {
    return r.error();
  }
  auto out = detail::make_encryptor(recipients, std::move(sink), file_key, nonce);
  detail::cleanse(file_key);
  return out;
}

std::unique_ptr<decryptor> decryptor::make(std::vector<identity> identities, byte_sink sink) {
  return std::make_unique<age_decryptor>(std::move(identities), std::move(sink));
}

bool looks_like_age(std::span<const char> head) {
  const std::string_view text(head.data(), head.size());
  const std::string_view version = detail::version_line;
  if (text.size() < version.size() - 1) {
    return false;
  }
  return text.substr(0, version.size()) == version.substr(0, std::min(text.size(), version.size()));
}

}  // namespace lifeboat::crypto
