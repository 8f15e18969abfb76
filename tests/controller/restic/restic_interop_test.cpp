// Interop with Debian's restic (0.14) both ways: repositories `restic init`
// makes open with lifeboat, repositories lifeboat makes pass `restic check`,
// and lifeboat's chunker cuts a file where restic does. Runs restic as a child
// process on folders in a private temporary directory (no network, no cache).
#include "controller/restic/chunker.hpp"
#include "controller/restic/primitives.hpp"
#include "controller/restic/repository.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <set>
#include <sstream>
#include <string>

#include <sys/wait.h>

namespace lifeboat::restic {
namespace {

namespace fs = std::filesystem;

constexpr const char* password = "correct horse battery staple";

std::string quote(const fs::path& p) { return "'" + p.string() + "'"; }

struct output {
  int status = -1;
  std::string text;  // stdout, then stderr
};

/// Runs restic with the test password, no cache and no lock wait, on `repo`.
output restic(const fs::path& repo, const std::string& args) {
  const std::string cmd = "RESTIC_PASSWORD='" + std::string(password) +
                          "' restic --no-cache -q -r " + quote(repo) + " " + args + " 2>&1";
  output out;
  FILE* pipe = popen(cmd.c_str(), "r");  // NOLINT(cert-env33-c): test-only, fixed commands
  if (pipe == nullptr) {
    return out;
  }
  std::array<char, 4096> buf{};
  for (std::size_t n = 0; (n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0;) {
    out.text.append(buf.data(), n);
  }
  const int status = pclose(pipe);
  out.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) {
      out.push_back(line);
    }
  }
  return out;
}

class ResticInterop : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::system("command -v restic >/dev/null 2>&1") != 0) {  // NOLINT(cert-env33-c)
      GTEST_SKIP() << "restic is not installed (hack/setup.sh installs it)";
    }
    std::string pattern = (fs::temp_directory_path() / "lifeboat-restic-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    // NOLINTNEXTLINE(concurrency-mt-unsafe): read once per test, no threads
    if (std::getenv("LIFEBOAT_KEEP_TEST_DIR") != nullptr) {
      std::cerr << "kept " << dir_ << "\n";
      return;
    }
    if (!dir_.empty()) {
      std::error_code ec;
      // restic and lifeboat make repository files read-only; remove_all copes as owner.
      fs::remove_all(dir_, ec);
    }
  }

  fs::path dir_;
};

// scrypt's cheapest parameters keep the test fast; restic reads them from the key file.
const scrypt_params cheap{1024, 8, 1};

TEST_F(ResticInterop, LifeboatOpensARepositoryResticInitialised) {
  const fs::path repo = dir_ / "repo";
  const output init = restic(repo, "init --repository-version 2");
  ASSERT_EQ(init.status, 0) << init.text;

  auto opened = repository::open(repo, password);
  ASSERT_TRUE(opened) << opened.error().describe();
  EXPECT_EQ(opened->config().version, 2U);
  EXPECT_EQ(opened->config().id.size(), 64U);
  const output config = restic(repo, "cat config");
  ASSERT_EQ(config.status, 0) << config.text;
  EXPECT_THAT(config.text, ::testing::HasSubstr(opened->config().id));

  auto wrong = repository::open(repo, "not the password");
  ASSERT_FALSE(wrong);
  EXPECT_TRUE(wrong.error().is(errc::wrong_password)) << wrong.error().describe();
}

TEST_F(ResticInterop, ResticAcceptsARepositoryLifeboatInitialised) {
  const fs::path repo = dir_ / "repo";
  auto made = repository::init(repo, password, cheap);
  ASSERT_TRUE(made) << made.error().describe();

  const output config = restic(repo, "cat config");
  ASSERT_EQ(config.status, 0) << config.text;
  EXPECT_THAT(config.text, ::testing::HasSubstr("\"version\": 2"));
  EXPECT_THAT(config.text, ::testing::HasSubstr(made->config().id));
  const output check = restic(repo, "check");
  EXPECT_EQ(check.status, 0) << check.text;
  const output wrong = restic(repo, "cat config --password-file /dev/null");
  EXPECT_NE(wrong.status, 0);
  // restic can write into it too: a backup of a small folder.
  fs::create_directories(dir_ / "src");
  std::ofstream(dir_ / "src" / "a.txt") << "hello";
  const output backup = restic(repo, "backup " + quote(dir_ / "src"));
  EXPECT_EQ(backup.status, 0) << backup.text;
}

TEST_F(ResticInterop, ChunkBoundariesAndIdsEqualRestics) {
  const fs::path repo = dir_ / "repo";
  auto made = repository::init(repo, password, cheap);
  ASSERT_TRUE(made) << made.error().describe();
  // 12 MiB of random bytes: about eight chunks, at least one cut by content.
  const fs::path file = dir_ / "random.bin";
  std::string data(std::size_t{12} * 1024 * 1024, '\0');
  std::mt19937_64 gen(17);
  for (std::size_t i = 0; i < data.size(); i += 8) {
    const std::uint64_t v = gen();
    std::memcpy(&data[i], &v, 8);
  }
  std::ofstream(file, std::ios::binary) << data;

  std::set<std::string> ours;
  std::size_t offset = 0;
  chunker c(made->config().chunker_polynomial,
            [&](std::span<unsigned char> out) -> result<std::size_t> {
              const std::size_t n = std::min(out.size(), data.size() - offset);
              std::memcpy(out.data(), data.data() + offset, n);
              offset += n;
              return n;
            });
  std::size_t chunks = 0;
  for (;;) {
    auto next = c.next();
    ASSERT_TRUE(next) << next.error().describe();
    if (!*next) {
      break;
    }
    ++chunks;
    ours.insert(detail::hex(detail::sha256((*next)->data)));
  }
  ASSERT_GE(chunks, 3U);

  const output backup = restic(repo, "backup " + quote(file));
  ASSERT_EQ(backup.status, 0) << backup.text;
  const output list = restic(repo, "list blobs");
  ASSERT_EQ(list.status, 0) << list.text;
  std::set<std::string> theirs;
  for (const std::string& line : lines(list.text)) {
    if (line.starts_with("data ")) {
      theirs.insert(line.substr(5));
    }
  }
  EXPECT_EQ(ours, theirs);
  // And each blob restic stored holds exactly the bytes of our chunk with that ID.
  const std::string first = *ours.begin();
  const output blob = restic(repo, "cat blob " + first);
  ASSERT_EQ(blob.status, 0);
  EXPECT_EQ(detail::hex(detail::sha256(detail::as_bytes(blob.text))), first);
}

}  // namespace
}  // namespace lifeboat::restic
