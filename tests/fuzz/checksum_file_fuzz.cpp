// libFuzzer target: the ".sha256" file that restore reads beside an archive
// (restore::archive_file::open, sha256sum's format "<hex>  <name>").
//
// The input is written as the checksum file of a small fixed archive in a
// scratch folder, then the archive is opened and, when the checksum file was
// accepted, verified. Beyond "no crash, no sanitizer report":
//  - the file is accepted exactly when its first whitespace-separated word is
//    64 hexadecimal digits (either case), and the expected checksum is then
//    that word in lower case;
//  - a refusal says which file is malformed;
//  - verify() passes exactly when that checksum is the archive's, and
//    otherwise fails with checksum_mismatch, never by reading a wrong value.
#include <unistd.h>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>

#include "controller/restore/unpack.hpp"

namespace {

namespace fs = std::filesystem;
using namespace lifeboat::restore;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "checksum_file_fuzz: %s\n", what.c_str());
  std::abort();
}

// A one-entry ustar archive holding the folder "vol/", built by hand so the
// target needs no tar tool.
std::string tiny_tar() {
  std::string header(512, '\0');
  const auto put = [&](std::size_t at, std::string_view s) { header.replace(at, s.size(), s); };
  put(0, "vol/");
  put(100, "0000755");
  put(108, "0000000");
  put(116, "0000000");
  put(124, "00000000000");
  put(136, "00000000000");
  put(148, "        ");
  header[156] = '5';
  put(257, "ustar");
  put(263, "00");
  unsigned sum = 0;
  for (const char c : header) {
    sum += static_cast<unsigned char>(c);
  }
  char field[8];
  std::snprintf(field, sizeof field, "%06o", sum);
  put(148, std::string_view(field, 6));
  header[154] = '\0';
  header[155] = ' ';
  return header + std::string(1024, '\0');
}

struct scratch {
  fs::path dir;
  fs::path archive;
  fs::path checksum;
  std::string real_sha256;
};

const scratch& folder() {
  static const scratch s = [] {
    scratch out;
    const char* tmp = std::getenv("TMPDIR");
    out.dir = fs::path(tmp != nullptr ? tmp : "/tmp") /
              ("checksum_file_fuzz." + std::to_string(::getpid()));
    fs::create_directories(out.dir);
    out.archive = out.dir / "a.tar";
    out.checksum = out.dir / "a.tar.sha256";
    std::ofstream(out.archive, std::ios::binary) << tiny_tar();
    fs::remove(out.checksum);
    auto f = archive_file::open(out.archive);
    if (!f) {
      fail("cannot open the fixed archive: " + f.error().describe());
    }
    auto report = verify(*f, {{".", "vol"}}, {});
    if (!report) {
      fail("the fixed archive does not verify: " + report.error().describe());
    }
    out.real_sha256 = report->sha256;
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(folder().dir, ec);
    });
    return out;
  }();
  return s;
}

// The first whitespace-separated word, as sha256sum -c reads it.
std::string first_word(std::string_view text) {
  std::size_t at = 0;
  while (at < text.size() && std::isspace(static_cast<unsigned char>(text[at]))) {
    ++at;
  }
  std::size_t end = at;
  while (end < text.size() && !std::isspace(static_cast<unsigned char>(text[end]))) {
    ++end;
  }
  return std::string(text.substr(at, end - at));
}

std::optional<std::string> expected_of(std::string_view text) {
  std::string word = first_word(text);
  if (word.size() != 64) {
    return std::nullopt;
  }
  for (char& c : word) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) {
      return std::nullopt;
    }
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return word;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const scratch& s = folder();
  const std::string_view text{reinterpret_cast<const char*>(data), size};
  {
    std::ofstream out(s.checksum, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    if (!out) {
      fail("cannot write " + s.checksum.string());
    }
  }
  const std::optional<std::string> expected = expected_of(text);
  auto opened = archive_file::open(s.archive);
  if (!opened) {
    if (expected) {
      fail("refused a checksum file that starts with a SHA-256: " + opened.error().describe());
    }
    if (opened.error().message.find(s.checksum.filename().string()) == std::string::npos) {
      fail("the refusal does not name the checksum file: " + opened.error().describe());
    }
    return 0;
  }
  if (!expected) {
    fail("accepted a checksum file that does not start with a SHA-256");
  }
  if (opened->expected_sha256() != expected) {
    fail("read " + opened->expected_sha256().value_or("nothing") + ", the file says " + *expected);
  }
  auto report = verify(*opened, {{".", "vol"}}, {});
  if (*expected == s.real_sha256) {
    if (!report || !report->checksum_verified) {
      fail("the right checksum does not verify");
    }
  } else if (report || !report.error().is(errc::checksum_mismatch)) {
    fail("a wrong checksum is not a mismatch");
  }
  return 0;
}
