// Issue 13, S3: the s3_bucket destination against a real S3 server (moto)
// with signature checking on. No Docker engine is needed.

#include "controller/archive/name_pattern.hpp"
#include "controller/destinations/s3_bucket.hpp"
#include "tests/e2e/moto_server.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <random>

namespace lifeboat::destinations {
namespace {

using archive::test::scratch_dir;
using testing::HasSubstr;
using testing::Not;
using testing::UnorderedElementsAre;

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path) << text << "\n";
}

class s3_destination_test : public testing::Test {
 protected:
  s3_destination_test() : server_(dir_.path()) {
    write_file(dir_ / "key_id", server_.key_id());
    write_file(dir_ / "secret", server_.secret());
  }

  // moto checks signatures against the query with %2F decoded.
  static s3_tuning moto_tuning() {
    s3_tuning t;
    t.encode_slash_in_query = false;
    return t;
  }

  api::s3_destination spec(const std::string& prefix = "db/") const {
    api::s3_destination s;
    s.bucket = test::moto_server::bucket;
    s.prefix = prefix;
    s.endpoint = server_.endpoint();
    s.path_style = true;
    s.access_key_id_file = (dir_ / "key_id").string();
    s.secret_access_key_file = (dir_ / "secret").string();
    return s;
  }

  static s3_tuning small_parts() {
    s3_tuning t = moto_tuning();
    t.part_size = 64 * 1024;
    t.page_size = 2;
    t.attempts = 2;
    t.backoff = std::chrono::milliseconds(10);
    return t;
  }

  static std::string random_bytes(std::size_t n, unsigned seed) {
    std::mt19937 gen(seed);
    std::string out(n, '\0');
    for (auto& c : out) {
      c = static_cast<char>(gen());
    }
    return out;
  }

  static published_archive put(destination& to, const std::string& name, const std::string& bytes) {
    auto up = to.begin(name);
    EXPECT_TRUE(up) << (up ? "" : up.error().message);
    // In uneven pieces, so parts are cut across writes.
    for (std::size_t at = 0; at < bytes.size(); at += 7777) {
      const auto piece = std::string_view(bytes).substr(at, 7777);
      auto w = (*up)->write(std::span<const char>(piece.data(), piece.size()));
      EXPECT_TRUE(w) << (w ? "" : w.error().message);
    }
    auto done = (*up)->commit();
    EXPECT_TRUE(done) << (done ? "" : done.error().message);
    return done ? *done : published_archive{};
  }

  static std::string read_all(const destination& from, const std::string& name) {
    auto in = from.open(name);
    EXPECT_TRUE(in) << (in ? "" : in.error().message);
    if (!in) {
      return {};
    }
    std::string out;
    std::vector<char> buf(5000);
    for (;;) {
      auto n = (*in)->read(buf);
      EXPECT_TRUE(n) << (n ? "" : n.error().message);
      if (!n || *n == 0) {
        return out;
      }
      out.append(buf.data(), *n);
    }
  }

  static std::vector<std::string> names(const destination& d) {
    auto files = d.list();
    EXPECT_TRUE(files) << (files ? "" : files.error().message);
    std::vector<std::string> out;
    for (const auto& f : files ? *files : std::vector<archive::archive_file>{}) {
      out.push_back(f.name);
    }
    return out;
  }

  scratch_dir dir_;
  test::moto_server server_;
};

TEST_F(s3_destination_test, check_passes_with_the_right_key) {
  s3_bucket bucket(spec(), moto_tuning());
  auto ok = bucket.check();
  EXPECT_TRUE(ok) << (ok ? "" : ok.error().message);
  EXPECT_EQ(bucket.describe(), "s3 backups/db/");
  EXPECT_EQ(bucket.spool_folder(), "");
}

TEST_F(s3_destination_test, an_archive_is_visible_only_once_committed_with_its_checksum) {
  s3_bucket bucket(spec(), small_parts());
  const std::string bytes = "an archive\n";
  auto up = bucket.begin("nightly-2024-05-01.tar.gz");
  ASSERT_TRUE(up) << up.error().message;
  ASSERT_TRUE((*up)->write(std::span<const char>(bytes.data(), bytes.size())));
  EXPECT_THAT(names(bucket), testing::IsEmpty());
  auto done = (*up)->commit();
  ASSERT_TRUE(done) << done.error().message;
  EXPECT_EQ(done->location, "s3://backups/db/nightly-2024-05-01.tar.gz");
  EXPECT_EQ(done->size, bytes.size());
  EXPECT_THAT(names(bucket), UnorderedElementsAre("nightly-2024-05-01.tar.gz",
                                                  "nightly-2024-05-01.tar.gz.sha256"));
  EXPECT_EQ(read_all(bucket, "nightly-2024-05-01.tar.gz"), bytes);
  EXPECT_EQ(read_all(bucket, "nightly-2024-05-01.tar.gz.sha256"),
            done->sha256 + "  nightly-2024-05-01.tar.gz\n");
  const auto sha256sum = archive::test::run("printf 'an archive\\n' | sha256sum").output;
  EXPECT_EQ(sha256sum.substr(0, 64), done->sha256);
  EXPECT_THAT(server_.pending_uploads(), testing::IsEmpty());
}

TEST_F(s3_destination_test, abandon_leaves_no_object_and_no_pending_upload) {
  s3_bucket bucket(spec(), small_parts());
  const auto bytes = random_bytes(200 * 1024, 1);  // three full parts sent before abandon
  auto up = bucket.begin("nightly-2024-05-01.tar.gz");
  ASSERT_TRUE(up);
  ASSERT_TRUE((*up)->write(std::span<const char>(bytes.data(), bytes.size())));
  EXPECT_THAT(server_.pending_uploads(), UnorderedElementsAre("db/nightly-2024-05-01.tar.gz"));
  (*up)->abandon();
  EXPECT_THAT(server_.pending_uploads(), testing::IsEmpty());
  EXPECT_THAT(names(bucket), testing::IsEmpty());
  // Dropping an upload without commit abandons it too.
  {
    auto dropped = bucket.begin("nightly-2024-05-02.tar.gz");
    ASSERT_TRUE(dropped);
    ASSERT_TRUE((*dropped)->write(std::span<const char>(bytes.data(), bytes.size())));
  }
  EXPECT_THAT(server_.pending_uploads(), testing::IsEmpty());
  EXPECT_THAT(names(bucket), testing::IsEmpty());
}

TEST_F(s3_destination_test, a_multipart_archive_round_trips_byte_exact) {
  s3_bucket bucket(spec(), small_parts());
  const auto bytes = random_bytes(5 * 64 * 1024 + 12345, 2);  // six parts, the last short
  const auto done = put(bucket, "nightly-2024-05-01.tar.zst", bytes);
  EXPECT_EQ(done.size, bytes.size());
  const auto back = read_all(bucket, "nightly-2024-05-01.tar.zst");
  EXPECT_EQ(back.size(), bytes.size());
  EXPECT_TRUE(back == bytes);
  scratch_dir out;
  std::ofstream(out / "a", std::ios::binary) << bytes;
  EXPECT_EQ(archive::test::run("sha256sum " + (out / "a").string()).output.substr(0, 64),
            done.sha256);
  // moto saw more than one part.
  EXPECT_THAT(server_.log_text(), HasSubstr("partNumber=6"));
}

// The files this process holds open under `folder` that have no name there.
std::vector<std::string> nameless_files_in(const std::filesystem::path& folder) {
  std::vector<std::string> out;
  for (const auto& fd : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    const auto target = std::filesystem::read_symlink(fd.path(), ec).string();
    if (!ec && target.starts_with(folder.string() + "/") && target.ends_with(" (deleted)")) {
      out.push_back(target);
    }
  }
  return out;
}

TEST_F(s3_destination_test, a_part_waits_in_a_nameless_file_in_the_part_folder_not_in_memory) {
  scratch_dir parts;
  s3_tuning tuning = small_parts();
  tuning.part_folder = parts.path().string();
  s3_bucket bucket(spec(), tuning);
  const auto bytes = random_bytes(3 * 64 * 1024 + 999, 5);
  {
    auto up = bucket.begin("nightly-2024-05-02.tar.zst");
    ASSERT_TRUE(up) << up.error().message;
    ASSERT_TRUE((*up)->write(std::span<const char>(bytes.data(), 100 * 1024)));
    // One part sent, the second gathering: in a file no one else can see.
    EXPECT_THAT(nameless_files_in(parts.path()), testing::SizeIs(1));
    EXPECT_TRUE(std::filesystem::is_empty(parts.path()));
    ASSERT_TRUE(
        (*up)->write(std::span<const char>(bytes.data() + 100 * 1024, bytes.size() - 100 * 1024)));
    const auto done = (*up)->commit();
    ASSERT_TRUE(done) << done.error().message;
    EXPECT_EQ(done->size, bytes.size());
  }
  EXPECT_THAT(nameless_files_in(parts.path()), testing::IsEmpty());
  EXPECT_TRUE(std::filesystem::is_empty(parts.path()));
  EXPECT_TRUE(read_all(bucket, "nightly-2024-05-02.tar.zst") == bytes);
}

TEST_F(s3_destination_test, parts_are_gathered_in_memory_where_the_part_folder_has_no_room) {
  s3_tuning tuning = small_parts();
  tuning.part_folder = (dir_ / "no such folder").string();
  s3_bucket bucket(spec(), tuning);
  const auto bytes = random_bytes(2 * 64 * 1024 + 77, 6);
  const auto done = put(bucket, "nightly-2024-05-03.tar.zst", bytes);
  EXPECT_EQ(done.size, bytes.size());
  EXPECT_TRUE(read_all(bucket, "nightly-2024-05-03.tar.zst") == bytes);
}

TEST_F(s3_destination_test, list_reads_every_page_and_only_names_under_the_prefix) {
  s3_bucket bucket(spec(), small_parts());  // two keys per page
  for (int i = 1; i <= 5; ++i) {
    put(bucket, "nightly-2024-05-0" + std::to_string(i) + ".tar", "x");
  }
  s3_bucket elsewhere(spec("other/"), small_parts());
  put(elsewhere, "nightly-2024-05-09.tar", "y");
  server_.signed_curl("-T /dev/null '" + server_.endpoint() + "/backups/db/deeper/z.tar'");
  const auto listed = names(bucket);
  EXPECT_EQ(listed.size(), 10U) << testing::PrintToString(listed);
  EXPECT_THAT(listed, testing::Contains("nightly-2024-05-05.tar.sha256"));
  EXPECT_THAT(listed, Not(testing::Contains("nightly-2024-05-09.tar")));
  EXPECT_THAT(server_.log_text(), HasSubstr("continuation-token="));
  auto files = bucket.list();
  ASSERT_TRUE(files);
  for (const auto& f : *files) {
    EXPECT_LT(std::chrono::system_clock::now() - f.mtime, std::chrono::hours(1)) << f.name;
  }
}

TEST_F(s3_destination_test, remove_deletes_the_archive_and_its_checksum) {
  s3_bucket bucket(spec(), small_parts());
  put(bucket, "nightly-2024-05-01.tar", "one");
  put(bucket, "nightly-2024-05-02.tar", "two");
  ASSERT_TRUE(bucket.remove("nightly-2024-05-01.tar"));
  EXPECT_THAT(names(bucket),
              UnorderedElementsAre("nightly-2024-05-02.tar", "nightly-2024-05-02.tar.sha256"));
  EXPECT_TRUE(bucket.remove("nightly-2024-05-01.tar")) << "gone already is fine";
  auto missing = bucket.open("nightly-2024-05-01.tar");
  ASSERT_TRUE(missing);
  std::vector<char> buf(10);
  auto n = (*missing)->read(buf);
  ASSERT_FALSE(n);
  EXPECT_THAT(n.error().message, HasSubstr("db/nightly-2024-05-01.tar does not exist"));
}

TEST_F(s3_destination_test, remove_leftovers_aborts_only_this_schedules_uploads_and_orphans) {
  s3_bucket bucket(spec(), small_parts());
  put(bucket, "nightly-2024-05-01T03-00-00.tar", "kept");
  // What killed runs leave: uploads never completed, a checksum alone.
  const auto base = server_.endpoint() + "/backups/db/";
  server_.signed_curl("-X POST '" + base + "nightly-2024-05-02T03-00-00.tar?uploads='");
  server_.signed_curl("-X POST '" + base + "nightly-extra-2024-05-02T03-00-00.tar?uploads='");
  server_.signed_curl("-T /dev/null '" + base + "nightly-2024-05-03T03-00-00.tar.sha256'");
  server_.signed_curl("-T /dev/null '" + base + "nightly-extra-2024-05-03T03-00-00.tar.sha256'");
  const archive::archive_name_pattern pattern("{schedule}-%Y-%m-%dT%H-%M-%S", "nightly", ".tar");
  auto removed = bucket.remove_leftovers(pattern);
  ASSERT_TRUE(removed) << removed.error().message;
  EXPECT_THAT(*removed, UnorderedElementsAre("nightly-2024-05-02T03-00-00.tar (incomplete upload)",
                                             "nightly-2024-05-03T03-00-00.tar.sha256"));
  EXPECT_THAT(server_.pending_uploads(),
              UnorderedElementsAre("db/nightly-extra-2024-05-02T03-00-00.tar"));
  EXPECT_THAT(names(bucket), UnorderedElementsAre("nightly-2024-05-01T03-00-00.tar",
                                                  "nightly-2024-05-01T03-00-00.tar.sha256",
                                                  "nightly-extra-2024-05-03T03-00-00.tar.sha256"));
}

TEST_F(s3_destination_test, a_wrong_secret_is_refused_and_never_shown) {
  const std::string wrong = "wrong-Secret-7f3a9c";
  write_file(dir_ / "wrong", wrong);
  auto s = spec();
  s.secret_access_key_file = (dir_ / "wrong").string();
  s3_bucket bucket(s, small_parts());
  auto checked = bucket.check();
  ASSERT_FALSE(checked);
  EXPECT_EQ(checked.error().code, archive::errc::refused);
  EXPECT_THAT(checked.error().message,
              HasSubstr("s3 backups/db/: access denied (check accessKeyIdFile and "
                        "secretAccessKeyFile"));
  EXPECT_THAT(checked.error().message, HasSubstr("SignatureDoesNotMatch"));
  EXPECT_THAT(checked.error().message, Not(HasSubstr(wrong)));
  EXPECT_THAT(checked.error().message, Not(HasSubstr(server_.secret())));

  // An upload fails the same way and leaves nothing.
  const auto bytes = random_bytes(100 * 1024, 3);
  auto up = bucket.begin("nightly-2024-05-01.tar");
  ASSERT_TRUE(up);
  auto w = (*up)->write(std::span<const char>(bytes.data(), bytes.size()));
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code, archive::errc::refused);
  EXPECT_THAT(w.error().message, Not(HasSubstr(wrong)));
  EXPECT_FALSE((*up)->commit());
  EXPECT_THAT(server_.pending_uploads(), testing::IsEmpty());
  s3_bucket right(spec(), small_parts());
  EXPECT_THAT(names(right), testing::IsEmpty());
}

TEST_F(s3_destination_test, a_missing_secret_file_is_refused_naming_the_field) {
  auto s = spec();
  s.secret_access_key_file = (dir_ / "absent").string();
  s3_bucket bucket(s, moto_tuning());
  auto checked = bucket.check();
  ASSERT_FALSE(checked);
  EXPECT_EQ(checked.error().code, archive::errc::refused);
  EXPECT_THAT(
      checked.error().message,
      HasSubstr("s3 backups/db/: cannot read secretAccessKeyFile " + (dir_ / "absent").string()));
}

TEST_F(s3_destination_test, an_unreachable_endpoint_is_refused) {
  auto s = spec();
  s.endpoint = "http://127.0.0.1:1";
  s3_bucket bucket(s, small_parts());
  auto checked = bucket.check();
  ASSERT_FALSE(checked);
  EXPECT_EQ(checked.error().code, archive::errc::refused);
  EXPECT_THAT(checked.error().message, HasSubstr("s3 backups/db/: listing the bucket: "));
}

TEST_F(s3_destination_test, a_missing_bucket_is_refused) {
  auto s = spec();
  s.bucket = "no-such-bucket";
  s3_bucket bucket(s, small_parts());
  auto checked = bucket.check();
  ASSERT_FALSE(checked);
  EXPECT_EQ(checked.error().code, archive::errc::refused);
  EXPECT_THAT(checked.error().message, HasSubstr("NoSuchBucket"));
}

}  // namespace
}  // namespace lifeboat::destinations
