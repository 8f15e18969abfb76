#include "controller/archive/writer.hpp"

#include "controller/archive/path_filter.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <locale.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <variant>

namespace lifeboat::archive {

std::string_view to_string(read_path p) {
  switch (p) {
    case read_path::tar_stream:
      return "engine";
    case read_path::direct:
      return "direct";
  }
  return "unknown";
}

const std::string& prefix_of(const volume_source& s) {
  return std::visit([](const auto& v) -> const std::string& { return v.prefix; }, s);
}

namespace {

constexpr std::size_t pull_buffer_size = std::size_t{256} * 1024;
constexpr std::size_t file_buffer_size = std::size_t{256} * 1024;
constexpr std::size_t max_trailing_bytes = std::size_t{1024} * 1024;
constexpr std::uint64_t progress_interval = std::uint64_t{8} * 1024 * 1024;

// Holes and missing data are fed to the tar writer from here; the pax writer
// skips holes without copying them.
constexpr std::size_t zero_buffer_size = std::size_t{256} * 1024;
const std::array<char, zero_buffer_size> zeros{};

struct read_free {
  void operator()(struct archive* a) const { archive_read_free(a); }
};
struct write_free {
  void operator()(struct archive* a) const { archive_write_free(a); }
};
struct entry_free {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};
struct resolver_free {
  void operator()(archive_entry_linkresolver* r) const { archive_entry_linkresolver_free(r); }
};
using read_handle = std::unique_ptr<struct archive, read_free>;
using write_handle = std::unique_ptr<struct archive, write_free>;

std::string archive_message(struct archive* a) {
  const char* text = archive_error_string(a);
  return text != nullptr ? text : "unknown libarchive error";
}

// The rest of `path` after its first component, without leading or trailing
// slashes: "data/db/x" -> "db/x", "./" -> "", "data" -> "".
std::string_view after_first_component(std::string_view path) {
  while (path.starts_with('/')) {
    path.remove_prefix(1);
  }
  const std::size_t slash = path.find('/');
  std::string_view rest = slash == std::string_view::npos ? std::string_view{} : path.substr(slash);
  while (rest.starts_with('/')) {
    rest.remove_prefix(1);
  }
  while (rest.ends_with('/')) {
    rest.remove_suffix(1);
  }
  return rest;
}

std::string under_prefix(std::string_view prefix, std::string_view rest) {
  std::string out(prefix);
  if (!rest.empty()) {
    out += '/';
    out += rest;
  }
  return out;
}

bool valid_prefix(std::string_view prefix) {
  if (prefix.empty() || prefix.starts_with('/') || prefix.ends_with('/')) {
    return false;
  }
  std::size_t start = 0;
  for (;;) {
    const std::size_t slash = prefix.find('/', start);
    const std::string_view part = prefix.substr(start, slash - start);
    if (part.empty() || part == "." || part == "..") {
      return false;
    }
    if (slash == std::string_view::npos) {
      return true;
    }
    start = slash + 1;
  }
}

// Hands the compressed stream to the caller's sink on a thread of its own,
// through a bounded queue of copies, so that hashing and writing the output
// overlap with reading the volumes and feeding the compressor (the reading
// thread is the pipeline's bottleneck whenever compression keeps up).
// push() and finish() are called by the writing thread only.
class sink_thread {
 public:
  explicit sink_thread(const byte_sink& sink) : sink_(sink), slots_(queue_depth) {
    thread_ = std::jthread([this] { drain(); });
  }

  sink_thread(const sink_thread&) = delete;
  sink_thread& operator=(const sink_thread&) = delete;

  ~sink_thread() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    changed_.notify_all();
  }

  // Queues a copy of `bytes`; blocks while the queue is full. Returns the
  // sink's error once it has failed.
  result<void> push(std::span<const char> bytes) {
    while (!bytes.empty()) {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [&] { return failure_ || count_ < slots_.size(); });
      if (failure_) {
        return *failure_;
      }
      std::vector<char>& slot = slots_[(first_ + count_) % slots_.size()];
      const std::size_t n = std::min(bytes.size(), chunk_size);
      lock.unlock();  // the slot is not the drainer's until counted
      slot.assign(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
      bytes = bytes.subspan(n);
      lock.lock();
      ++count_;
      lock.unlock();
      changed_.notify_all();
    }
    return {};
  }

  // Waits until everything queued reached the sink; its error if it failed.
  result<void> finish() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return failure_ || count_ == 0; });
    if (failure_) {
      return *failure_;
    }
    return {};
  }

 private:
  static constexpr std::size_t chunk_size = std::size_t{128} * 1024;
  static constexpr std::size_t queue_depth = 4;

  void drain() {
    std::unique_lock lock(mutex_);
    for (;;) {
      changed_.wait(lock, [&] { return stopping_ || count_ > 0; });
      if (stopping_) {
        return;
      }
      std::vector<char>& slot = slots_[first_];
      lock.unlock();
      result<void> r;
      try {
        r = sink_(slot);
      } catch (const std::exception& e) {
        r = make_error(errc::internal, e.what());
      }
      lock.lock();
      if (!r) {
        failure_ = r.error();
        changed_.notify_all();
        return;
      }
      first_ = (first_ + 1) % slots_.size();
      --count_;
      changed_.notify_all();
    }
  }

  const byte_sink& sink_;
  std::vector<std::vector<char>> slots_;
  std::size_t first_ = 0;  // the oldest queued slot
  std::size_t count_ = 0;  // slots queued
  std::optional<error> failure_;
  bool stopping_ = false;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::jthread thread_;  // last: joined before the rest is destroyed
};

// The state of one write_archive call: the tar writer, the compressor behind
// it, the filter and the report. Lives on the calling thread.
class archive_builder {
 public:
  archive_builder(const write_options& options, const byte_sink& sink, path_filter filter)
      : options_(options), sink_(sink), filter_(std::move(filter)) {}

  archive_builder(const archive_builder&) = delete;
  archive_builder& operator=(const archive_builder&) = delete;

  ~archive_builder() {
    // An unfinished archive is discarded: its last writes (the end of
    // archive) fail instead of reaching a sink that failed or that the
    // caller is about to throw away. Closed explicitly because
    // archive_write_free skips closing an archive in the fatal state (after
    // a failed write), leaking its output state; archive_write_fail leaks it
    // too.
    discarding_ = true;
    if (writer_) {
      archive_write_close(writer_.get());
    }
  }

  result<void> open() {
    const unsigned threads =
        options_.compression.threads == 0 ? usable_cpus() : options_.compression.threads;
    if (threads > 1) {
      sink_thread_ = std::make_unique<sink_thread>(sink_);
    }
    auto counted = [this](std::span<const char> bytes) -> result<void> {
      report_.output_bytes += bytes.size();
      return sink_thread_ ? sink_thread_->push(bytes) : sink_(bytes);
    };
    auto c = make_compressor(options_.compression, counted);
    if (!c) {
      return c.error();
    }
    compressor_ = std::move(*c);
    if (options_.spool && options_.compression.kind != api::compression_kind::none) {
      auto spooled = make_spooling_compressor(std::move(compressor_), *options_.spool);
      if (!spooled) {
        // make_spooling_compressor consumed the compressor: make another.
        warn("not spooling (" + spooled.error().message +
             "): the workloads stay held until compression is done");
        auto again = make_compressor(options_.compression, counted);
        if (!again) {
          return again.error();
        }
        compressor_ = std::move(*again);
      } else {
        compressor_ = std::move(*spooled);
      }
    }
    writer_.reset(archive_write_new());
    if (!writer_) {
      return make_error(errc::internal, "cannot allocate a tar writer");
    }
    // pax_restricted: plain ustar headers where they suffice (the widest
    // compatibility), pax extensions where needed (long names, large ids and
    // sizes, sub-second times, xattrs, sparse files).
    if (archive_write_set_format_pax_restricted(writer_.get()) != ARCHIVE_OK ||
        // Unblocked: every write goes straight to the compressor, which does
        // its own buffering, and the archive is not padded to 10 KiB.
        archive_write_set_bytes_per_block(writer_.get(), 0) != ARCHIVE_OK ||
        archive_write_open2(writer_.get(), this, nullptr, &archive_builder::on_write, nullptr,
                            nullptr) != ARCHIVE_OK) {
      return failure(errc::internal, "opening the tar writer");
    }
    return {};
  }

  result<void> add(const tar_stream_source& source, source_report& report) {
    report.path = read_path::tar_stream;
    pull_state pull{&source.pull, std::vector<char>(pull_buffer_size), {}, options_.stop};
    read_handle reader(archive_read_new());
    if (!reader) {
      return make_error(errc::internal, "cannot allocate a tar reader");
    }
    archive_read_support_format_tar(reader.get());
    if (archive_read_open2(reader.get(), &pull, nullptr, &archive_builder::on_pull, nullptr,
                           nullptr) != ARCHIVE_OK) {
      return stream_failure(reader.get(), pull, source.prefix);
    }
    excluded_dirs_.clear();
    for (;;) {
      if (auto r = check_stop(); !r) {
        return r;
      }
      archive_entry* entry = nullptr;
      const int r = archive_read_next_header(reader.get(), &entry);
      if (r == ARCHIVE_EOF) {
        break;
      }
      if (r < ARCHIVE_WARN) {
        return stream_failure(reader.get(), pull, source.prefix);
      }
      const char* original = archive_entry_pathname(entry);
      if (original == nullptr) {
        original = archive_entry_pathname_utf8(entry);
      }
      if (original == nullptr) {
        warn(source.prefix +
             ": left out an entry whose name cannot be read: " + archive_message(reader.get()));
        continue;
      }
      const std::string path = under_prefix(source.prefix, after_first_component(original));
      if (r == ARCHIVE_WARN) {
        warn(path + ": " + archive_message(reader.get()));
      }
      const bool is_dir = archive_entry_filetype(entry) == AE_IFDIR;
      if (excluded(path, is_dir)) {
        ++report.excluded;
        continue;
      }
      archive_entry_copy_pathname(entry, path.c_str());
      const char* link = archive_entry_hardlink(entry);
      if (link == nullptr) {
        link = archive_entry_hardlink_utf8(entry);
      }
      if (link != nullptr) {
        const std::string target = under_prefix(source.prefix, after_first_component(link));
        // The target's data went with the target: without it the link
        // cannot be extracted.
        if (excluded(target, false, /*record=*/false)) {
          ++report.excluded;
          warn(path + ": left out: it is a hard link to " + target + ", which is excluded");
          continue;
        }
        archive_entry_copy_hardlink(entry, target.c_str());
      }
      auto written = write_header(entry, path);
      if (!written) {
        return written.error();
      }
      if (!*written) {
        continue;
      }
      ++report.entries;
      if (archive_entry_size(entry) > 0) {
        auto copied =
            copy_data(entry, [&](const void** buf, std::size_t* size, la_int64_t* offset) {
              return archive_read_data_block(reader.get(), buf, size, offset);
            });
        if (!copied) {
          return copied.error();
        }
        if (copied->read_failed) {
          return stream_failure(reader.get(), pull, source.prefix);
        }
        report.content_bytes += copied->data_bytes;
      }
      if (auto f = finish_entry(); !f) {
        return f;
      }
    }
    // libarchive stops at the end-of-archive marker; reading on to the end
    // of the stream (padding, the end of the HTTP body) lets an engine
    // source close its connection now rather than when the sources are
    // destroyed. Whatever follows the archive is ignored, up to a bound.
    for (std::size_t drained = 0; drained < max_trailing_bytes;) {
      auto n = (*pull.pull)(std::span(pull.buffer));
      if (!n || *n == 0) {
        break;
      }
      drained += *n;
    }
    return {};
  }

  result<void> add(const directory_source& source, source_report& report) {
    report.path = read_path::direct;
    std::string root = source.root.string();
    while (root.size() > 1 && root.ends_with('/')) {
      root.pop_back();
    }
    // The root may be a symlink to the folder (followed); nothing else is.
    const int root_fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0) {
      return make_error(errc::bad_source, root + ": " + std::strerror(errno));
    }
    directory_walk walk(*this, source.prefix, report);
    if (auto r = walk.open(); !r) {
      ::close(root_fd);
      return r;
    }
    return walk.run(root_fd, root);
  }

  result<void> close() {
    if (options_.on_sources_read) {
      options_.on_sources_read();
    }
    if (archive_write_close(writer_.get()) != ARCHIVE_OK) {
      return failure(errc::io_error, "ending the archive");
    }
    if (auto r = compressor_->finish(); !r) {
      return r;
    }
    if (sink_thread_) {
      if (auto r = sink_thread_->finish(); !r) {
        return r;
      }
    }
    report_progress();
    return {};
  }

  write_report& report() { return report_; }

  void set_source_index(std::size_t i) { source_index_ = i; }

 private:
  struct pull_state {
    const pull_source* pull;
    std::vector<char> buffer;
    std::optional<error> failure;
    std::stop_token stop;
  };

  struct copy_outcome {
    std::uint64_t data_bytes = 0;  // bytes read from the source (holes excluded)
    std::uint64_t fed_bytes = 0;   // logical bytes given to the writer before padding
    bool read_failed = false;      // the source reported an error
    bool overflowed = false;       // the source had more data than the header promised
  };

  // libarchive's write callback: the uncompressed tar goes to the compressor.
  static la_ssize_t on_write(struct archive* a, void* self, const void* buffer,
                             std::size_t length) {
    auto* b = static_cast<archive_builder*>(self);
    if (b->discarding_) {
      archive_set_error(a, ECANCELED, "the archive is being discarded");
      return -1;
    }
    try {
      auto r = b->compressor_->write(std::span(static_cast<const char*>(buffer), length));
      if (!r) {
        b->sink_failure_ = r.error();
        archive_set_error(a, EIO, "%s", r.error().describe().c_str());
        return -1;
      }
    } catch (const std::exception& e) {
      b->sink_failure_ = make_error(errc::internal, e.what());
      archive_set_error(a, EIO, "%s", e.what());
      return -1;
    }
    b->report_.tar_bytes += length;
    return static_cast<la_ssize_t>(length);
  }

  // libarchive's read callback for tar streams.
  static la_ssize_t on_pull(struct archive* a, void* state, const void** buffer) {
    auto* p = static_cast<pull_state*>(state);
    if (p->stop.stop_requested()) {
      p->failure = make_error(errc::cancelled, "the backup was cancelled");
      archive_set_error(a, ECANCELED, "cancelled");
      return -1;
    }
    try {
      auto n = (*p->pull)(std::span(p->buffer));
      if (!n) {
        p->failure = n.error();
        archive_set_error(a, EIO, "%s", n.error().describe().c_str());
        return -1;
      }
      *buffer = p->buffer.data();
      return static_cast<la_ssize_t>(std::min(*n, p->buffer.size()));
    } catch (const std::exception& e) {
      p->failure = make_error(errc::source_failed, e.what());
      archive_set_error(a, EIO, "%s", e.what());
      return -1;
    }
  }

  // Reads a folder tree depth first, each folder's entries right after it
  // (GNU tar sets a folder's time when it leaves it, so an order like
  // archive_read_disk's, which lists a folder's files before its subfolders'
  // content, loses folder times on extraction). Everything is opened with
  // openat() relative to folder descriptors, never following symlinks, with
  // no chdir (archive_read_disk changes the process's working directory);
  // memory grows with the depth only (one open folder per level), never with
  // the number of files. Entries come in readdir order. libarchive's
  // archive_read_disk_entry_from_file() fills in each entry from the open
  // file (owner names, xattrs, ACLs, file flags, the sparse map); the data is
  // read here with pread() along the sparse map, so a file that changes is
  // noticed on its own descriptor.
  class directory_walk {
   public:
    directory_walk(archive_builder& builder, const std::string& prefix, source_report& report)
        : b_(builder), prefix_(prefix), report_(report), buffer_(file_buffer_size) {}

    directory_walk(const directory_walk&) = delete;
    directory_walk& operator=(const directory_walk&) = delete;

    ~directory_walk() {
      for (auto& l : stack_) {
        ::closedir(l.dir);
      }
    }

    result<void> open() {
      disk_.reset(archive_read_disk_new());
      entry_.reset(archive_entry_new());
      resolver_.reset(archive_entry_linkresolver_new());
      if (!disk_ || !entry_ || !resolver_) {
        return make_error(errc::internal, "cannot allocate a directory reader");
      }
      archive_read_disk_set_standard_lookup(disk_.get());
      // First occurrence of a multiply-linked file with its data, later ones
      // as hard links, as tar does.
      archive_entry_linkresolver_set_strategy(resolver_.get(), archive_format(b_.writer_.get()));
      return {};
    }

    // Takes ownership of `root_fd`.
    result<void> run(int root_fd, const std::string& root) {
      struct stat st {};
      if (::fstat(root_fd, &st) != 0) {
        const int err = errno;
        ::close(root_fd);
        return make_error(errc::bad_source, root + ": " + std::strerror(err));
      }
      if (auto r = visit(root_fd, st, root, prefix_, true); !r) {
        return r;
      }
      while (!stack_.empty()) {
        if (auto r = b_.check_stop(); !r) {
          return r;
        }
        level& top = stack_.back();
        errno = 0;
        const dirent* d = ::readdir(top.dir);
        if (d == nullptr) {
          if (errno != 0) {
            b_.warn(top.archive_path + ": reading the folder failed (" + std::strerror(errno) +
                    "); the rest of it is left out");
          }
          ::closedir(top.dir);
          stack_.pop_back();
          continue;
        }
        const std::string_view name = d->d_name;
        if (name == "." || name == "..") {
          continue;
        }
        if (auto r = visit_child(top, d->d_name); !r) {
          return r;
        }
      }
      return {};
    }

   private:
    struct level {
      DIR* dir;
      std::string disk_path;
      std::string archive_path;
    };

    result<void> visit_child(const level& parent, const char* name) {
      const std::string disk_path = parent.disk_path + "/" + name;
      const std::string path = parent.archive_path + "/" + name;
      const int parent_fd = ::dirfd(parent.dir);
      struct stat st {};
      if (::fstatat(parent_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        left_out(path, errno);
        return {};
      }
      const bool is_dir = S_ISDIR(st.st_mode);
      if (b_.excluded(path, is_dir)) {
        ++report_.excluded;
        return {};  // an excluded folder is not descended into
      }
      int fd = -1;
      if (S_ISREG(st.st_mode) || is_dir) {
        // Opened now, so the header and the data describe the same file.
        const int flags =
            O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | (is_dir ? O_DIRECTORY : 0);
        fd = ::openat(parent_fd, name, flags | O_NOATIME);
        if (fd < 0 && errno == EPERM) {  // O_NOATIME needs ownership or CAP_FOWNER
          fd = ::openat(parent_fd, name, flags);
        }
        if (fd < 0) {
          left_out(path, errno);
          return {};
        }
        struct stat opened {};
        if (::fstat(fd, &opened) != 0 || (opened.st_mode & S_IFMT) != (st.st_mode & S_IFMT)) {
          ::close(fd);
          b_.warn(path + ": left out: replaced while being read");
          return {};
        }
        st = opened;
      }
      return visit(fd, st, disk_path, path, false);
    }

    // Writes one entry; takes ownership of `fd` (-1 for anything but files
    // and folders). A folder whose header was written is descended into.
    result<void> visit(int fd, const struct stat& st, const std::string& disk_path,
                       const std::string& path, bool is_root) {
      struct fd_guard {
        int fd;
        ~fd_guard() {
          if (fd >= 0) {
            ::close(fd);
          }
        }
      } guard{fd};
      archive_entry* entry = entry_.get();
      archive_entry_clear(entry);
      archive_entry_copy_pathname(entry, path.c_str());
      archive_entry_copy_sourcepath(entry, disk_path.c_str());
      // A file whose allocated blocks cover its size has no holes: skip the
      // SEEK_HOLE/SEEK_DATA probe (six lseeks) for it, which is most files.
      const bool may_have_holes = S_ISREG(st.st_mode) && st.st_blocks * 512 < st.st_size;
      archive_read_disk_set_behavior(disk_.get(), may_have_holes ? 0 : ARCHIVE_READDISK_NO_SPARSE);
      const int r = archive_read_disk_entry_from_file(disk_.get(), entry, fd, &st);
      if (r < ARCHIVE_WARN) {
        if (is_root) {
          return make_error(errc::bad_source, disk_path + ": " + archive_message(disk_.get()));
        }
        b_.warn(path + ": left out: " + archive_message(disk_.get()));
        return {};
      }
      if (r == ARCHIVE_WARN) {
        b_.warn(path + ": " + archive_message(disk_.get()));
      }
      const la_int64_t promised = archive_entry_size(entry);
      const bool regular = S_ISREG(st.st_mode);
      std::vector<std::pair<la_int64_t, la_int64_t>> runs;
      if (regular) {
        la_int64_t offset = 0;
        la_int64_t length = 0;
        const int count = archive_entry_sparse_reset(entry);
        for (int i = 0;
             i < count && archive_entry_sparse_next(entry, &offset, &length) == ARCHIVE_OK; ++i) {
          runs.emplace_back(offset, length);
        }
        if (count == 0) {
          runs.emplace_back(0, promised);
        }
      }
      archive_entry* linked = entry;
      archive_entry* spare = nullptr;
      archive_entry_linkify(resolver_.get(), &linked, &spare);
      auto written = b_.write_header(linked, path);
      if (!written) {
        return written.error();
      }
      if (!*written) {
        return {};
      }
      ++report_.entries;
      if (regular && archive_entry_size(linked) > 0) {
        if (b_.options_.before_file_data) {
          b_.options_.before_file_data(disk_path);
        }
        int read_error = 0;
        std::size_t run = 0;
        la_int64_t done_in_run = 0;
        auto next_block = [&](const void** buf, std::size_t* size, la_int64_t* offset) {
          while (run < runs.size()) {
            const auto [start, length] = runs[run];
            if (done_in_run >= length) {
              ++run;
              done_in_run = 0;
              continue;
            }
            const auto want = static_cast<std::size_t>(std::min<la_int64_t>(
                static_cast<la_int64_t>(buffer_.size()), length - done_in_run));
            const ssize_t n = ::pread(guard.fd, buffer_.data(), want, start + done_in_run);
            if (n < 0) {
              if (errno == EINTR) {
                continue;
              }
              read_error = errno;
              return ARCHIVE_FAILED;
            }
            if (n == 0) {
              return ARCHIVE_EOF;  // the file shrank
            }
            *buf = buffer_.data();
            *size = static_cast<std::size_t>(n);
            *offset = start + done_in_run;
            done_in_run += n;
            return ARCHIVE_OK;
          }
          return ARCHIVE_EOF;
        };
        auto copied = b_.copy_data(linked, next_block);
        if (!copied) {
          return copied.error();
        }
        report_.content_bytes += copied->data_bytes;
        check_changed(path, guard.fd, entry, promised, *copied, read_error);
      }
      if (auto f = b_.finish_entry(); !f) {
        return f;
      }
      if (S_ISDIR(st.st_mode)) {
        DIR* dir = ::fdopendir(guard.fd);
        if (dir == nullptr) {
          b_.warn(path + ": cannot list the folder (" + std::strerror(errno) +
                  "); its content is left out");
          return {};
        }
        guard.fd = -1;  // the DIR owns it now
        stack_.push_back(level{dir, disk_path, path});
      }
      return {};
    }

    void left_out(const std::string& path, int err) {
      b_.warn(path + ": left out: " +
              (err == ENOENT ? std::string("vanished before it could be read")
                             : std::string(std::strerror(err))));
    }

    // Records a warning when a file did not stay as its header described it
    // while it was read: seen on its own descriptor, so a file that was
    // renamed away counts as vanished.
    void check_changed(const std::string& path, int fd, archive_entry* entry, la_int64_t promised,
                       const copy_outcome& copied, int read_error) {
      const auto size = static_cast<std::uint64_t>(promised);
      if (copied.read_failed) {
        b_.warn(path + ": could not be read (" + std::strerror(read_error) + "); stored as " +
                std::to_string(copied.fed_bytes) + " bytes read and " +
                std::to_string(size - std::min(size, copied.fed_bytes)) + " zero bytes");
        return;
      }
      struct stat st {};
      if (::fstat(fd, &st) != 0 || st.st_nlink == 0) {
        b_.warn(path + ": vanished while being read; stored as read");
        return;
      }
      if (copied.fed_bytes < size) {
        b_.warn(path + ": shrank while being read (" + std::to_string(copied.fed_bytes) + " of " +
                std::to_string(size) + " bytes); padded with zeros to the size in its header");
        return;
      }
      if (copied.overflowed || static_cast<std::uint64_t>(st.st_size) != size) {
        b_.warn(path + ": changed size while being read (" + std::to_string(size) + " to " +
                std::to_string(st.st_size) + " bytes); stored the first " + std::to_string(size) +
                " bytes");
        return;
      }
      if (st.st_mtim.tv_sec != archive_entry_mtime(entry) ||
          st.st_mtim.tv_nsec != archive_entry_mtime_nsec(entry)) {
        b_.warn(path + ": changed while being read; the stored content may mix old and new data");
      }
    }

    archive_builder& b_;
    const std::string& prefix_;
    source_report& report_;
    std::vector<char> buffer_;
    std::unique_ptr<struct archive, read_free> disk_;
    std::unique_ptr<archive_entry, entry_free> entry_;
    std::unique_ptr<archive_entry_linkresolver, resolver_free> resolver_;
    std::vector<level> stack_;
  };

  // Feeds an entry's data to the tar writer: the blocks `next_block` yields
  // (libarchive's archive_read_data_block), zeros for the gaps between them
  // (holes) and after the last one, up to the entry's size. A read error ends
  // the data early (the rest is zeros) and is reported, not returned: the
  // caller decides whether it fails the source.
  template <class NextBlock>
  result<copy_outcome> copy_data(archive_entry* entry, NextBlock next_block) {
    copy_outcome out;
    const auto size = static_cast<std::uint64_t>(archive_entry_size(entry));
    std::uint64_t position = 0;
    for (;;) {
      if (auto r = check_stop(); !r) {
        return r.error();
      }
      const void* buffer = nullptr;
      std::size_t length = 0;
      la_int64_t offset = 0;
      const int r = next_block(&buffer, &length, &offset);
      if (r == ARCHIVE_EOF) {
        break;
      }
      if (r < ARCHIVE_WARN) {
        out.read_failed = true;
        break;
      }
      auto start = static_cast<std::uint64_t>(std::max<la_int64_t>(offset, 0));
      const auto* bytes = static_cast<const char*>(buffer);
      if (start < position) {  // overlapping blocks: keep what was written
        const std::uint64_t skip = std::min<std::uint64_t>(position - start, length);
        bytes += skip;
        length -= skip;
        start = position;
      }
      if (start > size) {
        out.overflowed = true;
        start = size;
      }
      if (auto z = feed_zeros(start - position); !z) {
        return z.error();
      }
      position = start;
      out.data_bytes += length;
      content_since_progress_ += length;
      report_.content_bytes += length;
      auto fed =
          feed(bytes, static_cast<std::size_t>(std::min<std::uint64_t>(length, size - position)));
      if (!fed) {
        return fed.error();
      }
      if (length > size - position) {
        out.overflowed = true;
      }
      position += *fed;
      if (content_since_progress_ >= progress_interval) {
        content_since_progress_ = 0;
        report_progress();
      }
    }
    out.fed_bytes = position;
    if (position < size) {
      if (auto z = feed_zeros(size - position); !z) {
        return z.error();
      }
    }
    return out;
  }

  result<std::size_t> feed(const char* bytes, std::size_t length) {
    std::size_t done = 0;
    while (done < length) {
      const la_ssize_t n = archive_write_data(writer_.get(), bytes + done, length - done);
      if (n < 0) {
        return failure(errc::io_error, "writing an entry's data").error();
      }
      if (n == 0) {
        break;  // the entry is full
      }
      done += static_cast<std::size_t>(n);
    }
    return done;
  }

  result<void> feed_zeros(std::uint64_t count) {
    while (count > 0) {
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(count, zeros.size()));
      auto fed = feed(zeros.data(), n);
      if (!fed) {
        return fed.error();
      }
      if (*fed == 0) {
        return {};
      }
      count -= *fed;
    }
    return {};
  }

  // Writes an entry's header; false when the tar format refuses the entry
  // (a socket, say), which is a warning.
  result<bool> write_header(archive_entry* entry, const std::string& path) {
    const int r = archive_write_header(writer_.get(), entry);
    if (r == ARCHIVE_OK) {
      ++report_.entries;
      report_progress();
      return true;
    }
    if (r == ARCHIVE_WARN) {
      ++report_.entries;
      warn(path + ": " + archive_message(writer_.get()));
      return true;
    }
    if (r == ARCHIVE_FAILED) {
      warn(path + ": left out: " + archive_message(writer_.get()));
      return false;
    }
    return failure(errc::io_error, "writing the header of " + path).error();
  }

  result<void> finish_entry() {
    if (archive_write_finish_entry(writer_.get()) < ARCHIVE_WARN) {
      return failure(errc::io_error, "ending an entry");
    }
    return {};
  }

  // The error for a failed libarchive write call: the sink's own error when
  // that is what failed, else libarchive's message.
  result<void> failure(errc kind, const std::string& doing) {
    if (sink_failure_) {
      return *sink_failure_;
    }
    return make_error(kind, doing + ": " + archive_message(writer_.get()));
  }

  static result<void> stream_failure(struct archive* reader, const pull_state& pull,
                                     const std::string& prefix) {
    if (pull.failure) {
      return *pull.failure;
    }
    return make_error(errc::bad_source,
                      "the tar stream of " + prefix + ": " + archive_message(reader));
  }

  // Whether `path` is left out, by the pattern or because an ancestor was.
  // Excluded directories are recorded so that their children follow.
  bool excluded(const std::string& path, bool is_dir, bool record = true) {
    if (filter_.empty()) {
      return false;
    }
    for (std::size_t slash = path.find('/'); slash != std::string::npos;
         slash = path.find('/', slash + 1)) {
      if (excluded_dirs_.contains(std::string_view(path).substr(0, slash))) {
        return true;
      }
    }
    auto verdict = filter_.excluded(is_dir ? path + "/" : path);
    if (!verdict) {
      if (record) {
        warn(path + ": kept: " + verdict.error().message);
      }
      return false;
    }
    if (*verdict && is_dir && record) {
      excluded_dirs_.insert(path);
    }
    return *verdict;
  }

  result<void> check_stop() const {
    if (options_.stop.stop_requested()) {
      return make_error(errc::cancelled, "the backup was cancelled");
    }
    return {};
  }

  void warn(std::string message) {
    ++report_.warning_count;
    if (report_.warnings.size() < write_report::max_warnings) {
      report_.warnings.push_back(std::move(message));
    }
  }

  void report_progress() {
    if (options_.on_progress) {
      options_.on_progress(
          progress{source_index_, report_.entries, report_.content_bytes, report_.output_bytes});
    }
  }

  const write_options& options_;
  const byte_sink& sink_;
  path_filter filter_;
  std::unique_ptr<sink_thread> sink_thread_;  // outlives the compressor that feeds it
  std::unique_ptr<compressor> compressor_;
  bool discarding_ = false;  // before writer_: its destruction reads it
  write_handle writer_;
  std::optional<error> sink_failure_;
  write_report report_;
  std::set<std::string, std::less<>> excluded_dirs_;
  std::uint64_t content_since_progress_ = 0;
  std::size_t source_index_ = 0;
};

// libarchive converts names between the locale's character set and the
// UTF-8 of pax headers. In the "C" locale (a container's usual one) every
// non-ASCII name fails that conversion; under C.UTF-8 names pass through
// unchanged, and only bytes that are not UTF-8 fall back to pax's
// hdrcharset=BINARY (with a warning). uselocale() changes this thread's
// locale only, and only for the duration of one write.
class utf8_names {
 public:
  utf8_names() {
    utf8_ = ::newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(nullptr));
    if (utf8_ != static_cast<locale_t>(nullptr)) {
      previous_ = ::uselocale(utf8_);
    }
  }
  utf8_names(const utf8_names&) = delete;
  utf8_names& operator=(const utf8_names&) = delete;
  ~utf8_names() {
    if (utf8_ != static_cast<locale_t>(nullptr)) {
      ::uselocale(previous_);
      ::freelocale(utf8_);
    }
  }

 private:
  locale_t utf8_ = static_cast<locale_t>(nullptr);
  locale_t previous_ = static_cast<locale_t>(nullptr);
};

result<write_report> write_archive_unguarded(std::span<const volume_source> sources,
                                             const write_options& options, const byte_sink& sink) {
  std::set<std::string_view> prefixes;
  for (const auto& s : sources) {
    const std::string& prefix = prefix_of(s);
    if (!valid_prefix(prefix)) {
      return make_error(errc::invalid_argument,
                        "\"" + prefix +
                            "\" is not a valid prefix: a relative path without "
                            "empty, \".\" or \"..\" components");
    }
    if (!prefixes.insert(prefix).second) {
      return make_error(errc::invalid_argument, "two sources share the prefix " + prefix);
    }
  }
  auto filter = path_filter::create(options.exclude);
  if (!filter) {
    return filter.error();
  }
  archive_builder builder(options, sink, std::move(*filter));
  if (auto r = builder.open(); !r) {
    return r.error();
  }
  for (std::size_t i = 0; i < sources.size(); ++i) {
    builder.set_source_index(i);
    auto& report = builder.report();
    report.sources.push_back(source_report{prefix_of(sources[i])});
    // Reports are filled through an index: add() may push warnings, never sources.
    auto r = std::visit([&](const auto& s) { return builder.add(s, builder.report().sources[i]); },
                        sources[i]);
    if (!r) {
      return r.error();
    }
  }
  if (auto r = builder.close(); !r) {
    return r.error();
  }
  write_report& report = builder.report();
  for (const auto& s : report.sources) {
    report.excluded += s.excluded;
  }
  return std::move(report);
}

}  // namespace

result<write_report> write_archive(std::span<const volume_source> sources,
                                   const write_options& options, const byte_sink& sink) {
  const utf8_names names;
  try {
    return write_archive_unguarded(sources, options, sink);
  } catch (const std::exception& e) {
    // Out of memory, or a callback of the caller's that threw.
    return make_error(errc::internal, e.what());
  }
}

}  // namespace lifeboat::archive
