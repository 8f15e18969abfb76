#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>

// A one-line progress display for long runs (backup, restore) on a terminal.
namespace lifeboat::cli {

/// Shows "read 1.2 GiB at 310 MiB/s, wrote 640 MiB" on stderr, redrawn in
/// place at most four times a second, when stderr is a terminal; does nothing
/// otherwise, so logs and pipes never get carriage returns. Thread-safe:
/// updates come from the writing thread, clear() from whichever prints a line.
class terminal_progress {
 public:
  terminal_progress();

  bool enabled() const { return enabled_; }

  /// The totals so far (not increments).
  void update(std::uint64_t read_bytes, std::uint64_t written_bytes);

  /// Erases the line, so that the next line printed starts clean.
  void clear();

 private:
  using clock = std::chrono::steady_clock;

  bool enabled_;
  std::mutex mutex_;
  clock::time_point started_;
  clock::time_point last_draw_{};
  bool drawn_ = false;
};

}  // namespace lifeboat::cli
