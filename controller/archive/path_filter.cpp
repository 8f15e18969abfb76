#include "controller/archive/path_filter.hpp"

namespace lifeboat::archive {

namespace {

// A search for ".*X" finds a match exactly when a search for "X" does, and
// the polynomial matcher is quadratic in the path's length with the leading
// ".*" (every start position scans to the end) but not without it. Users
// write `.*\.log$` often enough for this to matter on 100 000 files.
std::string_view without_leading_any(std::string_view pattern) {
  std::string_view rest = pattern;
  while (rest.starts_with(".*")) {
    std::string_view next = rest.substr(2);
    if (next.starts_with('?')) {
      next.remove_prefix(1);
    }
    if (next.empty() || next.front() == '*' || next.front() == '+' || next.front() == '{' ||
        next.front() == '?') {
      break;
    }
    rest = next;
  }
  return rest;
}

}  // namespace

result<path_filter> path_filter::create(std::optional<std::string_view> pattern) {
  path_filter filter;
  if (!pattern) {
    return filter;
  }
  const std::string text(without_leading_any(*pattern));
  try {
#if defined(__GLIBCXX__)
    try {
      filter.regex_ = std::make_shared<const std::regex>(
          text, std::regex::ECMAScript | std::regex_constants::__polynomial);
      return filter;
    } catch (const std::regex_error& e) {
      // Only patterns with back-references are refused in polynomial mode.
      if (e.code() != std::regex_constants::error_complexity) {
        throw;
      }
    }
#endif
    filter.regex_ = std::make_shared<const std::regex>(text, std::regex::ECMAScript);
    filter.max_length_ = max_backtracking_path_length;
    return filter;
  } catch (const std::regex_error& e) {
    return make_error(errc::invalid_argument,
                      "exclude pattern \"" + std::string(*pattern) + "\": " + e.what());
  }
}

result<bool> path_filter::excluded(std::string_view path) const {
  if (!regex_) {
    return false;
  }
  if (path.size() > max_length_) {
    return make_error(errc::invalid_argument,
                      "not matched against the exclude pattern: longer than " +
                          std::to_string(max_length_) + " bytes");
  }
  try {
    return std::regex_search(path.begin(), path.end(), *regex_);
  } catch (const std::regex_error& e) {
    return make_error(errc::invalid_argument,
                      std::string("not matched against the exclude pattern: ") + e.what());
  } catch (const std::bad_alloc&) {
    return make_error(errc::invalid_argument,
                      "not matched against the exclude pattern: out of memory");
  }
}

}  // namespace lifeboat::archive
