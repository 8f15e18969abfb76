#pragma once

#include "controller/archive/error.hpp"

#include <cstddef>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <string_view>

namespace lifeboat::archive {

/// Decides which entries an archive leaves out: archive_spec.exclude, an
/// ECMAScript regular expression searched for (not matched whole) in each
/// entry's path inside the archive, "app_db/.cache/x". A directory's path ends
/// in '/' ("app_db/.cache/"), so `\.cache/` leaves out the directory itself
/// as well as what is under it; the writer also leaves out everything under a
/// directory it left out, whether or not the child's own path matches.
///
/// Matching never recurses on the path's length (libstdc++'s backtracking
/// matcher overflows the stack on long paths and is exponential on nested
/// quantifiers): the polynomial matcher is used, except for patterns with
/// back-references, which need the backtracking one and are matched only
/// against paths of at most 1024 bytes. Thread-safe: excluded() may be called
/// from any number of threads at once.
class path_filter {
 public:
  /// Paths longer than this are never matched (and are kept).
  static constexpr std::size_t max_path_length = 8192;
  static constexpr std::size_t max_backtracking_path_length = 1024;

  /// A filter that excludes nothing.
  path_filter() = default;

  /// Compiles `pattern`; no pattern excludes nothing. Fails with
  /// errc::invalid_argument, with std::regex's reason, when it does not compile.
  static result<path_filter> create(std::optional<std::string_view> pattern);

  /// Whether `path` is left out. Fails, meaning "keep it and warn", when the
  /// path is too long to match safely or the regex engine gives up on it.
  result<bool> excluded(std::string_view path) const;

  bool empty() const { return regex_ == nullptr; }

 private:
  std::shared_ptr<const std::regex> regex_;
  std::size_t max_length_ = max_path_length;
};

}  // namespace lifeboat::archive
