#pragma once

#include <fmt/core.h>

#include <cstdio>
#include <string_view>
#include <utility>

// Output of the commands that hold workloads (backup, restore). Their reader
// can go away at any moment, a pipe's (`| head -1`) or a terminal's (hang-up):
// losing the output must never end or interrupt a run. SIGPIPE is ignored
// (stop_on_signals), so a write to a closed pipe fails with EPIPE, and to a
// hung-up terminal with EIO; these functions drop such output silently.
namespace lifeboat::cli {

/// Writes `text` to `stream` and flushes it; errors are ignored (and cleared,
/// so that later writes are tried again). Never throws.
void write_out(std::FILE* stream, std::string_view text) noexcept;

/// fmt::print that never throws: formats, then write_out.
template <typename... Args>
void say(std::FILE* stream, fmt::format_string<Args...> format, Args&&... args) noexcept {
  try {
    write_out(stream, fmt::format(format, std::forward<Args>(args)...));
  } catch (...) {
    // Out of memory while formatting a line for a reader: the line is lost.
  }
}

}  // namespace lifeboat::cli
