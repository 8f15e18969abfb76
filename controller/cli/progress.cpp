#include "controller/cli/progress.hpp"

#include "controller/cli/output.hpp"

#include "controller/backup/runner.hpp"

#include <fmt/core.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace lifeboat::cli {

terminal_progress::terminal_progress()
    : enabled_(::isatty(STDERR_FILENO) == 1), started_(clock::now()) {}

void terminal_progress::update(std::uint64_t read_bytes, std::uint64_t written_bytes) {
  if (!enabled_) {
    return;
  }
  const std::lock_guard lock(mutex_);
  const auto now = clock::now();
  if (drawn_ && now - last_draw_ < std::chrono::milliseconds(250)) {
    return;
  }
  last_draw_ = now;
  drawn_ = true;
  const std::chrono::duration<double> elapsed = now - started_;
  const double rate = elapsed.count() > 0 ? static_cast<double>(read_bytes) / elapsed.count() : 0;
  // \x1b[K clears the rest of a longer previous line.
  say(stderr, "\r  read {} at {}/s, wrote {}\x1b[K",
      backup::human_bytes(static_cast<double>(read_bytes)), backup::human_bytes(rate),
      backup::human_bytes(static_cast<double>(written_bytes)));
}

void terminal_progress::clear() {
  if (!enabled_) {
    return;
  }
  const std::lock_guard lock(mutex_);
  if (drawn_) {
    say(stderr, "\r\x1b[K");
    drawn_ = false;
  }
}

}  // namespace lifeboat::cli
