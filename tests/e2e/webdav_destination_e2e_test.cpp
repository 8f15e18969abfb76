// Issue 13, WebDAV: the webdav_folder destination against a real server
// (Debian's rclone, `rclone serve webdav`) with basic auth. No Docker engine.

#include "controller/archive/name_pattern.hpp"
#include "controller/destinations/webdav_folder.hpp"
#include "tests/controller/archive/test_support.hpp"
#include "tests/e2e/webdav_server.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <random>
#include <sstream>

namespace lifeboat::destinations {
namespace {

namespace fs = std::filesystem;
using archive::test::run;
using archive::test::scratch_dir;
using archive::test::shell_quote;
using testing::HasSubstr;
using testing::Not;
using testing::UnorderedElementsAre;

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> files_in(const fs::path& folder) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(folder)) {
    out.push_back(e.path().filename().string());
  }
  return out;
}

class webdav_destination_test : public testing::Test {
 protected:
  webdav_destination_test() : server_(dir_.path(), "pw-Secret-41c9") {
    std::ofstream(dir_ / "password") << server_.password() << "\n";
  }

  api::webdav_destination spec(const std::string& password_file = "password") const {
    api::webdav_destination s;
    s.url = server_.url() + "backups/";
    s.username = test::webdav_server::user;
    s.password_file = (dir_ / password_file).string();
    return s;
  }

  fs::path folder() const { return server_.served() / "backups"; }

  static std::string random_bytes(std::size_t n, unsigned seed) {
    std::mt19937 gen(seed);
    std::string out(n, '\0');
    for (auto& c : out) {
      c = static_cast<char>(gen());
    }
    return out;
  }

  static void write_in_pieces(upload& up, const std::string& bytes) {
    for (std::size_t at = 0; at < bytes.size(); at += 7777) {
      const auto piece = std::string_view(bytes).substr(at, 7777);
      auto w = up.write(std::span<const char>(piece.data(), piece.size()));
      ASSERT_TRUE(w) << w.error().message;
    }
  }

  static std::string read_all(const destination& from, const std::string& name) {
    auto in = from.open(name);
    EXPECT_TRUE(in) << (in ? "" : in.error().message);
    std::string out;
    std::vector<char> buf(5000);
    while (in) {
      auto n = (*in)->read(buf);
      EXPECT_TRUE(n) << (n ? "" : n.error().message);
      if (!n || *n == 0) {
        break;
      }
      out.append(buf.data(), *n);
    }
    return out;
  }

  scratch_dir dir_;
  test::webdav_server server_;
};

TEST_F(webdav_destination_test, an_archive_appears_under_its_name_only_once_committed) {
  webdav_folder dav(spec());
  ASSERT_TRUE(dav.check());
  EXPECT_EQ(dav.describe(), "webdav " + spec().url);
  const auto bytes = random_bytes(3 << 20, 1);
  auto up = dav.begin("nightly-2024-05-01.tar.gz");
  ASSERT_TRUE(up) << up.error().message;
  write_in_pieces(**up, bytes);
  EXPECT_FALSE(fs::exists(folder() / "nightly-2024-05-01.tar.gz"));
  auto done = (*up)->commit();
  ASSERT_TRUE(done) << done.error().message;
  EXPECT_EQ(done->size, bytes.size());
  EXPECT_EQ(done->location, spec().url + "nightly-2024-05-01.tar.gz");
  EXPECT_THAT(files_in(folder()), UnorderedElementsAre("nightly-2024-05-01.tar.gz",
                                                       "nightly-2024-05-01.tar.gz.sha256"));
  EXPECT_TRUE(read_file(folder() / "nightly-2024-05-01.tar.gz") == bytes);
  EXPECT_EQ(read_file(folder() / "nightly-2024-05-01.tar.gz.sha256"),
            done->sha256 + "  nightly-2024-05-01.tar.gz\n");
  EXPECT_EQ(run("cd " + shell_quote(folder().string()) +
                " && sha256sum -c nightly-2024-05-01.tar.gz.sha256")
                .status,
            0);
  EXPECT_TRUE(read_all(dav, "nightly-2024-05-01.tar.gz") == bytes);
  auto listed = dav.list();
  ASSERT_TRUE(listed) << listed.error().message;
  ASSERT_EQ(listed->size(), 2U);
  for (const auto& f : *listed) {
    EXPECT_LT(std::chrono::system_clock::now() - f.mtime, std::chrono::hours(1)) << f.name;
    if (f.name == "nightly-2024-05-01.tar.gz") {
      EXPECT_EQ(f.size, bytes.size());
    }
  }
}

TEST_F(webdav_destination_test, abandon_leaves_nothing) {
  webdav_folder dav(spec());
  const auto bytes = random_bytes(1 << 20, 2);
  auto up = dav.begin("nightly-2024-05-01.tar.gz");
  ASSERT_TRUE(up);
  write_in_pieces(**up, bytes);
  (*up)->abandon();
  // Never under the final name. The server may still be handling the cut
  // PUT when abandon()'s DELETE arrives (seen once under load: the DELETE
  // found nothing, then the handler wrote the .partial); what it leaves is a
  // leftover of this schedule, which the next run removes.
  EXPECT_FALSE(fs::exists(folder() / "nightly-2024-05-01.tar.gz"));
  const archive::archive_name_pattern pattern("{schedule}-%Y-%m-%d", "nightly", ".tar.gz");
  ASSERT_TRUE(dav.remove_leftovers(pattern));
  EXPECT_THAT(files_in(folder()), testing::IsEmpty());
}

TEST_F(webdav_destination_test, remove_and_leftovers_touch_only_this_schedules_names) {
  webdav_folder dav(spec());
  for (const auto* name :
       {"nightly-2024-05-01T03-00-00.tar", "nightly-2024-05-01T03-00-00.tar.sha256",
        "nightly-2024-05-02T03-00-00.tar.partial", "nightly-2024-05-03T03-00-00.tar.sha256",
        "nightly-extra-2024-05-02T03-00-00.tar.partial",
        "nightly-extra-2024-05-03T03-00-00.tar.sha256", "notes.txt"}) {
    std::ofstream(folder() / name) << "x";
  }
  fs::create_directories(folder() / "sub");
  const archive::archive_name_pattern pattern("{schedule}-%Y-%m-%dT%H-%M-%S", "nightly", ".tar");
  auto removed = dav.remove_leftovers(pattern);
  ASSERT_TRUE(removed) << removed.error().message;
  EXPECT_THAT(*removed, UnorderedElementsAre("nightly-2024-05-02T03-00-00.tar.partial",
                                             "nightly-2024-05-03T03-00-00.tar.sha256"));
  ASSERT_TRUE(dav.remove("nightly-2024-05-01T03-00-00.tar"));
  EXPECT_TRUE(dav.remove("nightly-2024-05-01T03-00-00.tar")) << "gone already is fine";
  EXPECT_THAT(
      files_in(folder()),
      UnorderedElementsAre("nightly-extra-2024-05-02T03-00-00.tar.partial",
                           "nightly-extra-2024-05-03T03-00-00.tar.sha256", "notes.txt", "sub"));
}

TEST_F(webdav_destination_test, a_wrong_password_is_refused_and_never_shown) {
  std::ofstream(dir_ / "wrong") << "wrong-Pass-88\n";
  webdav_folder dav(spec("wrong"));
  auto checked = dav.check();
  ASSERT_FALSE(checked);
  EXPECT_EQ(checked.error().code, archive::errc::refused);
  EXPECT_THAT(checked.error().message,
              HasSubstr("access denied (check username and passwordFile)"));
  EXPECT_THAT(checked.error().message, Not(HasSubstr("wrong-Pass-88")));
  EXPECT_THAT(checked.error().message, Not(HasSubstr(server_.password())));
  auto up = dav.begin("nightly-2024-05-01.tar");
  ASSERT_TRUE(up);
  const auto bytes = random_bytes(1 << 20, 3);
  bool failed = false;
  for (std::size_t at = 0; at < bytes.size() && !failed; at += 65536) {
    failed = !(*up)->write(std::span<const char>(bytes.data() + at, 65536));
  }
  auto done = (*up)->commit();
  ASSERT_FALSE(done);
  EXPECT_EQ(done.error().code, archive::errc::refused);
  EXPECT_THAT(files_in(folder()), testing::IsEmpty());
}

TEST_F(webdav_destination_test, a_missing_folder_is_refused) {
  auto s = spec();
  s.url += "missing/";
  webdav_folder dav(s);
  auto checked = dav.check();
  ASSERT_FALSE(checked);
  EXPECT_EQ(checked.error().code, archive::errc::refused);
  EXPECT_THAT(checked.error().message, HasSubstr("the folder does not exist"));
}

}  // namespace
}  // namespace lifeboat::destinations
