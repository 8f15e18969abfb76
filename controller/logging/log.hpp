#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace spdlog {
class formatter;
}

// The controller's log lines. A record's message is written at the call site
// as `key=value` pairs (`event=run_finished backup={} msg={}`), every value
// that comes from outside lifeboat passed through `value()`. The formatter
// then writes one line per record, as text or as one JSON object, and no
// value can end the line or add a field of its own.
namespace lifeboat::logging {

enum class format {
  text,  ///< `time=... level=... key=value ...`
  json,  ///< `{"time":"...","level":"...","key":"value",...}`
};

/// "text" or "json"; nullopt for anything else.
std::optional<format> parse_format(std::string_view name);

/// `text` as the value of a `key=value` pair: as is when it is a plain token
/// (printable, no space, `"`, `=` or `\`), else double-quoted with `"`, `\`
/// and control characters escaped (api::escape_quoted).
std::string value(std::string_view text);

/// One log line, ending in '\n', for a record at `time` with `level` (spdlog's
/// names: info, warning, ...) and `message` (`key=value` pairs). Text: the
/// message with any control character left in it escaped. JSON: one object
/// with time, level and the message's pairs as string members; a message that
/// is not `key=value` pairs becomes the member "msg".
std::string line(format f, std::chrono::system_clock::time_point time, std::string_view level,
                 std::string_view message);

/// An spdlog formatter that writes line().
std::unique_ptr<spdlog::formatter> make_formatter(format f);

/// Makes spdlog's default logger write line()s of `f` to stdout. Call once,
/// before other threads log.
void install(format f);

}  // namespace lifeboat::logging
