#pragma once

#include "controller/destinations/destination.hpp"

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

namespace lifeboat::destinations {

/// Sizes and retry pacing of an S3 destination. The defaults are for real
/// use; tests make parts and pages small to exercise multipart and paging.
/// $TMPDIR when set, /tmp otherwise.
std::string default_part_folder();

struct s3_tuning {
  /// Bytes of each uploaded part but the last (S3 needs at least 5 MiB); past
  /// 1000 parts each further 1000 get one base size more, so S3's 10 000
  /// parts reach ~440 GiB at 8 MiB.
  std::size_t part_size = std::size_t{8} << 20;
  /// Where the part being gathered waits, in a file with no name (page
  /// cache, not the process's memory); in memory when no file can be made
  /// there. $TMPDIR, or /tmp.
  std::string part_folder = default_part_folder();
  /// Keys per ListObjectsV2 / ListMultipartUploads page (S3's most is 1000).
  int page_size = 1000;
  /// Tries of a request that failed in a way worth retrying (connection
  /// reset, 5xx, 429/SlowDown), with a pause doubling from `backoff`.
  int attempts = 5;
  std::chrono::milliseconds backoff{500};
  /// Writes '/' in query values as %2F, as Signature V4 requires (libcurl
  /// 7.88 signs the query as written). Only for moto: its server decodes
  /// %2F before it checks the signature, so its tests send '/' as is.
  bool encode_slash_in_query = true;
};

/// An S3-compatible bucket (AWS, MinIO, Ceph, moto...), signed with AWS
/// Signature V4 through libcurl. Archives are multipart uploads, completed
/// only after the last part and the ".sha256" object: until then nothing
/// is visible under the archive's key, and an abandoned or killed upload is
/// aborted (now, or by the next run's remove_leftovers). Errors:
/// errc::refused for credentials the server refuses (the message says which
/// files to check, never what they hold) and for a missing bucket or an
/// unreachable server; errc::io_error for everything else.
class s3_bucket final : public destination {
 public:
  explicit s3_bucket(api::s3_destination spec, const s3_tuning& tuning = {});
  ~s3_bucket() override;

  std::string describe() const override;
  archive::result<void> check() const override;
  archive::result<std::unique_ptr<upload>> begin(const std::string& file_name) override;
  archive::result<std::vector<archive::archive_file>> list() const override;
  archive::result<void> remove(const std::string& file_name) override;
  archive::result<std::unique_ptr<download>> open(const std::string& file_name) const override;
  /// Aborts the incomplete multipart uploads of the schedule's archives and
  /// removes ".sha256" objects whose archive is gone.
  archive::result<std::vector<std::string>> remove_leftovers(
      const archive::archive_name_pattern& pattern) override;
  /// S3 has no links: nothing to point. With insecureSkipVerify, the warning
  /// that TLS peers are not verified.
  std::string point_latest(const std::string& file_name) override;
  std::string spool_folder() const override { return {}; }

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace lifeboat::destinations
