#include "controller/archive/compressor.hpp"

#include <libdeflate.h>
#include <sched.h>
// For ZSTD_getCParams, the level's parameters; exported by the shared
// library, and its struct has not changed since zstd 1.3.
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>
#if LIFEBOAT_HAVE_ISAL
#include <isa-l/igzip_lib.h>
#endif

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace lifeboat::archive {

namespace {

// Defaults chosen with hack/bench-archive.sh on a 2-core machine; see
// compression_options for the level mapping and the figures.
constexpr int default_gzip_level = 4;
constexpr int default_zstd_level = 3;
// A gzip member per 256 KiB: the dictionary lost at each boundary costs
// about 0.2% of size (and finer blocks let the incompressible-data probe
// below find more), and threads + 2 blocks in flight keep memory to about
// 2 MiB, which the controller's 25 MiB limit needs while a run is held.
// Measured on 1.3 GiB of libraries, 2 threads: 256 KiB and 512 KiB blocks
// cost the same CPU (19.1 s user+sys) for 2.3 MiB less peak RSS (11.8 vs
// 14.1 MiB); 1 MiB blocks measured the same speed for 4 MiB more again.
constexpr std::size_t default_gzip_block_size = std::size_t{256} * 1024;
// zstd's own default job is 4 windows (8 MiB at level 3), and `zstd -T0`
// peaks near 70 MB; 512 KiB jobs (zstd's minimum) with a 1 MiB window and
// tables to match keep the whole writer near 15 MiB (measured with
// hack/bench-archive.sh).
constexpr std::size_t default_zstd_job_size = std::size_t{512} * 1024;
constexpr std::size_t min_zstd_job_size = std::size_t{512} * 1024;
constexpr int max_capped_zstd_level = 9;
constexpr int zstd_window_log_cap = 20;
constexpr int zstd_hash_log_cap = 14;
constexpr int zstd_chain_log_cap = 13;
constexpr std::size_t none_buffer_size = std::size_t{1024} * 1024;

#if LIFEBOAT_HAVE_ISAL
constexpr bool have_isal = true;
// The probe that tells incompressible blocks apart: ISA-L level 1 on the
// first 64 KiB; a block whose sample does not shrink below 97% is stored by
// ISA-L rather than searched by libdeflate.
constexpr std::size_t probe_size = std::size_t{64} * 1024;
#else
constexpr bool have_isal = false;
#endif

int effective_level(const compression_options& o) {
  switch (o.kind) {
    case api::compression_kind::gzip:
      return o.level.value_or(default_gzip_level);
    case api::compression_kind::zstd:
      return o.level.value_or(default_zstd_level);
    case api::compression_kind::none:
      return 0;
  }
  return 0;
}

unsigned effective_threads(const compression_options& o) {
  return o.threads == 0 ? usable_cpus() : o.threads;
}

bool gzip_uses_isal(int level) { return have_isal && level <= 3; }

std::size_t gzip_block_size(const compression_options& o) {
  return o.gzip_block_size == 0 ? default_gzip_block_size : o.gzip_block_size;
}

std::size_t zstd_job_size(const compression_options& o) {
  return std::max(min_zstd_job_size,
                  o.zstd_job_size == 0 ? default_zstd_job_size : o.zstd_job_size);
}

// Compresses whole blocks, each into one complete gzip member. Owned by one
// thread at a time.
class gzip_block_codec {
 public:
  explicit gzip_block_codec(int level) : level_(level) {
#if LIFEBOAT_HAVE_ISAL
    isal_level_ = gzip_uses_isal(level) ? level : 1;
    switch (isal_level_) {
      case 1:
        isal_buffer_.resize(ISAL_DEF_LVL1_DEFAULT);
        break;
      case 2:
        isal_buffer_.resize(ISAL_DEF_LVL2_DEFAULT);
        break;
      default:
        isal_buffer_.resize(ISAL_DEF_LVL3_DEFAULT);
        break;
    }
    if (!gzip_uses_isal(level)) {
      probe_out_.resize(probe_size + ISAL_DEF_MAX_HDR_SIZE + 1024);
    }
#endif
    if (!gzip_uses_isal(level)) {
      deflate_ = libdeflate_alloc_compressor(level);
    }
  }
  gzip_block_codec(const gzip_block_codec&) = delete;
  gzip_block_codec& operator=(const gzip_block_codec&) = delete;
  ~gzip_block_codec() {
    if (deflate_ != nullptr) {
      libdeflate_free_compressor(deflate_);
    }
  }

  bool ok() const { return gzip_uses_isal(level_) || deflate_ != nullptr; }

  // Room the output of a block of `n` bytes needs, whatever the codec: stored
  // blocks plus the member's header and trailer.
  static std::size_t bound(std::size_t n) {
    return libdeflate_gzip_compress_bound(nullptr, n) + 1024;
  }

  // Compresses `in` into `out` (at least bound(in.size()) bytes); returns the
  // member's size, 0 on a codec failure (which bound() rules out).
  std::size_t compress(std::span<const char> in, std::span<char> out) {
#if LIFEBOAT_HAVE_ISAL
    if (gzip_uses_isal(level_)) {
      return isal_compress(in, out, isal_level_);
    }
    if (in.size() >= 2 * probe_size && incompressible(in.first(probe_size))) {
      return isal_compress(in, out, 1);
    }
#endif
    return libdeflate_gzip_compress(deflate_, in.data(), in.size(), out.data(), out.size());
  }

 private:
#if LIFEBOAT_HAVE_ISAL
  std::size_t isal_compress(std::span<const char> in, std::span<char> out, int level) {
    isal_zstream s;
    isal_deflate_stateless_init(&s);
    s.level = static_cast<std::uint32_t>(level);
    s.level_buf = isal_buffer_.data();
    s.level_buf_size = static_cast<std::uint32_t>(isal_buffer_.size());
    s.gzip_flag = IGZIP_GZIP;
    s.end_of_stream = 1;
    s.flush = NO_FLUSH;
    // ISA-L's API is not const-correct; it never writes its input.
    s.next_in = reinterpret_cast<std::uint8_t*>(const_cast<char*>(in.data()));
    s.avail_in = static_cast<std::uint32_t>(in.size());
    s.next_out = reinterpret_cast<std::uint8_t*>(out.data());
    s.avail_out = static_cast<std::uint32_t>(out.size());
    if (isal_deflate_stateless(&s) != COMP_OK) {
      return 0;
    }
    return s.total_out;
  }

  bool incompressible(std::span<const char> sample) {
    const std::size_t n = isal_compress(sample, probe_out_, 1);
    return n == 0 || n * 100 >= sample.size() * 97;
  }

  int isal_level_ = 1;
  std::vector<std::uint8_t> isal_buffer_;
  std::vector<char> probe_out_;
#endif
  int level_;
  libdeflate_compressor* deflate_ = nullptr;
};

// gzip on all cores: the stream is cut into blocks that worker threads
// compress independently into gzip members; the calling thread hands the
// members to the sink in stream order. A ring of slots bounds memory: when
// every slot is in flight, write() waits for the oldest one. With no worker
// threads, blocks are compressed on the calling thread (the single-threaded
// path, which tests exercise directly).
class parallel_gzip final : public compressor {
 public:
  parallel_gzip(int level, unsigned threads, std::size_t block_size, byte_sink sink)
      : level_(level), block_size_(block_size), sink_(std::move(sink)) {
    const std::size_t workers = threads > 1 ? threads : 0;
    slots_.resize(workers == 0 ? 1 : workers + 2);
    if (workers == 0) {
      inline_codec_ = std::make_unique<gzip_block_codec>(level_);
    }
    for (std::size_t i = 0; i < workers; ++i) {
      workers_.emplace_back([this] { work(); });
    }
  }

  parallel_gzip(const parallel_gzip&) = delete;
  parallel_gzip& operator=(const parallel_gzip&) = delete;

  ~parallel_gzip() override {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    work_ready_.notify_all();
    workers_.clear();  // joins
  }

  result<void> write(std::span<const char> data) override {
    while (!data.empty()) {
      slot& s = slots_[fill_];
      if (s.in.empty()) {
        s.in.resize(block_size_);
        s.out.resize(gzip_block_codec::bound(block_size_));
      }
      const std::size_t n = std::min(data.size(), block_size_ - s.in_size);
      std::memcpy(s.in.data() + s.in_size, data.data(), n);
      s.in_size += n;
      data = data.subspan(n);
      if (s.in_size == block_size_) {
        if (auto r = submit(); !r) {
          return r;
        }
      }
    }
    return {};
  }

  result<void> finish() override {
    // An empty stream is still one (empty) member, so the file is valid gzip.
    if (slots_[fill_].in_size > 0 || members_ == 0) {
      slot& s = slots_[fill_];
      if (s.in.empty()) {
        s.out.resize(gzip_block_codec::bound(0));
      }
      if (auto r = submit(); !r) {
        return r;
      }
    }
    while (in_flight_ > 0) {
      if (auto r = drain_oldest(); !r) {
        return r;
      }
    }
    return {};
  }

 private:
  enum class state { filling, queued, done, failed };

  struct slot {
    std::vector<char> in;
    std::size_t in_size = 0;
    std::vector<char> out;
    std::size_t out_size = 0;
    state st = state::filling;
  };

  // Hands the slot being filled to the workers (or compresses it here), then
  // makes sure the next slot is free to fill.
  result<void> submit() {
    slot& s = slots_[fill_];
    ++members_;
    ++in_flight_;
    if (inline_codec_) {
      if (!inline_codec_->ok()) {
        return make_error(errc::internal, "cannot set up the gzip compressor");
      }
      s.out_size = inline_codec_->compress(std::span(s.in.data(), s.in_size),
                                           std::span(s.out.data(), s.out.size()));
      s.st = s.out_size == 0 ? state::failed : state::done;
    } else {
      {
        std::lock_guard lock(mutex_);
        s.st = state::queued;
        queue_.push_back(fill_);
      }
      work_ready_.notify_one();
    }
    fill_ = (fill_ + 1) % slots_.size();
    // Write out whatever is already done, in order; wait only when the ring is full.
    while (in_flight_ > 0 && (in_flight_ == slots_.size() || oldest_done())) {
      if (auto r = drain_oldest(); !r) {
        return r;
      }
    }
    return {};
  }

  bool oldest_done() {
    std::lock_guard lock(mutex_);
    return slots_[drain_].st != state::queued;
  }

  // Waits for the oldest block in flight, hands its member to the sink and
  // frees its slot.
  result<void> drain_oldest() {
    slot& s = slots_[drain_];
    {
      std::unique_lock lock(mutex_);
      block_done_.wait(lock, [&] { return s.st != state::queued; });
    }
    if (s.st == state::failed) {
      return make_error(errc::internal, "gzip compression of a block failed");
    }
    if (auto r = sink_(std::span<const char>(s.out.data(), s.out_size)); !r) {
      return r;
    }
    s.in_size = 0;
    s.out_size = 0;
    s.st = state::filling;
    drain_ = (drain_ + 1) % slots_.size();
    --in_flight_;
    return {};
  }

  void work() {
    // Each worker owns its codec: libdeflate and ISA-L state is per thread.
    // Without one (no memory), every block it takes fails, and so does the
    // archive, in order.
    std::unique_ptr<gzip_block_codec> codec;
    try {
      codec = std::make_unique<gzip_block_codec>(level_);
    } catch (const std::exception&) {
      codec.reset();
    }
    for (;;) {
      std::size_t index = 0;
      {
        std::unique_lock lock(mutex_);
        work_ready_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (stopping_) {
          return;
        }
        index = queue_.front();
        queue_.pop_front();
      }
      slot& s = slots_[index];
      const std::size_t n = codec && codec->ok()
                                ? codec->compress(std::span(s.in.data(), s.in_size),
                                                  std::span(s.out.data(), s.out.size()))
                                : 0;
      {
        std::lock_guard lock(mutex_);
        s.out_size = n;
        s.st = n == 0 ? state::failed : state::done;
      }
      block_done_.notify_all();
    }
  }

  const int level_;
  const std::size_t block_size_;
  byte_sink sink_;
  std::vector<slot> slots_;
  std::size_t fill_ = 0;       // the slot write() fills
  std::size_t drain_ = 0;      // the oldest slot in flight
  std::size_t in_flight_ = 0;  // slots submitted and not yet written out
  std::uint64_t members_ = 0;
  std::unique_ptr<gzip_block_codec> inline_codec_;

  // Guards the slots' states and the queue between the caller and the workers.
  std::mutex mutex_;
  std::condition_variable work_ready_;
  std::condition_variable block_done_;
  std::deque<std::size_t> queue_;
  bool stopping_ = false;
  std::vector<std::jthread> workers_;  // last: joined before the rest is destroyed
};

// zstd through libzstd's streaming API; with threads > 1 libzstd runs its own
// workers (ZSTD_c_nbWorkers) and this thread only feeds and drains it.
class zstd_compressor final : public compressor {
 public:
  zstd_compressor(ZSTD_CCtx* cctx, byte_sink sink)
      : cctx_(cctx), out_(ZSTD_CStreamOutSize()), sink_(std::move(sink)) {}
  zstd_compressor(const zstd_compressor&) = delete;
  zstd_compressor& operator=(const zstd_compressor&) = delete;
  ~zstd_compressor() override { ZSTD_freeCCtx(cctx_); }

  result<void> write(std::span<const char> data) override {
    ZSTD_inBuffer in{data.data(), data.size(), 0};
    while (in.pos < in.size) {
      if (auto r = step(in, ZSTD_e_continue); !r) {
        return r.error();
      }
    }
    return {};
  }

  result<void> finish() override {
    ZSTD_inBuffer in{nullptr, 0, 0};
    for (;;) {
      auto r = step(in, ZSTD_e_end);
      if (!r) {
        return r.error();
      }
      if (*r == 0) {
        return {};
      }
    }
  }

 private:
  // One call of ZSTD_compressStream2; returns what it returns (bytes left to
  // flush, for ZSTD_e_end).
  result<std::size_t> step(ZSTD_inBuffer& in, ZSTD_EndDirective mode) {
    ZSTD_outBuffer out{out_.data(), out_.size(), 0};
    const std::size_t r = ZSTD_compressStream2(cctx_, &out, &in, mode);
    if (ZSTD_isError(r) != 0) {
      return make_error(errc::internal, std::string("zstd: ") + ZSTD_getErrorName(r));
    }
    if (out.pos > 0) {
      if (auto w = sink_(std::span<const char>(out_.data(), out.pos)); !w) {
        return w.error();
      }
    }
    return r;
  }

  ZSTD_CCtx* cctx_;
  std::vector<char> out_;
  byte_sink sink_;
};

// No compression: gathers the tar writer's many small writes (512-byte
// headers) into large ones.
class pass_through final : public compressor {
 public:
  explicit pass_through(byte_sink sink) : sink_(std::move(sink)) {
    buffer_.reserve(none_buffer_size);
  }

  result<void> write(std::span<const char> data) override {
    if (buffer_.size() + data.size() > none_buffer_size) {
      if (auto r = flush(); !r) {
        return r;
      }
      if (data.size() >= none_buffer_size) {
        return sink_(data);
      }
    }
    buffer_.insert(buffer_.end(), data.begin(), data.end());
    return {};
  }

  result<void> finish() override { return flush(); }

 private:
  result<void> flush() {
    if (buffer_.empty()) {
      return {};
    }
    auto r = sink_(buffer_);
    buffer_.clear();
    return r;
  }

  byte_sink sink_;
  std::vector<char> buffer_;
};

result<std::unique_ptr<compressor>> make_zstd(const compression_options& o, byte_sink sink) {
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  if (cctx == nullptr) {
    return make_error(errc::internal, "cannot allocate a zstd context");
  }
  auto set = [&](ZSTD_cParameter p, int value) {
    return ZSTD_isError(ZSTD_CCtx_setParameter(cctx, p, value)) == 0;
  };
  bool ok = set(ZSTD_c_compressionLevel, effective_level(o)) && set(ZSTD_c_checksumFlag, 1);
  const unsigned threads = effective_threads(o);
  // A libzstd built without threads refuses nbWorkers; it then runs
  // single-threaded rather than failing the backup.
  if (ok && threads > 1 && set(ZSTD_c_nbWorkers, static_cast<int>(threads))) {
    ok = set(ZSTD_c_jobSize, static_cast<int>(zstd_job_size(o)));
    // Every job starts with empty match tables, so tables sized for zstd's
    // own 8 MiB jobs cost more to clear than small jobs gain from them.
    // Capped for levels up to 9: at level 3 this is as fast as `zstd -T0`
    // for 0.25% more output and a fifth of its memory. Higher levels keep
    // zstd's parameters: their users ask for size, not speed or memory.
    if (ok && effective_level(o) <= max_capped_zstd_level) {
      const ZSTD_compressionParameters p = ZSTD_getCParams(effective_level(o), 0, 0);
      ok = set(ZSTD_c_windowLog,
               std::min<int>(static_cast<int>(p.windowLog), zstd_window_log_cap)) &&
           set(ZSTD_c_hashLog, std::min<int>(static_cast<int>(p.hashLog), zstd_hash_log_cap)) &&
           set(ZSTD_c_chainLog, std::min<int>(static_cast<int>(p.chainLog), zstd_chain_log_cap));
    }
  }
  if (!ok) {
    ZSTD_freeCCtx(cctx);
    return make_error(errc::internal, "cannot set up zstd");
  }
  return std::unique_ptr<compressor>(std::make_unique<zstd_compressor>(cctx, std::move(sink)));
}

}  // namespace

unsigned usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    return static_cast<unsigned>(std::max(1, CPU_COUNT(&set)));
  }
  return std::max(1U, std::thread::hardware_concurrency());
}

result<std::unique_ptr<compressor>> make_compressor(const compression_options& options,
                                                    byte_sink sink) {
  const int level = effective_level(options);
  switch (options.kind) {
    case api::compression_kind::gzip: {
      if (level < 1 || level > 9) {
        return make_error(errc::invalid_argument,
                          "gzip level " + std::to_string(level) + " is not in 1-9");
      }
      if (options.gzip_block_size < std::size_t{64} * 1024 && options.gzip_block_size != 0) {
        return make_error(errc::invalid_argument, "gzip blocks must be at least 64 KiB");
      }
      // Fail here, not in a worker, if the codec cannot be set up.
      if (!gzip_block_codec(level).ok()) {
        return make_error(errc::internal, "cannot set up the gzip compressor");
      }
      return std::unique_ptr<compressor>(std::make_unique<parallel_gzip>(
          level, effective_threads(options), gzip_block_size(options), std::move(sink)));
    }
    case api::compression_kind::zstd:
      if (level < 1 || level > ZSTD_maxCLevel()) {
        return make_error(errc::invalid_argument, "zstd level " + std::to_string(level) +
                                                      " is not in 1-" +
                                                      std::to_string(ZSTD_maxCLevel()));
      }
      return make_zstd(options, std::move(sink));
    case api::compression_kind::none:
      if (options.level) {
        return make_error(errc::invalid_argument, "compression none takes no level");
      }
      return std::unique_ptr<compressor>(std::make_unique<pass_through>(std::move(sink)));
  }
  return make_error(errc::invalid_argument, "unknown compression");
}

std::string describe(const compression_options& options) {
  const int level = effective_level(options);
  const unsigned threads = effective_threads(options);
  const std::string thread_text = std::to_string(threads) + (threads == 1 ? " thread" : " threads");
  switch (options.kind) {
    case api::compression_kind::gzip:
      return std::string("gzip (") + (gzip_uses_isal(level) ? "ISA-L" : "libdeflate") + " level " +
             std::to_string(level) + ", " + thread_text + ", " +
             std::to_string(gzip_block_size(options) / 1024) + " KiB blocks)";
    case api::compression_kind::zstd:
      return "zstd (level " + std::to_string(level) + ", " + thread_text +
             (threads > 1 ? ", " + std::to_string(zstd_job_size(options) / 1024) + " KiB jobs"
                          : "") +
             ")";
    case api::compression_kind::none:
      return "none";
  }
  return "unknown";
}

}  // namespace lifeboat::archive
