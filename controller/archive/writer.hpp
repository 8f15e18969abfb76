#pragma once

#include "controller/archive/compressor.hpp"
#include "controller/archive/error.hpp"
#include "controller/archive/source.hpp"
#include "controller/archive/spool.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

// The archive writer: one pax tar of several volumes, compressed, streamed to
// a sink with memory bounded by a few buffers whatever the volumes' size.
namespace lifeboat::archive {

/// Where a write stands, for progress displays.
struct progress {
  std::size_t source_index = 0;     ///< the source being read
  std::uint64_t entries = 0;        ///< entries written so far, all sources
  std::uint64_t content_bytes = 0;  ///< file data read so far
  std::uint64_t output_bytes = 0;   ///< compressed bytes handed to the sink
};

struct write_options {
  compression_options compression;

  /// When set (and compressing), the tar stream goes through a spool file so
  /// that reading never waits for compression: on_sources_read comes as soon
  /// as the sources are read, and compression finishes from the spool. When
  /// the spool cannot be made, the archive is written without one and a
  /// warning says so.
  std::optional<spool_options> spool;

  /// archive_spec.exclude; see path_filter for what it is matched against.
  std::optional<std::string> exclude;

  /// Stops the write at the next buffer with errc::cancelled.
  std::stop_token stop;

  /// Called on the writing thread after every entry and every 8 MiB of file
  /// data; should return quickly (throttle displays on the caller's side).
  std::function<void(const progress&)> on_progress;

  /// Called on the writing thread once the last source has been read to its
  /// end, before the compressor drains its last blocks and the archive is
  /// closed: the moment the volumes' workloads may resume.
  std::function<void()> on_sources_read;

  /// A seam for tests: called on the writing thread for each regular file of a
  /// directory source after its header has been read from the disk and before
  /// its data is, with the file's path on the disk.
  std::function<void(std::string_view disk_path)> before_file_data;
};

struct source_report {
  std::string prefix;
  read_path path = read_path::tar_stream;
  std::uint64_t entries = 0;   ///< entries written, the prefix's directory included
  std::uint64_t excluded = 0;  ///< entries left out by the exclude pattern
  std::uint64_t content_bytes = 0;
};

struct write_report {
  std::vector<source_report> sources;
  std::uint64_t entries = 0;
  std::uint64_t excluded = 0;
  std::uint64_t content_bytes = 0;  ///< file data read (holes of sparse files not counted)
  std::uint64_t tar_bytes = 0;      ///< the uncompressed archive
  std::uint64_t output_bytes = 0;   ///< what the sink received
  /// Problems that did not stop the archive (a file that changed, vanished or
  /// could not be read; a socket, which tar cannot store; a path too long for
  /// the exclude pattern), each naming the path in the archive. At most
  /// max_warnings are kept; warning_count counts them all.
  std::vector<std::string> warnings;
  std::uint64_t warning_count = 0;

  static constexpr std::size_t max_warnings = 100;
};

/// Writes `sources`, in order, into one pax tar archive, compressed as
/// `options.compression` says, and hands it to `sink` piece by piece. Blocks
/// the calling thread until the archive is complete, failed or cancelled.
/// With more than one compression thread, `sink` runs on a thread of its own
/// (behind a queue of 512 KiB), so writing and hashing the output overlap
/// with reading; it is still called in order and never concurrently, and
/// every call has returned when write_archive returns. The callbacks of
/// `options` run on the calling thread. Memory stays at a few MiB whatever
/// the sources' size (gzip: threads + 2 blocks of 256 KiB and their output).
///
/// Prefixes must be distinct, non-empty relative paths without "." or ".."
/// components (volume names are). A tar stream's errors (the engine broke off,
/// a malformed archive) and the sink's errors fail the write; a directory
/// source fails only if its root cannot be read at all.
///
/// Files that change while a directory source is read: each file is opened
/// before its header is written and read through that descriptor, and the
/// header promises the size seen then. A file that shrank is padded with
/// zeros to that size, one that grew is cut at it, one that was rewritten in
/// place (its mtime changed) is stored as read, one that was removed is still
/// read in full through the open descriptor; each becomes a warning naming
/// the path. A file that vanished before it could be opened, or cannot be
/// opened or read (EIO), is left out or zero-filled with a warning. Only the
/// root being unreadable fails the source. The sink may have received part
/// of an archive when this fails: the destination must not publish it.
result<write_report> write_archive(std::span<const volume_source> sources,
                                   const write_options& options, const byte_sink& sink);

}  // namespace lifeboat::archive
