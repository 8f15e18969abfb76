#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace lifeboat::api {

/// Parses a duration written as a sequence of <digits><unit> with units `h`, `m`
/// and `s`, each at most once and in that order: "90s", "5m", "1h30m", "2h".
/// Returns nullopt for anything else (empty text, a zero total, unknown or
/// repeated units, overflow past 100 years). The caller names the field.
std::optional<std::chrono::seconds> parse_duration(std::string_view text);

/// The shortest text parse_duration reads back as `d`: 5400s -> "1h30m", 0 -> "0s".
std::string format_duration(std::chrono::seconds d);

}  // namespace lifeboat::api
