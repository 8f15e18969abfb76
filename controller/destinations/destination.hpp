#pragma once

#include "api/objects.hpp"
#include "controller/archive/error.hpp"
#include "controller/archive/name_pattern.hpp"
#include "controller/archive/retention.hpp"

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

// Where archives go: the one interface every destination kind implements
// (a local folder today; S3, WebDAV, SFTP next). A run writes its archive into
// an upload of the first destination while the workloads are held, publishes
// it, copies it to the others, then prunes each by the same retention rules.
// Errors keep their kind (archive::errc): "no space" is not "refused" is not
// "the source broke off".
namespace lifeboat::destinations {

/// An archive as it was published: its place for people ("/archive/db/x.tar.gz",
/// "s3://bucket/db/x.tar.gz"), and the checksum written beside it.
struct published_archive {
  std::string location;
  std::string sha256;  ///< lower-case hex
  std::uint64_t size = 0;
};

/// An archive being written under a name. Nothing is visible under that
/// name until commit() returns; abandon() (or destruction without commit)
/// leaves nothing behind. Not thread-safe: one thread writes and commits.
class upload {
 public:
  virtual ~upload() = default;
  virtual archive::result<void> write(std::span<const char> bytes) = 0;
  /// Publishes the archive with its `.sha256` (sha256sum's format) beside it.
  virtual archive::result<published_archive> commit() = 0;
  virtual void abandon() = 0;
  virtual std::uint64_t bytes_written() const = 0;
};

/// An archive opened for reading, from its start.
class download {
 public:
  virtual ~download() = default;
  /// Reads up to `into.size()` bytes; 0 at the end.
  virtual archive::result<std::size_t> read(std::span<char> into) = 0;
};

class destination {
 public:
  virtual ~destination() = default;

  /// "local /archive/db": for messages and logs.
  virtual std::string describe() const = 0;

  /// Checks that archives can be written here at all, before any workload is
  /// held (a missing mount fails the run naming the path, and nothing stops).
  virtual archive::result<void> check() const = 0;

  /// Begins writing the archive `file_name` (a name, no '/').
  virtual archive::result<std::unique_ptr<upload>> begin(const std::string& file_name) = 0;

  /// The published archives here (and any other plain object), for retention.
  virtual archive::result<std::vector<archive::archive_file>> list() const = 0;

  /// Removes the archive `file_name` and then its checksum. Gone already is fine.
  virtual archive::result<void> remove(const std::string& file_name) = 0;

  /// Opens a published archive (or its ".sha256") for reading.
  virtual archive::result<std::unique_ptr<download>> open(const std::string& file_name) const = 0;

  /// Clears what interrupted runs of `pattern`'s schedule left here; returns
  /// the names removed. Never touches anything else.
  virtual archive::result<std::vector<std::string>> remove_leftovers(
      const archive::archive_name_pattern& pattern) = 0;

  /// Points the "latest" name at `file_name` where the destination has such
  /// a thing (a symlink in a folder). Returns a warning to report, empty when
  /// all went well: a failed link never fails the run whose archive is safe.
  virtual std::string point_latest(const std::string& file_name) = 0;

  /// A folder on this machine where a spool file may sit next to the archive;
  /// empty for remote destinations.
  virtual std::string spool_folder() const = 0;
};

/// The destination `spec` describes. Visits every kind: a new kind of
/// api::destination fails to compile here until it is handled.
std::unique_ptr<destination> make_destination(const api::destination& spec);

/// Copies the published archive `file_name` (and its checksum) from `from`
/// into `to`, through an upload: visible in `to` only once complete.
archive::result<published_archive> copy_archive(const destination& from, destination& to,
                                                const std::string& file_name);

}  // namespace lifeboat::destinations
