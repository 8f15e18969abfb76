#pragma once

#include "api/objects.hpp"
#include "controller/archive/error.hpp"

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>

// The compression stage between the tar writer and the destination. Memory is
// bounded by a few blocks per thread whatever the stream's size.
namespace lifeboat::archive {

/// Takes the next bytes of the output, in order, never concurrently; a
/// compressor calls it on the thread that calls the compressor, write_archive
/// on a thread of its own when it compresses with several threads. An error
/// aborts the archive.
using byte_sink = std::function<result<void>(std::span<const char> bytes)>;

struct compression_options {
  api::compression_kind kind = api::compression_kind::gzip;

  /// As validated by the API (gzip 1-9, zstd 1-19); unset means the default:
  /// gzip 4, zstd 3.
  ///
  /// gzip output is always a standard .tar.gz: a series of gzip members, one
  /// per block, compressed independently (which is what makes it parallel) and
  /// read back by gzip, GNU tar and bsdtar as one stream. Levels 1-3 use
  /// ISA-L's igzip at that level (built with ISA-L; otherwise libdeflate):
  /// on 2 cores level 1 runs 6-7x `tar | pigz -6` for 7% more output. Levels
  /// 4-9 use libdeflate at that level, a little smaller than zlib at the same
  /// level and faster. The default is 4, not gzip's 6: 3x `tar | pigz -6` for
  /// 2% more output, where 6 is 1.9x for the same size as pigz. Blocks that
  /// ISA-L cannot compress at all (media, encrypted or compressed files) are
  /// stored by it instead of being searched by libdeflate, which is slow on
  /// them.
  ///
  /// zstd levels 1-9 run with 512 KiB jobs, a window of at most 1 MiB and
  /// match tables to suit: as fast as `zstd -T0` at the same level, 0.3%
  /// larger, in a fifth of its memory. Levels 10-19 keep zstd's own
  /// parameters (and need more memory).
  std::optional<int> level;

  /// Compression threads: 0 means one per CPU this process may run on; 1
  /// compresses on the calling thread alone (the single-threaded path).
  unsigned threads = 0;

  /// Tuning, 0 for the measured defaults: the uncompressed size of a gzip
  /// block (256 KiB), and zstd's job size (512 KiB, and at least that).
  std::size_t gzip_block_size = 0;
  std::size_t zstd_job_size = 0;
};

/// One compressed stream. Not thread-safe: write() and finish() are called on
/// one thread (the archive writer's); a gzip compressor runs worker threads of
/// its own, joined by the destructor.
class compressor {
 public:
  virtual ~compressor() = default;

  /// Takes the next uncompressed bytes; may hand compressed bytes to the sink
  /// before returning. After an error the compressor is unusable.
  virtual result<void> write(std::span<const char> data) = 0;

  /// Compresses what is buffered, ends the stream and hands the rest to the
  /// sink. Called once, after the last write().
  virtual result<void> finish() = 0;
};

/// A compressor for `options` that writes to `sink`. Fails with
/// errc::invalid_argument for a level out of range, errc::internal when a
/// codec cannot be set up.
result<std::unique_ptr<compressor>> make_compressor(const compression_options& options,
                                                    byte_sink sink);

/// What make_compressor would use, for logs: "gzip (libdeflate level 6, 2
/// threads, 1024 KiB blocks)", "zstd (level 3, 2 threads)", "none".
std::string describe(const compression_options& options);

/// The number of CPUs this process may run on (its affinity mask), at least 1.
unsigned usable_cpus();

}  // namespace lifeboat::archive
