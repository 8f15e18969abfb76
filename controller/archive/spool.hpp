#pragma once

#include "controller/archive/compressor.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>

// Downtime first: the volumes' workloads are held while the volumes are read,
// and reading is several times faster than compressing (on 2 cores, reading
// from the page cache runs at 1-2 GiB/s, gzip at its default level at about
// 180 MiB/s). A spool lets the reader run ahead of the compressor, so the
// workloads can resume once everything has been read, while compression
// catches up from the spool.
namespace lifeboat::archive {

struct spool_options {
  /// Where the spool file lives: an unnamed file (O_TMPFILE) that no one can
  /// see and that disappears with the process, whatever way it ends. The
  /// archive's destination folder is a good choice (same disk, known space).
  std::filesystem::path directory;
  /// At most this many bytes wait in the spool; the reader waits beyond it,
  /// so disk use is bounded (consumed parts are released as it goes).
  std::uint64_t limit = std::uint64_t{4} << 30;
};

/// A compressor that hands every write to `inner` through a spool file and a
/// thread of its own: write() returns as soon as the bytes are in the spool
/// (page cache), unless `limit` bytes are already waiting. finish() waits for
/// the spool to drain and finishes `inner`. An error of `inner` is returned by
/// the next write() or by finish(). Fails with errc::io_error when the spool
/// file cannot be made (a file system without O_TMPFILE): callers then
/// compress without a spool.
result<std::unique_ptr<compressor>> make_spooling_compressor(std::unique_ptr<compressor> inner,
                                                             const spool_options& options);

}  // namespace lifeboat::archive
