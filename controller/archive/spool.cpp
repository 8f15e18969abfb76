#include "controller/archive/spool.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace lifeboat::archive {

namespace {

// The compressor copies what it is fed into its own blocks, so a feed larger
// than a block only adds memory.
constexpr std::size_t feed_size = std::size_t{256} << 10;
// Consumed parts of the spool are released in steps of this size, so the
// file's disk use stays near the bytes waiting rather than the bytes written.
constexpr std::uint64_t release_step = std::uint64_t{64} << 20;

error io_failure(const std::string& what) {
  return make_error(errc::io_error, what + ": " + std::strerror(errno));
}

class spooling_compressor final : public compressor {
 public:
  spooling_compressor(std::unique_ptr<compressor> inner, int fd, std::uint64_t limit)
      : inner_(std::move(inner)), fd_(fd), limit_(std::max<std::uint64_t>(limit, feed_size)) {
    feeder_ = std::jthread([this] { feed(); });
  }

  spooling_compressor(const spooling_compressor&) = delete;
  spooling_compressor& operator=(const spooling_compressor&) = delete;

  ~spooling_compressor() override {
    {
      const std::lock_guard lock(mutex_);
      abandoned_ = true;
    }
    changed_.notify_all();
    if (feeder_.joinable()) {
      feeder_.join();
    }
    ::close(fd_);
  }

  result<void> write(std::span<const char> data) override {
    while (!data.empty()) {
      std::uint64_t at = 0;
      std::size_t n = 0;
      {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] { return failure_ || written_ - consumed_ < limit_; });
        if (failure_) {
          return *failure_;
        }
        at = written_;
        n = static_cast<std::size_t>(
            std::min<std::uint64_t>(data.size(), limit_ - (written_ - consumed_)));
      }
      // Only this thread appends, and the feeder reads below written_ only.
      std::size_t done = 0;
      while (done < n) {
        const ssize_t w =
            ::pwrite(fd_, data.data() + done, n - done, static_cast<off_t>(at + done));
        if (w < 0 && errno == EINTR) {
          continue;
        }
        if (w <= 0) {
          return fail(io_failure("writing the spool"));
        }
        done += static_cast<std::size_t>(w);
      }
      {
        const std::lock_guard lock(mutex_);
        written_ += n;
      }
      changed_.notify_all();
      data = data.subspan(n);
    }
    return {};
  }

  result<void> finish() override {
    {
      std::unique_lock lock(mutex_);
      finishing_ = true;
      changed_.notify_all();
      changed_.wait(lock, [&] { return failure_ || drained_; });
      if (failure_) {
        return *failure_;
      }
    }
    feeder_.join();
    return inner_->finish();
  }

 private:
  result<void> fail(error e) {
    {
      const std::lock_guard lock(mutex_);
      if (!failure_) {
        failure_ = std::move(e);
      }
    }
    changed_.notify_all();
    return *failure_;
  }

  // The feeder thread: spool -> inner compressor, in order.
  void feed() {
    std::vector<char> buffer(feed_size);
    std::uint64_t released = 0;
    for (;;) {
      std::uint64_t at = 0;
      std::size_t n = 0;
      {
        std::unique_lock lock(mutex_);
        changed_.wait(lock,
                      [&] { return abandoned_ || failure_ || consumed_ < written_ || finishing_; });
        if (abandoned_ || failure_) {
          return;
        }
        if (consumed_ == written_) {
          drained_ = true;  // finishing_ and nothing left
          changed_.notify_all();
          return;
        }
        at = consumed_;
        n = static_cast<std::size_t>(std::min<std::uint64_t>(feed_size, written_ - consumed_));
      }
      std::size_t got = 0;
      while (got < n) {
        const ssize_t r = ::pread(fd_, buffer.data() + got, n - got, static_cast<off_t>(at + got));
        if (r < 0 && errno == EINTR) {
          continue;
        }
        if (r <= 0) {
          (void)fail(io_failure("reading the spool"));
          return;
        }
        got += static_cast<std::size_t>(r);
      }
      if (auto r = inner_->write(std::span<const char>(buffer.data(), n)); !r) {
        (void)fail(r.error());
        return;
      }
      {
        const std::lock_guard lock(mutex_);
        consumed_ += n;
      }
      changed_.notify_all();
      if (at + n - released >= release_step) {
        // Gives the consumed blocks back to the file system; the file keeps
        // its size, as a hole. Best effort: without it disk use is the whole
        // stream rather than the limit.
        const std::uint64_t upto = (at + n) / release_step * release_step;
        (void)::fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                          static_cast<off_t>(released), static_cast<off_t>(upto - released));
        released = upto;
      }
    }
  }

  std::unique_ptr<compressor> inner_;
  const int fd_;
  const std::uint64_t limit_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::uint64_t written_ = 0;   // bytes appended to the spool
  std::uint64_t consumed_ = 0;  // bytes handed to inner_
  bool finishing_ = false;
  bool drained_ = false;
  bool abandoned_ = false;
  std::optional<error> failure_;
  std::jthread feeder_;  // last: started once everything above exists
};

}  // namespace

result<std::unique_ptr<compressor>> make_spooling_compressor(std::unique_ptr<compressor> inner,
                                                             const spool_options& options) {
  const int fd = ::open(options.directory.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) {
    return io_failure("creating a spool file in " + options.directory.string());
  }
  return std::unique_ptr<compressor>(
      std::make_unique<spooling_compressor>(std::move(inner), fd, options.limit));
}

}  // namespace lifeboat::archive
