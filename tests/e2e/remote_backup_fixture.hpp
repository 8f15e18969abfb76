#pragma once

// Issue 13: the fixture of backup runs whose destinations include an S3
// bucket (a real moto server with signature checking on), against the test
// engine. Shared by remote_backup_e2e_test.cpp and the runs that must run
// alone (remote_backup_s3_e2e_test.cpp).

#include "api/decode.hpp"
#include "controller/backup/archive_steps.hpp"
#include "controller/backup/engine_runner.hpp"
#include "controller/quiesce/journal_store.hpp"
#include "controller/restore/engine_runner.hpp"
#include "tests/e2e/engine_fixture.hpp"
#include "tests/e2e/moto_server.hpp"

#include <gmock/gmock.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <regex>
#include <vector>

namespace lifeboat::e2e {

/// Writes `bytes` of data no compressor can shrink into `file`, a buffer at
/// a time (xorshift64*, seeded with `seed`): as fast as the disk takes it,
/// with the test's memory bounded by the buffer.
inline void write_incompressible_file(const std::filesystem::path& file, std::uint64_t bytes,
                                      std::uint64_t seed) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  std::vector<std::uint64_t> buffer(std::size_t{1} << 17);  // 1 MiB
  std::uint64_t state = seed | 1;
  while (bytes > 0 && out) {
    for (auto& word : buffer) {
      state ^= state >> 12;
      state ^= state << 25;
      state ^= state >> 27;
      word = state * 0x2545F4914F6CDD1DULL;
    }
    const auto n = std::min<std::uint64_t>(bytes, buffer.size() * sizeof(std::uint64_t));
    out.write(reinterpret_cast<const char*>(buffer.data()), static_cast<std::streamsize>(n));
    bytes -= n;
  }
  EXPECT_TRUE(out.flush()) << "writing " << file;
}

class remote_backup_e2e : public engine_test {
 protected:
  void SetUp() override {
    engine_test::SetUp();
    journals_ = quiesce::make_config_journal_store(engine());
    dir_ = std::filesystem::temp_directory_path() / unique("remote");
    std::filesystem::create_directories(dir_ / "device" / "sub");
    std::filesystem::create_directories(dir_ / "archives");
    on_teardown([dir = dir_] { std::filesystem::remove_all(dir); });
    std::ofstream(dir_ / "device" / "db.dat") << std::string(3 << 20, 'x') << "end\n";
    std::ofstream(dir_ / "device" / "sub" / "more.txt") << "and this\n";
    volume_ = unique("data");
    ASSERT_EQ(run_command("docker volume create -d local -o type=none -o o=bind -o device=" +
                          (dir_ / "device").string() + " " + volume_)
                  .status,
              0);
    // Removal waits until the services and containers using it are gone.
    on_teardown([this] {
      eventually([&] {
        auto r = engine().remove_volume(volume_, true);
        return r || r.error().is(engine::errc::not_found);
      });
    });
    moto_ = std::make_unique<test::moto_server>(dir_);
    std::ofstream(dir_ / "key_id") << moto_->key_id() << "\n";
    std::ofstream(dir_ / "secret") << moto_->secret() << "\n";
    std::ofstream(dir_ / "wrong") << "not-the-secret\n";
    schedule_name_ = unique("s3");
  }

  std::string s3_yaml(const std::string& secret_file) const {
    return "    - s3: {bucket: backups, endpoint: '" + moto_->endpoint() +
           "', pathStyle: true, accessKeyIdFile: " + (dir_ / "key_id").string() +
           ", secretAccessKeyFile: " + (dir_ / secret_file).string() + "}\n";
  }
  std::string local_yaml() const {
    return "    - local: {path: " + (dir_ / "archives").string() + "}\n";
  }

  /// A BackupSchedule named schedule_name_ over this volume into
  /// `destinations`, with `more_spec` (indented lines) added to its spec.
  std::string schedule_yaml(const std::string& destinations,
                            const std::string& more_spec = {}) const {
    return "apiVersion: lifeboat/v1\nkind: BackupSchedule\nmetadata: {name: " + schedule_name_ +
           "}\nspec:\n  schedule: '@every 1h'\n  volumes: [" + volume_ +
           "]\n  retention: {keepLast: 1}\n" + more_spec + "  destinations:\n" + destinations;
  }

  api::backup_schedule schedule(const std::string& destinations,
                                const std::string& more_spec = {}) const {
    const std::string yaml = schedule_yaml(destinations, more_spec);
    const auto decoded = api::decode(yaml);
    EXPECT_TRUE(decoded.ok()) << yaml;
    return std::get<api::backup_schedule>(decoded.objects().at(0));
  }

  backup::run_result run(const api::backup_schedule& s) {
    backup::runner_options options;
    options.helper_image = test_image();
    backup::engine_runner runner(engine(), *journals_, backup::standard_archive_steps(), options);
    const std::atomic<bool> cancel{false};
    return runner.run(
        s, unique("run"), [](std::string_view, const std::string&) {}, [](int) {}, cancel);
  }

  /// The single archive in the local folder whose name ends with
  /// `extension`, by name.
  std::string local_archive(std::string_view extension = ".gz") const {
    std::string found;
    for (const auto& e : std::filesystem::directory_iterator(dir_ / "archives")) {
      if (e.path().extension() == extension) {
        EXPECT_TRUE(found.empty()) << "more than one archive";
        found = e.path().filename().string();
      }
    }
    return found;
  }

  // A Restore of this volume into `target` from the archive `name` in S3.
  restore::run_result restore_from_s3(const std::string& name, const std::string& target,
                                      const std::string& secret_file) {
    const std::string yaml =
        "apiVersion: lifeboat/v1\nkind: Restore\nmetadata: {name: r}\nspec:\n  source:\n"
        "    destination:\n      " +
        s3_yaml(secret_file).substr(std::string_view("    - ").size()) + "    name: " + name +
        "\n  volumes: [\"" + volume_ + "=" + target + "\"]\n  createVolume: true\n";
    const auto decoded = api::decode(yaml);
    EXPECT_TRUE(decoded.ok()) << yaml;
    restore::runner_options options;
    options.helper_image = test_image();
    options.spool_folder = dir_;
    restore::engine_runner runner(engine(), *journals_, options);
    const std::atomic<bool> cancel{false};
    phases_.clear();
    return runner.run(
        std::get<api::restore>(decoded.objects().at(0)), unique("restore"),
        [this](std::string_view phase, const std::string&) { phases_.emplace_back(phase); },
        [](int) {}, cancel);
  }

  std::string s3_object(const std::string& key) const {
    return moto_->signed_curl("'" + moto_->endpoint() + "/backups/" + key + "'");
  }

  /// The SHA-256 of the object `key` as curl streams it into sha256sum (an
  /// archive of any size never passes through the test's memory); empty
  /// when it could not be read.
  std::string s3_object_sha256(const std::string& key) const {
    const auto out =
        moto_->signed_curl("-f '" + moto_->endpoint() + "/backups/" + key + "' | sha256sum");
    return out.size() >= 64 && out.find("curl:") == std::string::npos ? out.substr(0, 64) : "";
  }

  /// The SHA-256 of a local file, as sha256sum computes it.
  static std::string file_sha256(const std::filesystem::path& file) {
    const auto out = run_command("sha256sum '" + file.string() + "'");
    return out.status == 0 && out.out.size() >= 64 ? out.out.substr(0, 64) : "";
  }

  /// The keys of the complete objects in the bucket starting with `prefix`,
  /// sorted, as ListObjectsV2 gives them.
  std::vector<std::string> bucket_keys(const std::string& prefix) const {
    const auto xml =
        moto_->signed_curl("'" + moto_->endpoint() + "/backups?list-type=2&prefix=" + prefix + "'");
    EXPECT_THAT(xml, ::testing::HasSubstr("<ListBucketResult"));
    std::vector<std::string> keys;
    const std::regex key("<Contents>.*?<Key>([^<]+)</Key>");
    for (std::sregex_iterator it(xml.begin(), xml.end(), key), end; it != end; ++it) {
      keys.push_back((*it)[1]);
    }
    std::sort(keys.begin(), keys.end());
    return keys;
  }

  std::unique_ptr<quiesce::journal_store> journals_;
  std::unique_ptr<test::moto_server> moto_;
  std::filesystem::path dir_;
  std::string volume_;
  std::string schedule_name_;
  std::vector<std::string> phases_;
};

}  // namespace lifeboat::e2e
