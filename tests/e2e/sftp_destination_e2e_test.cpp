// Issue 13, SFTP: the sftp_folder destination against a real server
// (Debian's OpenSSH sshd on a free loopback port, keys made by ssh-keygen),
// host keys checked against known_hosts. No Docker engine.

#include "controller/archive/name_pattern.hpp"
#include "controller/destinations/sftp_folder.hpp"
#include "tests/controller/archive/test_support.hpp"
#include "tests/e2e/sshd_server.hpp"

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
using testing::IsEmpty;
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

class sftp_destination_test : public testing::Test {
 protected:
  sftp_destination_test() : server_(dir_.path()) { fs::create_directories(folder()); }

  api::sftp_destination spec() const {
    api::sftp_destination s;
    s.host = "127.0.0.1";
    s.port = server_.port();
    s.user = server_.user();
    s.path = folder().string();
    s.identity_file = server_.user_key().string();
    s.known_hosts_file = server_.known_hosts().string();
    return s;
  }

  std::string prefix() const {
    return "sftp " + server_.user() + "@127.0.0.1:" + std::to_string(server_.port());
  }

  fs::path folder() const { return dir_.path() / "served" / "backups"; }

  static std::string random_bytes(std::size_t n, unsigned seed) {
    std::mt19937 gen(seed);
    std::string out(n, '\0');
    for (auto& c : out) {
      c = static_cast<char>(gen());
    }
    return out;
  }

  static void write_in_pieces(upload& up, const std::string& bytes) {
    for (std::size_t at = 0; at < bytes.size(); at += 77777) {
      const auto piece = std::string_view(bytes).substr(at, 77777);
      auto w = up.write(std::span<const char>(piece.data(), piece.size()));
      ASSERT_TRUE(w) << w.error().message;
    }
  }

  static std::string read_all(const destination& from, const std::string& name) {
    auto in = from.open(name);
    EXPECT_TRUE(in) << (in ? "" : in.error().message);
    std::string out;
    std::vector<char> buf(50000);
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
  test::sshd_server server_;
};

TEST_F(sftp_destination_test, an_archive_appears_under_its_name_only_once_committed) {
  sftp_folder sftp(spec());
  auto checked = sftp.check();
  ASSERT_TRUE(checked) << checked.error().message << "\n" << server_.log_text();
  EXPECT_EQ(sftp.describe(), prefix() + folder().string());
  EXPECT_EQ(sftp.point_latest("x"), "");
  EXPECT_EQ(sftp.spool_folder(), "");
  const auto bytes = random_bytes(6 << 20, 1);
  auto up = sftp.begin("nightly-2024-05-01.tar.gz");
  ASSERT_TRUE(up) << up.error().message;
  write_in_pieces(**up, bytes);
  // Written so far: only under the .partial name, on disk and in the listing.
  EXPECT_THAT(files_in(folder()), UnorderedElementsAre("nightly-2024-05-01.tar.gz.partial"));
  auto before = sftp.list();
  ASSERT_TRUE(before) << before.error().message;
  for (const auto& f : *before) {
    EXPECT_EQ(f.name, "nightly-2024-05-01.tar.gz.partial");
  }
  auto done = (*up)->commit();
  ASSERT_TRUE(done) << done.error().message;
  EXPECT_EQ(done->size, bytes.size());
  EXPECT_EQ((*up)->bytes_written(), bytes.size());
  EXPECT_EQ(done->location, "sftp://" + server_.user() +
                                "@127.0.0.1:" + std::to_string(server_.port()) + folder().string() +
                                "/nightly-2024-05-01.tar.gz");
  EXPECT_THAT(files_in(folder()), UnorderedElementsAre("nightly-2024-05-01.tar.gz",
                                                       "nightly-2024-05-01.tar.gz.sha256"));
  EXPECT_TRUE(read_file(folder() / "nightly-2024-05-01.tar.gz") == bytes);
  EXPECT_EQ(read_file(folder() / "nightly-2024-05-01.tar.gz.sha256"),
            done->sha256 + "  nightly-2024-05-01.tar.gz\n");
  for (const auto* name : {"nightly-2024-05-01.tar.gz", "nightly-2024-05-01.tar.gz.sha256"}) {
    EXPECT_EQ(fs::status(folder() / name).permissions(),
              fs::perms::owner_read | fs::perms::owner_write)
        << name << ": the user's alone, as local archives are";
  }
  EXPECT_EQ(run("cd " + shell_quote(folder().string()) +
                " && sha256sum -c nightly-2024-05-01.tar.gz.sha256")
                .status,
            0);
  EXPECT_TRUE(read_all(sftp, "nightly-2024-05-01.tar.gz") == bytes);
  EXPECT_EQ(read_all(sftp, "nightly-2024-05-01.tar.gz.sha256"),
            done->sha256 + "  nightly-2024-05-01.tar.gz\n");
  auto listed = sftp.list();
  ASSERT_TRUE(listed) << listed.error().message;
  ASSERT_EQ(listed->size(), 2U);
  for (const auto& f : *listed) {
    // To the minute, from the server's "ls -l" line.
    EXPECT_LT(std::chrono::system_clock::now() - f.mtime, std::chrono::minutes(10)) << f.name;
    EXPECT_LT(f.mtime - std::chrono::system_clock::now(), std::chrono::minutes(1)) << f.name;
    if (f.name == "nightly-2024-05-01.tar.gz") {
      EXPECT_EQ(f.size, bytes.size());
    } else {
      EXPECT_EQ(f.name, "nightly-2024-05-01.tar.gz.sha256");
      EXPECT_EQ(f.size, 64U + 2U + 25U + 1U);
    }
  }
}

TEST_F(sftp_destination_test, listing_times_are_read_from_both_forms_of_ls_lines) {
  // "Mon dd HH:MM" within half a year (the year inferred), "Mon dd  yyyy"
  // before; the server runs in UTC.
  using namespace std::chrono;
  const auto recent = floor<minutes>(system_clock::now() - days(40));
  const auto old = sys_days(year(2023) / March / 4) + hours(5) + minutes(6);
  for (const auto& [name, when] : {std::pair{"recent", recent}, std::pair{"old", old}}) {
    std::ofstream(folder() / name) << "x";
    ASSERT_EQ(run("touch -d @" + std::to_string(system_clock::to_time_t(when)) + " " +
                  shell_quote((folder() / name).string()))
                  .status,
              0);
  }
  sftp_folder sftp(spec());
  auto listed = sftp.list();
  ASSERT_TRUE(listed) << listed.error().message;
  ASSERT_EQ(listed->size(), 2U);
  for (const auto& f : *listed) {
    if (f.name == "recent") {
      EXPECT_EQ(f.mtime, recent);
    } else {
      EXPECT_EQ(f.mtime, sys_days(year(2023) / March / 4)) << "the day only";
    }
  }
}

TEST_F(sftp_destination_test, an_archive_under_the_same_name_is_replaced) {
  // OpenSSH's server never renames over an existing name (SFTP version 3).
  sftp_folder sftp(spec());
  for (const unsigned seed : {4U, 5U}) {
    const auto bytes = random_bytes(100000 + seed, seed);
    auto up = sftp.begin("nightly-2024-05-01.tar");
    ASSERT_TRUE(up) << up.error().message;
    write_in_pieces(**up, bytes);
    auto done = (*up)->commit();
    ASSERT_TRUE(done) << done.error().message;
    EXPECT_TRUE(read_file(folder() / "nightly-2024-05-01.tar") == bytes);
    EXPECT_EQ(read_file(folder() / "nightly-2024-05-01.tar.sha256"),
              done->sha256 + "  nightly-2024-05-01.tar\n");
  }
  EXPECT_THAT(files_in(folder()),
              UnorderedElementsAre("nightly-2024-05-01.tar", "nightly-2024-05-01.tar.sha256"));
}

TEST_F(sftp_destination_test, abandon_leaves_nothing) {
  sftp_folder sftp(spec());
  const auto bytes = random_bytes(1 << 20, 2);
  {
    auto up = sftp.begin("nightly-2024-05-01.tar.gz");
    ASSERT_TRUE(up);
    write_in_pieces(**up, bytes);
    (*up)->abandon();
    EXPECT_THAT(files_in(folder()), IsEmpty());
    EXPECT_FALSE((*up)->commit());
  }
  {
    auto up = sftp.begin("nightly-2024-05-02.tar.gz");
    ASSERT_TRUE(up);
    write_in_pieces(**up, bytes);
  }  // destroyed without commit
  EXPECT_THAT(files_in(folder()), IsEmpty());
}

TEST_F(sftp_destination_test, remove_and_leftovers_touch_only_this_schedules_names) {
  sftp_folder sftp(spec());
  for (const auto* name :
       {"nightly-2024-05-01T03-00-00.tar", "nightly-2024-05-01T03-00-00.tar.sha256",
        "nightly-2024-05-02T03-00-00.tar.partial", "nightly-2024-05-03T03-00-00.tar.sha256",
        "nightly-extra-2024-05-02T03-00-00.tar.partial",
        "nightly-extra-2024-05-03T03-00-00.tar.sha256", "notes.txt"}) {
    std::ofstream(folder() / name) << "x";
  }
  fs::create_directories(folder() / "sub");
  fs::create_symlink("notes.txt", folder() / "link");
  auto listed = sftp.list();
  ASSERT_TRUE(listed) << listed.error().message;
  EXPECT_EQ(listed->size(), 7U) << "files only: no folder, no link";
  const archive::archive_name_pattern pattern("{schedule}-%Y-%m-%dT%H-%M-%S", "nightly", ".tar");
  auto removed = sftp.remove_leftovers(pattern);
  ASSERT_TRUE(removed) << removed.error().message;
  EXPECT_THAT(*removed, UnorderedElementsAre("nightly-2024-05-02T03-00-00.tar.partial",
                                             "nightly-2024-05-03T03-00-00.tar.sha256"));
  ASSERT_TRUE(sftp.remove("nightly-2024-05-01T03-00-00.tar"));
  auto again = sftp.remove("nightly-2024-05-01T03-00-00.tar");
  EXPECT_TRUE(again) << "gone already is fine: " << again.error().message;
  EXPECT_FALSE(sftp.remove("../notes.txt"));
  EXPECT_THAT(files_in(folder()),
              UnorderedElementsAre("nightly-extra-2024-05-02T03-00-00.tar.partial",
                                   "nightly-extra-2024-05-03T03-00-00.tar.sha256", "notes.txt",
                                   "sub", "link"));
}

TEST_F(sftp_destination_test, a_wrong_host_key_is_refused_naming_the_host) {
  for (const auto& known_hosts : {server_.wrong_known_hosts(), server_.other_host_known_hosts()}) {
    auto s = spec();
    s.known_hosts_file = known_hosts.string();
    sftp_folder sftp(s);
    auto checked = sftp.check();
    ASSERT_FALSE(checked) << known_hosts;
    EXPECT_EQ(checked.error().code, archive::errc::refused);
    EXPECT_EQ(checked.error().message,
              prefix() + folder().string() +
                  ": host key not accepted (check knownHostsFile) while listing the folder");
    auto up = sftp.begin("nightly-2024-05-01.tar");
    ASSERT_TRUE(up);
    const auto bytes = random_bytes(1 << 20, 3);
    bool failed = false;
    for (std::size_t at = 0; at < bytes.size() && !failed; at += 65536) {
      failed = !(*up)->write(std::span<const char>(bytes.data() + at, 65536));
    }
    auto done = (*up)->commit();
    ASSERT_FALSE(done);
    EXPECT_EQ(done.error().code, archive::errc::refused);
    EXPECT_THAT(done.error().message, HasSubstr("host key not accepted"));
    EXPECT_THAT(files_in(folder()), IsEmpty());
    EXPECT_THAT(server_.log_text(), Not(HasSubstr("Accepted publickey")))
        << "no login to a server whose key is not known";
  }
  // No known_hosts file is no check at all elsewhere; here it is a refusal.
  auto s = spec();
  s.known_hosts_file = (dir_.path() / "missing_known_hosts").string();
  sftp_folder sftp(s);
  auto checked = sftp.check();
  ASSERT_FALSE(checked);
  EXPECT_EQ(checked.error().code, archive::errc::refused);
  EXPECT_EQ(checked.error().message, prefix() + folder().string() +
                                         ": cannot read knownHostsFile " + s.known_hosts_file +
                                         ": No such file or directory");
}

TEST_F(sftp_destination_test, a_refused_login_says_which_file_to_check_and_never_shows_it) {
  {
    auto s = spec();
    s.identity_file = server_.other_key().string();
    sftp_folder sftp(s);
    auto checked = sftp.check();
    ASSERT_FALSE(checked);
    EXPECT_EQ(checked.error().code, archive::errc::refused);
    EXPECT_THAT(checked.error().message, HasSubstr("login denied (check user and identityFile)"));
    EXPECT_THAT(checked.error().message, Not(HasSubstr("PRIVATE KEY")));
  }
  {
    // The server takes no passwords (that would need a real account's
    // password): the password is refused like a wrong one, and never shown.
    std::ofstream(dir_.path() / "password") << "pw-Secret-41c9\n";
    auto s = spec();
    s.identity_file.reset();
    s.password_file = (dir_.path() / "password").string();
    sftp_folder sftp(s);
    auto checked = sftp.check();
    ASSERT_FALSE(checked);
    EXPECT_EQ(checked.error().code, archive::errc::refused);
    EXPECT_THAT(checked.error().message, HasSubstr("login denied (check user and passwordFile)"));
    EXPECT_THAT(checked.error().message, Not(HasSubstr("pw-Secret-41c9")));
  }
  {
    auto s = spec();
    s.identity_file = (dir_.path() / "missing_key").string();
    sftp_folder sftp(s);
    auto checked = sftp.check();
    ASSERT_FALSE(checked);
    EXPECT_EQ(checked.error().code, archive::errc::refused);
    EXPECT_EQ(checked.error().message,
              prefix() + folder().string() + ": cannot read identityFile " +
                  (dir_.path() / "missing_key").string() + ": No such file or directory");
  }
  EXPECT_THAT(files_in(folder()), IsEmpty());
}

TEST_F(sftp_destination_test, a_server_that_is_not_there_is_refused_after_retries) {
  auto s = spec();
  s.port = test::sshd_server::free_port();
  sftp_folder sftp(s);
  const auto started = std::chrono::steady_clock::now();
  auto checked = sftp.check();
  ASSERT_FALSE(checked);
  EXPECT_EQ(checked.error().code, archive::errc::refused);
  EXPECT_THAT(
      checked.error().message,
      testing::StartsWith("sftp " + server_.user() + "@127.0.0.1:" + std::to_string(s.port) +
                          folder().string() + ": listing the folder: "));
  // Three tries, 0.5 s then 1 s apart: a refused connection is worth another.
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(1500));
}

TEST_F(sftp_destination_test, a_missing_folder_or_archive_is_reported) {
  auto s = spec();
  s.path += "/missing";
  sftp_folder missing(s);
  auto checked = missing.check();
  ASSERT_FALSE(checked);
  EXPECT_EQ(checked.error().code, archive::errc::refused);
  EXPECT_THAT(checked.error().message, HasSubstr("the folder does not exist"));

  sftp_folder sftp(spec());
  auto in = sftp.open("nightly-2024-05-01.tar");
  ASSERT_TRUE(in);
  std::vector<char> buf(100);
  auto n = (*in)->read(buf);
  ASSERT_FALSE(n);
  EXPECT_THAT(n.error().message, HasSubstr("nightly-2024-05-01.tar does not exist"));
}

}  // namespace
}  // namespace lifeboat::destinations
