#include "controller/crypto/age.hpp"
#include "controller/crypto/format.hpp"
#include "controller/crypto/keys.hpp"
#include "controller/crypto/primitives.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <tuple>
#include <vector>

namespace lifeboat::crypto {
namespace {

using ::testing::HasSubstr;
using bytes = std::vector<unsigned char>;

constexpr std::size_t chunk = 65536;
constexpr std::size_t sealed = chunk + 16;

bytes from_hex(std::string_view hex) {
  bytes out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(
        static_cast<unsigned char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

std::string to_hex(std::span<const unsigned char> b) {
  static constexpr std::string_view digits = "0123456789abcdef";
  std::string out;
  for (const unsigned char c : b) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::string random_text(std::size_t size, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::string out(size, '\0');
  for (char& c : out) {
    c = static_cast<char>(gen() & 0xff);
  }
  return out;
}

/// Split points for feeding `size` bytes in pieces: one piece (seed 0) or random ones.
std::vector<std::size_t> pieces(std::size_t size, std::uint32_t seed) {
  if (seed == 0) {
    return {size};
  }
  std::mt19937 gen(seed);
  std::vector<std::size_t> out;
  std::size_t left = size;
  while (left > 0) {
    // Mostly small pieces, sometimes larger than a chunk.
    const std::size_t max = (gen() % 8 == 0) ? 3 * chunk : 5000;
    const std::size_t n = std::min<std::size_t>(left, 1 + (gen() % max));
    out.push_back(n);
    left -= n;
  }
  return out;
}

byte_sink append_to(std::string& out) {
  return [&out](std::span<const char> b) -> result<void> {
    out.append(b.data(), b.size());
    return {};
  };
}

std::string encrypt(const std::vector<recipient>& recipients, const std::string& plaintext,
                    std::uint32_t split_seed = 0) {
  std::string out;
  auto enc = encryptor::make(recipients, append_to(out));
  EXPECT_TRUE(enc) << enc.error().describe();
  std::size_t at = 0;
  for (const std::size_t n : pieces(plaintext.size(), split_seed)) {
    EXPECT_TRUE((*enc)->write(std::span<const char>(plaintext.data() + at, n)));
    at += n;
  }
  EXPECT_TRUE((*enc)->finish());
  return out;
}

result<std::string> decrypt(std::vector<identity> identities, const std::string& ciphertext,
                            std::uint32_t split_seed = 0) {
  std::string out;
  auto dec = decryptor::make(std::move(identities), append_to(out));
  std::size_t at = 0;
  for (const std::size_t n : pieces(ciphertext.size(), split_seed)) {
    if (auto r = dec->write(std::span<const char>(ciphertext.data() + at, n)); !r) {
      return r.error();
    }
    at += n;
  }
  if (auto r = dec->finish(); !r) {
    return r.error();
  }
  return out;
}

/// The spec's example identity (32 bytes of 0x42) and its recipient.
constexpr std::string_view spec_identity =
    "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX";
constexpr std::string_view spec_recipient =
    "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj";

identity spec_id() { return parse_identities(spec_identity).value().at(0); }
recipient spec_rcpt() { return parse_recipient(spec_recipient).value(); }

// --- primitives against their RFCs' vectors: the wrappers call OpenSSL correctly.

TEST(AgePrimitives, X25519MatchesRfc7748) {
  const bytes scalar = from_hex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4");
  const bytes u = from_hex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c");
  auto out = detail::x25519(scalar, u);
  ASSERT_TRUE(out);
  EXPECT_EQ(to_hex(out->bytes), "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552");
}

TEST(AgePrimitives, X25519RefusesLowOrderPoint) {
  const bytes scalar(32, 7);
  const bytes zero(32, 0);
  auto out = detail::x25519(scalar, zero);
  ASSERT_FALSE(out);
  EXPECT_TRUE(out.error().is(errc::corrupt));
}

TEST(AgePrimitives, HkdfMatchesRfc5869Case1) {
  const bytes ikm(22, 0x0b);
  const bytes salt = from_hex("000102030405060708090a0b0c");
  const bytes info = from_hex("f0f1f2f3f4f5f6f7f8f9");
  auto out = detail::hkdf_sha256(
      ikm, salt, std::string_view(reinterpret_cast<const char*>(info.data()), info.size()));
  ASSERT_TRUE(out);
  EXPECT_EQ(to_hex(out->bytes), "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf");
}

TEST(AgePrimitives, HkdfWithEmptyIkmIsDefined) {
  // ssh-ed25519's tweak: HKDF with no input keying material.
  auto a = detail::hkdf_sha256({}, detail::as_bytes("salt"), "info");
  auto b = detail::hkdf_sha256({}, detail::as_bytes("salt2"), "info");
  ASSERT_TRUE(a);
  ASSERT_TRUE(b);
  EXPECT_NE(a->bytes, b->bytes);
}

// --- framing: base64, Bech32, stanzas.

TEST(AgeBase64, CanonicalUnpaddedOnly) {
  EXPECT_EQ(detail::base64_encode(detail::as_bytes("")), "");
  EXPECT_EQ(detail::base64_encode(detail::as_bytes("f")), "Zg");
  EXPECT_EQ(detail::base64_encode(detail::as_bytes("fo")), "Zm8");
  EXPECT_EQ(detail::base64_encode(detail::as_bytes("foo")), "Zm9v");
  EXPECT_EQ(detail::base64_decode("Zm8").value(), bytes({'f', 'o'}));
  EXPECT_FALSE(detail::base64_decode("Zm8="));   // padding
  EXPECT_FALSE(detail::base64_decode("Zm9"));    // non-canonical: low bits of '9' set
  EXPECT_FALSE(detail::base64_decode("Zh"));     // non-canonical
  EXPECT_FALSE(detail::base64_decode("Zm9vY"));  // a length no encoding has
  EXPECT_FALSE(detail::base64_decode("Zm-v"));   // URL alphabet
  EXPECT_FALSE(detail::base64_decode("Zm9v\r"));
}

TEST(AgeBech32, SpecIdentityAndRecipient) {
  auto id = detail::bech32_decode(spec_identity);
  ASSERT_TRUE(id);
  EXPECT_EQ(id->hrp, "age-secret-key-");
  EXPECT_EQ(id->data, bytes(32, 0x42));
  EXPECT_EQ(detail::bech32_encode("AGE-SECRET-KEY-", bytes(32, 0x42)), spec_identity);

  // recipient = X25519(identity, basepoint), Bech32 with HRP "age".
  auto pub = detail::x25519_public(bytes(32, 0x42));
  ASSERT_TRUE(pub);
  EXPECT_EQ(detail::bech32_encode("age", pub->bytes), spec_recipient);
  EXPECT_EQ(spec_id().to_recipient().value().to_string(), spec_recipient);
  EXPECT_EQ(spec_id().to_string(), spec_identity);
}

TEST(AgeBech32, Bip173Vectors) {
  auto empty = detail::bech32_decode("A12UEL5L");
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->hrp, "a");
  EXPECT_TRUE(empty->data.empty());
  EXPECT_EQ(detail::bech32_encode("a", {}), "a12uel5l");
  auto long_hrp = detail::bech32_decode(
      "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs");
  ASSERT_TRUE(long_hrp);
  EXPECT_EQ(long_hrp->hrp,
            "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio");

  auto mixed = detail::bech32_decode("A12uEL5L");
  ASSERT_FALSE(mixed);
  EXPECT_THAT(mixed.error().message, HasSubstr("mixes upper and lower case"));
  auto checksum = detail::bech32_decode("a12uel5m");
  ASSERT_FALSE(checksum);
  EXPECT_THAT(checksum.error().message, HasSubstr("bad checksum"));
  auto no_hrp = detail::bech32_decode("pzry9x0s0muk");
  ASSERT_FALSE(no_hrp);
  EXPECT_THAT(no_hrp.error().message, HasSubstr("not a bech32 string"));
  auto bad_char = detail::bech32_decode("a1bu2el5l");
  ASSERT_FALSE(bad_char);
  EXPECT_THAT(bad_char.error().message, HasSubstr("not in the bech32 character set"));
}

TEST(AgeBech32, RoundTripsEveryLength) {
  for (std::size_t n = 0; n < 70; ++n) {
    const std::string data = random_text(n, static_cast<std::uint32_t>(n + 1));
    const std::string text = detail::bech32_encode("age", detail::as_bytes(data));
    auto back = detail::bech32_decode(text);
    ASSERT_TRUE(back) << n;
    EXPECT_EQ(back->data, bytes(data.begin(), data.end())) << n;
  }
}

TEST(AgeStanza, BodyWrapsAt64ColumnsAndEndsShort) {
  EXPECT_EQ(detail::format_stanza({{"X25519", "abc"}, {}}), "-> X25519 abc\n\n");
  // 48 bytes are exactly 64 columns: the body needs an empty final line.
  const std::string s48 = detail::format_stanza({{"t"}, bytes(48, 0xff)});
  EXPECT_EQ(s48, "-> t\n" + std::string(64, '/') + "\n\n");
  const std::string s50 = detail::format_stanza({{"t"}, bytes(50, 0xff)});
  EXPECT_EQ(s50, "-> t\n" + std::string(64, '/') + "\n//8\n");

  for (const std::size_t size : {0, 1, 32, 47, 48, 49, 96, 100, 512}) {
    const bytes body(size, static_cast<unsigned char>(size));
    const std::string text = std::string(detail::version_line) +
                             detail::format_stanza({{"a", "b"}, body}) + "--- " +
                             std::string(43, 'A') + "\n";
    detail::header_parser parser;
    auto done = parser.advance(text);
    ASSERT_TRUE(done) << done.error().describe();
    ASSERT_TRUE(*done);
    ASSERT_EQ(parser.stanzas().size(), 1U);
    EXPECT_EQ(parser.stanzas()[0].args, (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(parser.stanzas()[0].body, body) << size;
    EXPECT_EQ(parser.size(), text.size());
    EXPECT_EQ(parser.mac_input_size(), text.size() - 45);
  }
}

/// The error for a header made of `lines` (version line first), or "" when it parses.
std::string header_error(std::string_view text) {
  detail::header_parser parser;
  auto r = parser.advance(text);
  if (!r) {
    EXPECT_TRUE(r.error().is(errc::corrupt));
    return r.error().message;
  }
  return *r ? "" : "incomplete";
}

TEST(AgeStanza, BadHeadersNameTheLine) {
  const std::string v = "age-encryption.org/v1\n";
  const std::string mac = "--- " + std::string(43, 'A') + "\n";
  EXPECT_EQ(header_error(v + "-> a\nAAAA\n" + mac), "");
  EXPECT_THAT(header_error("age-encryption.org/v2\n-> a\n\n" + mac),
              HasSubstr("line 1: unsupported version line"));
  EXPECT_THAT(header_error("GIF89a"), HasSubstr("not an age file"));
  EXPECT_THAT(header_error("-----BEGIN AGE ENCRYPTED FILE-----\n"), HasSubstr("ASCII-armored"));
  EXPECT_THAT(header_error(v + mac), HasSubstr("line 2: the MAC line comes before any"));
  EXPECT_THAT(header_error(v + "-> a\n" + std::string(65, 'A') + "\n" + mac),
              HasSubstr("line 3: stanza body line longer than 64 columns"));
  EXPECT_THAT(header_error(v + "-> a\nAAA=\n" + mac), HasSubstr("line 3: stanza body is not"));
  EXPECT_THAT(header_error(v + "-> a\nAB\n" + mac), HasSubstr("line 3: stanza body is not"));
  // A full line must be followed by another: here the "---" line is read as body.
  EXPECT_THAT(header_error(v + "-> a\n" + std::string(64, 'A') + "\n" + mac),
              HasSubstr("line 4: stanza body"));
  EXPECT_THAT(header_error(v + "->  a\n\n" + mac), HasSubstr("line 2: stanza line"));
  EXPECT_THAT(header_error(v + "-> a \n\n" + mac), HasSubstr("empty argument"));
  EXPECT_THAT(header_error(v + "-> a\n\nhello\n" + mac), HasSubstr("line 4: expected a stanza"));
  EXPECT_THAT(header_error(v + "-> a\n\n--- AAAA\n"), HasSubstr("line 4: malformed MAC line"));
  EXPECT_THAT(header_error(v + "-> a\n\n---" + std::string(44, 'A') + "\n"),
              HasSubstr("malformed MAC line"));
  EXPECT_THAT(header_error(v + "-> a\r\n\n" + mac), HasSubstr("line 2"));
  EXPECT_EQ(header_error(v + "-> a\n"), "incomplete");
}

TEST(AgeStanza, ParsesAcrossAnySplit) {
  const std::string text =
      std::string(detail::version_line) + detail::format_stanza({{"X", "y"}, bytes(100, 1)}) +
      detail::format_stanza({{"Z"}, bytes(48, 2)}) + "--- " + std::string(43, 'A') + "\npayload";
  for (std::size_t cut = 0; cut < text.size(); ++cut) {
    detail::header_parser parser;
    auto first = parser.advance(std::string_view(text).substr(0, cut));
    ASSERT_TRUE(first) << cut;
    auto second = parser.advance(text);
    ASSERT_TRUE(second) << cut;
    ASSERT_TRUE(*second) << cut;
    EXPECT_EQ(parser.stanzas().size(), 2U);
    EXPECT_EQ(parser.size(), text.size() - 7);
  }
}

// --- files built with a known file key and nonce, checked the spec's way.

const bytes known_file_key = from_hex("000102030405060708090a0b0c0d0e0f");
const bytes known_nonce = from_hex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");

/// An encryption of `plaintext` with the known file key and nonce.
std::string known_file(const std::string& plaintext) {
  std::string out;
  const std::vector<recipient> to{spec_rcpt()};
  auto enc = detail::make_encryptor(to, append_to(out), known_file_key, known_nonce);
  EXPECT_TRUE(enc);
  EXPECT_TRUE((*enc)->write(plaintext));
  EXPECT_TRUE((*enc)->finish());
  return out;
}

/// Header and nonce of a known file: where its payload chunks start.
std::string known_prefix() {
  const std::string file = known_file("");
  return file.substr(0, file.size() - 16);
}

/// One chunk sealed under the known file key's payload key.
std::string known_chunk(const std::string& plaintext, std::uint64_t index, bool last) {
  auto payload_key = detail::hkdf_sha256(known_file_key, known_nonce, "payload").value();
  bytes nonce(12, 0);
  for (int i = 0; i < 8; ++i) {
    nonce[10 - i] = static_cast<unsigned char>(index >> (8 * i));
  }
  nonce[11] = last ? 1 : 0;
  bytes out(plaintext.size() + 16);
  EXPECT_TRUE(detail::aead_seal(payload_key.view(), nonce, detail::as_bytes(plaintext), out));
  return {out.begin(), out.end()};
}

TEST(AgeFormat, HeaderMacAndPayloadFollowTheSpec) {
  const std::string plaintext = "hello, lifeboat";
  const std::string file = known_file(plaintext);

  const std::size_t dashes = file.find("\n---") + 4;
  ASSERT_NE(dashes, std::string::npos + 4);
  const std::size_t mac_end = file.find('\n', dashes);
  ASSERT_EQ(mac_end - dashes, 44U);  // " " and 43 base64 characters
  EXPECT_TRUE(file.starts_with("age-encryption.org/v1\n-> X25519 "));

  // HMAC key = HKDF-SHA-256(ikm = file key, salt = empty, info = "header").
  auto hmac_key = detail::hkdf_sha256(known_file_key, {}, "header").value();
  auto mac = detail::hmac_sha256(hmac_key.view(), detail::as_bytes(file.substr(0, dashes))).value();
  EXPECT_EQ(file.substr(dashes + 1, 43), detail::base64_encode(mac.bytes));

  // The nonce, then one final chunk with counter 0 and flag 0x01.
  EXPECT_EQ(file.substr(mac_end + 1, 16), std::string(known_nonce.begin(), known_nonce.end()));
  EXPECT_EQ(file.substr(mac_end + 17), known_chunk(plaintext, 0, true));
  EXPECT_EQ(file.size(), mac_end + 1 + 16 + plaintext.size() + 16);

  auto back = decrypt({spec_id()}, file);
  ASSERT_TRUE(back) << back.error().describe();
  EXPECT_EQ(*back, plaintext);
}

TEST(AgeFormat, StanzaBodyIsTheFileKeyWrappedForTheRecipient) {
  const std::string file = known_file("");
  detail::header_parser parser;
  ASSERT_TRUE(parser.advance(file).value());
  ASSERT_EQ(parser.stanzas().size(), 1U);
  const auto& s = parser.stanzas()[0];
  ASSERT_EQ(s.args.size(), 2U);
  EXPECT_EQ(s.args[0], "X25519");
  // shared = X25519(identity, share); wrap key = HKDF(shared, share || recipient, label).
  const bytes share = detail::base64_decode(s.args[1]).value();
  auto shared = detail::x25519(bytes(32, 0x42), share).value();
  bytes salt = share;
  const auto pub = detail::x25519_public(bytes(32, 0x42)).value();
  salt.insert(salt.end(), pub.bytes.begin(), pub.bytes.end());
  auto wrap_key = detail::hkdf_sha256(shared.view(), salt, "age-encryption.org/v1/X25519").value();
  bytes file_key(16);
  ASSERT_TRUE(detail::aead_open(wrap_key.view(), bytes(12, 0), s.body, file_key).value());
  EXPECT_EQ(file_key, known_file_key);
}

// --- round trips.

TEST(AgeRoundTrip, SizesAroundChunkBoundariesAndAnySplit) {
  const identity id = generate_x25519_identity();
  const std::vector<recipient> to{id.to_recipient().value()};
  for (const std::size_t size :
       {std::size_t{0}, std::size_t{1}, chunk - 1, chunk, chunk + 1, 3 * chunk}) {
    const std::string plaintext = random_text(size, static_cast<std::uint32_t>(size + 7));
    for (const std::uint32_t seed : {0U, 1U, 2U}) {
      const std::string file = encrypt(to, plaintext, seed);
      auto back = decrypt({id}, file, seed + 10);
      ASSERT_TRUE(back) << size << " " << seed << ": " << back.error().describe();
      EXPECT_EQ(*back, plaintext) << size << " " << seed;
    }
  }
}

TEST(AgeRoundTrip, CiphertextSizeIsOneTagPerChunk) {
  const std::string header = known_prefix();
  EXPECT_EQ(known_file("").size(), header.size() + 16);  // the one empty final chunk
  EXPECT_EQ(known_file(std::string(chunk, 'x')).size(), header.size() + sealed);
  EXPECT_EQ(known_file(std::string(2 * chunk, 'x')).size(), header.size() + (2 * sealed));
  EXPECT_EQ(known_file(std::string(2 * chunk + 1, 'x')).size(), header.size() + (2 * sealed) + 17);
}

TEST(AgeRoundTrip, SeveralRecipientsEachDecrypt) {
  const identity a = generate_x25519_identity();
  const identity b = generate_x25519_identity();
  const std::string file = encrypt({a.to_recipient().value(), b.to_recipient().value()}, "two");
  EXPECT_EQ(decrypt({b}, file).value(), "two");
  EXPECT_EQ(decrypt({a}, file).value(), "two");
  EXPECT_EQ(decrypt({generate_x25519_identity(), b}, file).value(), "two");
}

TEST(AgeRoundTrip, Passphrase) {
  const std::string plaintext = random_text(100000, 3);
  const std::string file = encrypt({passphrase_recipient("correct horse", 10)}, plaintext, 5);
  EXPECT_THAT(file, HasSubstr("\n-> scrypt "));
  EXPECT_THAT(file, HasSubstr(" 10\n"));
  auto back = decrypt({passphrase_identity("correct horse")}, file, 6);
  ASSERT_TRUE(back) << back.error().describe();
  EXPECT_EQ(*back, plaintext);

  auto wrong = decrypt({passphrase_identity("battery staple")}, file);
  ASSERT_FALSE(wrong);
  EXPECT_TRUE(wrong.error().is(errc::no_matching_identity)) << wrong.error().describe();
  EXPECT_THAT(wrong.error().message, HasSubstr("scrypt"));
}

TEST(AgeRoundTrip, ScryptWorkFactorAboveTheMaximumIsRefused) {
  std::string file = encrypt({passphrase_recipient("pw", 10)}, "x");
  const std::size_t at = file.find(" 10\n");
  file.replace(at, 4, " 23\n");
  auto r = decrypt({passphrase_identity("pw")}, file);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(errc::corrupt));
  EXPECT_THAT(r.error().message, HasSubstr("work factor 2^23 is above the maximum 2^22"));

  file.replace(at, 4, " 01\n");
  r = decrypt({passphrase_identity("pw")}, file);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("leading zeros"));
}

TEST(AgeRoundTrip, ScryptMustBeTheOnlyRecipient) {
  std::string out;
  const std::vector<recipient> mixed{passphrase_recipient("pw", 10), spec_rcpt()};
  auto enc = encryptor::make(mixed, append_to(out));
  ASSERT_FALSE(enc);
  EXPECT_TRUE(enc.error().is(errc::invalid_key));
  EXPECT_THAT(enc.error().message, HasSubstr("only recipient"));

  const std::vector<recipient> too_slow{passphrase_recipient("pw", 23)};
  enc = encryptor::make(too_slow, append_to(out));
  ASSERT_FALSE(enc);
  EXPECT_TRUE(enc.error().is(errc::invalid_key));

  enc = encryptor::make(std::vector<recipient>{}, append_to(out));
  ASSERT_FALSE(enc);
  EXPECT_TRUE(enc.error().is(errc::invalid_key));
  EXPECT_TRUE(out.empty());
}

TEST(AgeRoundTrip, WrongIdentityNamesTheStanzaTypes) {
  const std::string file = encrypt({spec_rcpt()}, "secret");
  auto r = decrypt({generate_x25519_identity(), passphrase_identity("pw")}, file);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(errc::no_matching_identity));
  EXPECT_THAT(r.error().message, HasSubstr("(X25519)"));
}

TEST(AgeRoundTrip, SinkErrorsStopTheStream) {
  const std::vector<recipient> to{spec_rcpt()};
  int calls = 0;
  auto enc = encryptor::make(to, [&](std::span<const char>) -> result<void> {
    if (++calls > 1) {
      return make_error(errc::internal, "disk full");
    }
    return {};
  });
  ASSERT_TRUE(enc);  // the header went out
  // A full chunk is held until more data shows it is not the last.
  ASSERT_TRUE((*enc)->write(std::string(chunk, 'x')));
  auto r = (*enc)->write("y");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "disk full");
  EXPECT_EQ(calls, 2);
  r = (*enc)->finish();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "disk full");
  EXPECT_EQ(calls, 2);
}

// --- tampering and truncation.

TEST(AgeTamper, HeaderMacMismatch) {
  const std::string file = encrypt({spec_rcpt()}, "payload");
  // An extra stanza no identity reads: only the MAC notices.
  std::string grease = file;
  grease.insert(grease.find("\n---") + 1, "-> grease x\n\n");
  auto r = decrypt({spec_id()}, grease);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(errc::corrupt));
  EXPECT_EQ(r.error().message, "header MAC mismatch");

  // Another valid MAC value.
  std::string mac = file;
  const std::size_t at = mac.find("\n--- ") + 5;
  mac[at] = mac[at] == 'A' ? 'B' : 'A';
  r = decrypt({spec_id()}, mac);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "header MAC mismatch");
}

TEST(AgeTamper, StanzaAfterTheMacIsRefused) {
  const std::string file = encrypt({spec_rcpt()}, "payload");
  std::string late = file;
  late.insert(late.find('\n', late.find("\n---") + 1) + 1, "-> X25519 AAAA\n\n");
  auto r = decrypt({spec_id()}, late);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(errc::corrupt)) << r.error().describe();
}

TEST(AgeTamper, FlippedByteInEachChunkNamesThatChunk) {
  const std::string plaintext = random_text((3 * chunk) + 100, 11);
  const std::string file = known_file(plaintext);
  const std::size_t payload = known_prefix().size();
  for (std::size_t index = 0; index < 4; ++index) {
    for (const std::size_t within : {std::size_t{0}, std::size_t{50}, std::size_t{100 + 15}}) {
      std::string bad = file;
      const std::size_t at = payload + (index * sealed) + within;
      ASSERT_LT(at, bad.size());
      bad[at] = static_cast<char>(bad[at] ^ 0x20);
      std::string out;
      auto r = decrypt({spec_id()}, bad, static_cast<std::uint32_t>(index + 1));
      ASSERT_FALSE(r) << index;
      EXPECT_TRUE(r.error().is(errc::corrupt)) << r.error().describe();
      EXPECT_THAT(r.error().message, HasSubstr("chunk " + std::to_string(index) + " (at byte " +
                                               std::to_string(payload + (index * sealed)) + ","));
    }
  }
}

TEST(AgeTamper, NothingOfABadChunkReachesTheSink) {
  const std::string file = known_file(random_text(2 * chunk + 5, 12));
  std::string bad = file;
  bad[known_prefix().size() + sealed + 3] ^= 1;
  std::string out;
  auto dec = decryptor::make({spec_id()}, append_to(out));
  auto r = dec->write(bad);
  if (r) {
    r = dec->finish();
  }
  ASSERT_FALSE(r);
  EXPECT_EQ(out.size(), chunk);  // chunk 0 only
  // The error sticks.
  EXPECT_FALSE(dec->write("x"));
  EXPECT_FALSE(dec->finish());
}

TEST(AgeTruncation, AtEveryChunkBoundaryAndMidChunk) {
  const std::string file = known_file(random_text(3 * chunk, 13));
  const std::size_t payload = known_prefix().size();
  ASSERT_EQ(file.size(), payload + (3 * sealed));
  {
    auto r = decrypt({spec_id()}, file.substr(0, payload));
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(errc::truncated));
    EXPECT_THAT(r.error().message, HasSubstr("without the final chunk"));
  }
  for (std::size_t k = 1; k < 3; ++k) {
    auto r = decrypt({spec_id()}, file.substr(0, payload + (k * sealed)), 3);
    ASSERT_FALSE(r) << k;
    EXPECT_TRUE(r.error().is(errc::truncated)) << r.error().describe();
    EXPECT_EQ(r.error().message,
              "ends after chunk " + std::to_string(k - 1) + " without the final chunk");
  }
  for (const std::size_t cut : {payload + 5, payload + 100, payload + sealed + 17,
                                payload + (2 * sealed) + chunk, file.size() - 1}) {
    auto r = decrypt({spec_id()}, file.substr(0, cut));
    ASSERT_FALSE(r) << cut;
    EXPECT_TRUE(r.error().is(errc::truncated) || r.error().is(errc::corrupt))
        << r.error().describe();
  }
}

TEST(AgeTruncation, AnywhereInTheHeaderOrNonce) {
  const std::string file = known_file("x");
  const std::size_t payload = known_prefix().size();
  for (std::size_t cut = 0; cut < payload; ++cut) {
    auto r = decrypt({spec_id()}, file.substr(0, cut));
    ASSERT_FALSE(r) << cut;
    EXPECT_TRUE(r.error().is(errc::truncated)) << cut << ": " << r.error().describe();
  }
}

TEST(AgeLastChunkFlag, MisuseIsRefused) {
  const std::string prefix = known_prefix();
  const std::string full(chunk, 'a');
  auto error_of = [](const std::string& file) {
    auto r = decrypt({spec_id()}, file, 9);
    EXPECT_FALSE(r);
    return r ? error{} : r.error();
  };
  // Sanity: the hand-built file the spec's way decrypts.
  EXPECT_EQ(decrypt({spec_id()}, prefix + known_chunk(full, 0, false) + known_chunk("b", 1, true))
                .value(),
            full + "b");

  // A full chunk without the flag, then the end: the final chunk is missing.
  error e = error_of(prefix + known_chunk(full, 0, false));
  EXPECT_TRUE(e.is(errc::truncated));
  EXPECT_EQ(e.message, "ends after chunk 0 without the final chunk");

  // A short chunk without the flag.
  e = error_of(prefix + known_chunk("short", 0, false));
  EXPECT_TRUE(e.is(errc::corrupt));
  EXPECT_THAT(e.message, HasSubstr("chunk 0"));

  // The flag on a chunk that is followed by another.
  e = error_of(prefix + known_chunk(full, 0, true) + known_chunk("b", 1, true));
  EXPECT_TRUE(e.is(errc::corrupt));
  EXPECT_THAT(e.message, HasSubstr("trailing data after the final chunk 0"));

  // An empty final chunk after a full one.
  e = error_of(prefix + known_chunk(full, 0, false) + known_chunk("", 1, true));
  EXPECT_TRUE(e.is(errc::corrupt));
  EXPECT_THAT(e.message, HasSubstr("final chunk 1 is empty"));

  // Trailing bytes after a valid final chunk.
  e = error_of(prefix + known_chunk("b", 0, true) + "x");
  EXPECT_TRUE(e.is(errc::corrupt));

  // Chunks out of order.
  e = error_of(prefix + known_chunk(full, 1, false) + known_chunk("b", 0, true));
  EXPECT_TRUE(e.is(errc::corrupt));
  EXPECT_THAT(e.message, HasSubstr("chunk 0"));
}

// Made once with Debian's age 1.1 and OpenSSH 9.2's ssh-keygen, so the decryptor
// is checked against files it did not write. The keys are test-only.
namespace age_1_1 {

/// `age -r <the spec's example recipient>` of "hello from age 1.1\n", in base64.
constexpr std::string_view x25519_file =
    "YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSBOR2tBQWVYQlV2Z3JxM1YxTVF2WXlJeWNj"
    "bUJaZHgzQm1ITE9FQ0UyelUwClpRY2JncnlHSm1idml0T3BMRUROanFOdzNJM1pObWUvVG1vcS9J"
    "UGZhZTAKLS0tIGl2S0ZZZEtORDlSMXZRNXVXQ08vVHE0S2Y3UHFNNk5aVXZaamt6WDRkWEEK7IYZ"
    "88DxuH9LSJVHtVHN+YiZ8csMJnITppa/Rvteku40P/qLxDJNnj/027r6qpIhSYeC";

constexpr std::string_view ed25519_key = R"(-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACCLcrhWtpfMboMYDK//sZW9nz0GSzW++IAa6U0yR2cGgAAAAJAxVSm1MVUp
tQAAAAtzc2gtZWQyNTUxOQAAACCLcrhWtpfMboMYDK//sZW9nz0GSzW++IAa6U0yR2cGgA
AAAEDE8pCKgmtDK0lOiP8F8gMpzSLjQRNaug3IAAxySWXQZ4tyuFa2l8xugxgMr/+xlb2f
PQZLNb74gBrpTTJHZwaAAAAAB3Rlc3QtZWQBAgMEBQY=
-----END OPENSSH PRIVATE KEY-----
)";
constexpr std::string_view ed25519_pub =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIItyuFa2l8xugxgMr/+xlb2fPQZLNb74gBrpTTJH"
    "ZwaA test-ed";
/// `age -R ed25519.pub`, in base64.
constexpr std::string_view ed25519_file =
    "YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IHNzaC1lZDI1NTE5IGJ1N1ZXUSBZcWwxaE8zM3NCM1ZT"
    "a0dQQ3VIMFhWUVRlVzdyZ1ZFNlUzNDVXZ2RMY1RJCk0relFBZWJ3UUVFT1Z2bU5vQnQzcFYxczVF"
    "MzNvSDhUSFV3VEF2MEx1MzQKLS0tIEJ3Z21LdUZnMW1Jd29zQnhmR1h0V29pUDRXVGRLWndFdVNE"
    "endJTnRmczgKwbg/Dbn+U/ErBjbvjB7eG4rnuHecwtcm5FeszPBgtasTtzuCe8vuva5uGPENOPbN"
    "RFWq";

constexpr std::string_view rsa_key = R"(-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAABFwAAAAdzc2gtcn
NhAAAAAwEAAQAAAQEAozuIT5HQj8TyNQozI9Xw3gaiMIJND8u1wZCdARy1Q4Q07P5UlfIM
cr/hx2jGW7Y8k3VI9TPSH+P2RAOzQrmHFmIOqDVfxQmZkr6MRBLgzDAy/DpTicf47nnPFv
EyWAhIjVTZ4lqSQNCvLZaasVVPOz30lYo2/rf1YN+VKamynW+GvkXz5HuS+N8u5NKg9DE0
Qmn0Mvr64ihGnLFfXUcDE16vcbOeWPxnV/A6ON527K+aoR57yeGYf55+8U+aryNnNg1sND
xmiKXYB1/bItH/SSH35rFAh+ACXBGAMpAD9yrn/DP61459Mon9/Bj+60wAWBoHBJMLU8Mb
8HVQ0PXlxQAAA8Ck6X0gpOl9IAAAAAdzc2gtcnNhAAABAQCjO4hPkdCPxPI1CjMj1fDeBq
Iwgk0Py7XBkJ0BHLVDhDTs/lSV8gxyv+HHaMZbtjyTdUj1M9If4/ZEA7NCuYcWYg6oNV/F
CZmSvoxEEuDMMDL8OlOJx/juec8W8TJYCEiNVNniWpJA0K8tlpqxVU87PfSVijb+t/Vg35
UpqbKdb4a+RfPke5L43y7k0qD0MTRCafQy+vriKEacsV9dRwMTXq9xs55Y/GdX8Do43nbs
r5qhHnvJ4Zh/nn7xT5qvI2c2DWw0PGaIpdgHX9si0f9JIffmsUCH4AJcEYAykAP3Kuf8M/
rXjn0yif38GP7rTABYGgcEkwtTwxvwdVDQ9eXFAAAAAwEAAQAAAQARv9/NpIcaQF8vV0xC
TE7kcFzjNiKtDLNXOKNp7eDkAOnvD092p/BPQKrgunWUnsIC2CZhILZrk1KXCL6jCyDeVT
akzHun0FMWZYlDvw3EsO+1BPP1L9J+FAQUdDvLiMhi3eQnZz6EtRcnYjtbUccgzlbcipVP
qK88+R2eKdQV/FBEhlI9h54WPIwphr8EQSJgkKZniC12dzMucHkrcNExkgmSw9ddEX4gKQ
AktMWkn2r9hRqziY0CHKV3d9103jvClRDE947MzF7hUgSDhjQWGLC/8z/+asAbBkVbV+4i
x0tP1ASQwMEAYo+GqG09Lu4R4jKRiMcUivOZM02/PmWtAAAAgHmNxVoyc5inChUJIMte94
SDMosbnza2x7fY5V9OjrdngX+lS6hUISr6Gb9qNWp/QzGeEg+C8v01/D6yKAyAgi7HqAqZ
kKG4ZCnEe7RPkS6sYQmrGKRZ/bkzXDKDXdpsWAL5i8Q6xW4xaWVHl4ZgoF29Us5I3nhD6I
xdaJrBAbvwAAAAgQDhNF+u8J79Z1uDXTuSUWHOMf5pIclS3Iy3dOUUcvu/7fcEeiyDoOHo
c6rejpM2F1kFJctjOmCnwFlLgEgrldNrygv2o3dEr/LgjYVcn1EegEUIzne6szksSODQL9
eYR/X7VKnDGmYKJtIyzG4QDaPfvSPcjE1Ok+eAVtGvAZsCYwAAAIEAuY277KixEjoREq+o
2wOziRyoK6ks+Xv/lPCoD239EiIRWfeoE8DZlm8Mn+TKsiUDcqN4o71SDZsDKlxfkWo/EE
/TBaDBjFuPke63C0bgGaoASa6AxbOyCZW1kLxG39uzM+73luU8mV7oWlsZti5k0oPjrFdq
DrPVnZUauyPaW7cAAAAIdGVzdC1yc2EBAgM=
-----END OPENSSH PRIVATE KEY-----
)";
constexpr std::string_view rsa_pub =
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCjO4hPkdCPxPI1CjMj1fDeBqIwgk0Py7XBkJ0B"
    "HLVDhDTs/lSV8gxyv+HHaMZbtjyTdUj1M9If4/ZEA7NCuYcWYg6oNV/FCZmSvoxEEuDMMDL8OlOJ"
    "x/juec8W8TJYCEiNVNniWpJA0K8tlpqxVU87PfSVijb+t/Vg35UpqbKdb4a+RfPke5L43y7k0qD0"
    "MTRCafQy+vriKEacsV9dRwMTXq9xs55Y/GdX8Do43nbsr5qhHnvJ4Zh/nn7xT5qvI2c2DWw0PGaI"
    "pdgHX9si0f9JIffmsUCH4AJcEYAykAP3Kuf8M/rXjn0yif38GP7rTABYGgcEkwtTwxvwdVDQ9eXF"
    " test-rsa";
/// `age -R rsa.pub`, in base64.
constexpr std::string_view rsa_file =
    "YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IHNzaC1yc2EgL1BiblpRClJZVlZTN2NIR01vWEFsdHpT"
    "K1BYdm1FdWxBR3p6cHArOVhJcVdWdUZmdzJWM2N2U01ha0lvckpxV21YV09PU20Kdy85UmJtTGNY"
    "VjJCeHF1ZWdJUVdXRndnR2VzMzl5czZBMUhWaklkYkxCd2RCUGVhcnFtamxpR3NXNHVQR3pHOAp5"
    "L0hPNHdCSjVTVFBBclBFTDlGTVo2ejAyNVdsYXpoQ1VZY3ZpdTlEMlp0OTFaWFlzZkZzQ3Fxdm40"
    "RGlMMTh6ClVyTVI2d1JxekdwRVZ1K2Q3SmtzUFRweUlkNzVwWWFQVHRJL0JwbGhEYW9FZU5SaHBv"
    "WDV1bUVialhOOUQ3MFoKWmJ2YjR4Q0p2SUlUcDlmT0dPcHh1aENmcC9abDg5YnZrZ2plYWhOL08z"
    "bDkwejNlL080RWJ5ZW9XSnc2K2djTgpWVlhFLy95YWZ3VHdWbUdIbkh5aFJ3Ci0tLSBKNktuUGxx"
    "UTFmMDhtMnBTNjhxOE9OZ0JTMW5rRFRhZnJVL0diUVNTT1dJCp46Tc6mWOVSN7yWGcngzjlrV0xE"
    "t6u77mQj3/BUbPcV2qMc/bRrFOiwjFQKVlhGYnFNIw==";

/// `ssh-keygen -N pw`: a passphrase-protected key.
constexpr std::string_view encrypted_key = R"(-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAACmFlczI1Ni1jdHIAAAAGYmNyeXB0AAAAGAAAABC1PAf0Ff
nDl5NYI6O0Ww2OAAAAEAAAAAEAAAAzAAAAC3NzaC1lZDI1NTE5AAAAINE/uUjn3Vb+uTl5
QAcpRzcmW2ZT2PeTRfzv16XJ/IdGAAAAkNDARE921C9G9uwM7HsYWNsjOkorsRbQh1dQh7
6LF12do8CkPgk708OBWpgX6ReZj7vQfxSkdW/BhxRGEQa2jnyenkLgh1TXoHBBX/4hQZfH
fCC0mvGGirnr7Xim2zTpVeV8L+r00apgViUT73SFD5qf7k0suU/XaEUxEwb/JPESfpfSAi
FiMxe+tYY6lIbyZg==
-----END OPENSSH PRIVATE KEY-----
)";
/// ECDSA, which age does not take either.
constexpr std::string_view ecdsa_pub =
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBB+F"
    "V2npo0CWAAXnQJoAB5EEYWrFtzuv8WIuHiJ78r+cZEa8qtZj2GRMkjLlW+s9D+BsoKAkc38htfbV"
    "FvwOy2M= ec";

}  // namespace age_1_1

std::string unbase64(std::string_view text) {
  auto decoded = detail::base64_decode_padded(text);
  EXPECT_TRUE(decoded);
  return decoded ? std::string(decoded->begin(), decoded->end()) : std::string();
}

TEST(AgeVectors, DecryptsAge11X25519File) {
  auto out = decrypt({spec_id()}, unbase64(age_1_1::x25519_file), 4);
  ASSERT_TRUE(out) << out.error().describe();
  EXPECT_EQ(*out, "hello from age 1.1\n");
}

TEST(AgeVectors, DecryptsAge11SshFiles) {
  for (const auto& [key, pub, file] :
       {std::tuple{age_1_1::ed25519_key, age_1_1::ed25519_pub, age_1_1::ed25519_file},
        std::tuple{age_1_1::rsa_key, age_1_1::rsa_pub, age_1_1::rsa_file}}) {
    auto ids = parse_identities(key);
    ASSERT_TRUE(ids) << ids.error().describe();
    auto out = decrypt(*ids, unbase64(file));
    ASSERT_TRUE(out) << out.error().describe();
    EXPECT_EQ(*out, "hello from age 1.1\n");

    // The public key line parses, and is what the private key says it is.
    auto to = parse_recipient(pub);
    ASSERT_TRUE(to) << to.error().describe();
    EXPECT_EQ(to->to_string() + std::string(pub.substr(pub.rfind(' '))), pub);
    EXPECT_EQ((*ids)[0].to_recipient().value().to_string(), to->to_string());

    // Our own files to that key open with it.
    const std::string plaintext = random_text(chunk + 3, 21);
    auto back = decrypt(*ids, encrypt({*to}, plaintext), 2);
    ASSERT_TRUE(back) << back.error().describe();
    EXPECT_EQ(*back, plaintext);

    // And not with another key.
    auto wrong = decrypt({spec_id()}, unbase64(file));
    ASSERT_FALSE(wrong);
    EXPECT_TRUE(wrong.error().is(errc::no_matching_identity));
  }
}

TEST(AgeVectors, SshKeysAgeDoesNotTakeAreRefused) {
  auto ids = parse_identities(age_1_1::encrypted_key);
  ASSERT_FALSE(ids);
  EXPECT_TRUE(ids.error().is(errc::invalid_key));
  EXPECT_THAT(ids.error().message, HasSubstr("encrypted"));
  auto to = parse_recipient(age_1_1::ecdsa_pub);
  ASSERT_FALSE(to);
  EXPECT_THAT(to.error().message, HasSubstr("unsupported key type ecdsa-sha2-nistp256"));
  auto damaged = parse_recipient("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIItyuFa2l8xugxgMr comment");
  ASSERT_FALSE(damaged);
  EXPECT_TRUE(damaged.error().is(errc::invalid_key));
}

TEST(AgeVectors, HeaderMacOfAge11FileIsChecked) {
  std::string file = unbase64(age_1_1::x25519_file);
  const std::size_t at = file.find("\n--- ") + 5;
  file[at] = file[at] == 'A' ? 'B' : 'A';
  auto r = decrypt({spec_id()}, file);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().describe(), "corrupt: header MAC mismatch");
}

// --- keys and key files.

TEST(AgeKeys, ParseRecipientErrorsSayWhatIsWrong) {
  auto r = parse_recipient("hello");
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(errc::invalid_key));
  EXPECT_THAT(r.error().message, HasSubstr("not a bech32 string"));

  std::string typo(spec_recipient);
  typo[10] = typo[10] == 'q' ? 'p' : 'q';
  r = parse_recipient(typo);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("bad checksum"));

  r = parse_recipient(detail::bech32_encode("agx", bytes(32, 1)));
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("wrong HRP \"agx\""));

  r = parse_recipient(detail::bech32_encode("age", bytes(31, 1)));
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("32 bytes"));

  r = parse_recipient("ssh-dss AAAAB3NzaC1kc3MAAACBAP comment");
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("unsupported key type ssh-dss"));

  r = parse_recipient(spec_identity);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("identity"));

  EXPECT_EQ(parse_recipient(std::string(spec_recipient) + "\n").value().to_string(),
            spec_recipient);
}

TEST(AgeKeys, RecipientsFileSkipsCommentsAndNamesTheBadLine) {
  const std::string good = "# backups\n\n" + std::string(spec_recipient) + "\n  \n" +
                           generate_x25519_identity().to_recipient().value().to_string() + "\n";
  auto all = parse_recipients_file(good);
  ASSERT_TRUE(all) << all.error().describe();
  EXPECT_EQ(all->size(), 2U);

  auto bad = parse_recipients_file("# one\n" + std::string(spec_recipient) + "\nage1nope\n");
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message, HasSubstr("line 3: "));

  EXPECT_FALSE(parse_recipients_file("# nothing\n"));
}

TEST(AgeKeys, IdentitiesFileAsAgeKeygenWritesIt) {
  const std::string file =
      "# created: 2026-12-04T15:00:00Z\n# public key: " + std::string(spec_recipient) + "\n" +
      std::string(spec_identity) + "\n";
  auto ids = parse_identities(file);
  ASSERT_TRUE(ids) << ids.error().describe();
  ASSERT_EQ(ids->size(), 1U);
  EXPECT_EQ((*ids)[0].type(), identity::kind::x25519);

  auto bad = parse_identities("# a comment\n" + std::string(spec_recipient) + "\n");
  ASSERT_FALSE(bad);
  EXPECT_TRUE(bad.error().is(errc::invalid_key));
  EXPECT_THAT(bad.error().message, HasSubstr("line 2: wrong HRP"));
  // The message never repeats a secret key.
  std::string typo(spec_identity);
  typo[20] = typo[20] == 'Q' ? 'P' : 'Q';
  bad = parse_identities(typo);
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message, HasSubstr("line 1: not a bech32 string: bad checksum"));
  EXPECT_THAT(bad.error().message, ::testing::Not(HasSubstr("GFPYYSJZ")));

  EXPECT_FALSE(parse_identities(""));
  EXPECT_FALSE(parse_identities("-----BEGIN RSA PRIVATE KEY-----\n"));
}

TEST(AgeKeys, SecretBytesAreCopiedAndMovedWhole) {
  detail::secret_bytes a(bytes{1, 2, 3});
  detail::secret_bytes b = a;
  EXPECT_EQ(bytes(b.bytes().begin(), b.bytes().end()), bytes({1, 2, 3}));
  detail::secret_bytes c = std::move(a);
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): the contract under test
  c = b;
  EXPECT_EQ(c.bytes().size(), 3U);
}

TEST(AgeDetect, LooksLikeAge) {
  const std::string file = encrypt({spec_rcpt()}, "x");
  EXPECT_TRUE(looks_like_age(std::span<const char>(file.data(), 21)));
  EXPECT_TRUE(looks_like_age(std::span<const char>(file.data(), 64)));
  const std::string v2 = "age-encryption.org/v2\n";
  EXPECT_FALSE(looks_like_age(v2));
  const std::string gzip = "\x1f\x8b\x08\x00 not age at all, not at all";
  EXPECT_FALSE(looks_like_age(gzip));
  EXPECT_FALSE(looks_like_age(std::span<const char>(file.data(), 20)));
  const std::string no_newline = "age-encryption.org/v1x";
  EXPECT_FALSE(looks_like_age(no_newline));
}

}  // namespace
}  // namespace lifeboat::crypto
