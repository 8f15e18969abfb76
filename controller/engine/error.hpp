#pragma once

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <string>
#include <type_traits>

namespace lifeboat::engine {

/// What went wrong talking to the engine, as callers need to tell it apart.
enum class errc {
  not_found = 1,   ///< 404: no such object
  conflict,        ///< 409, or "update out of sequence": someone wrote first; re-read and retry
  bad_request,     ///< 400: the engine refused what we sent (e.g. a config data change)
  unavailable,     ///< cannot connect, or the connection broke: the engine is down or restarting
  timeout,         ///< the request did not complete within its deadline
  cancelled,       ///< the caller cancelled (e.g. an events stream being closed)
  server_error,    ///< any other 5xx
  protocol_error,  ///< a response we cannot understand (malformed HTTP or JSON)
  unsupported,     ///< the engine's API version is older than we need
};

const boost::system::error_category& engine_category() noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), engine_category()};
}

/// An engine call's failure: the kind, the HTTP status when there was one, and
/// the engine's own message (or the system error's text) for people to read.
struct error {
  boost::system::error_code code;
  int http_status = 0;
  std::string message;

  /// "conflict: update out of sequence (HTTP 500)" — for logs and statuses.
  std::string describe() const;
  bool is(errc e) const { return code == make_error_code(e); }
};

/// Builds an error of kind `e` with `message`.
error make_error(errc e, std::string message, int http_status = 0);

/// Used by result<T>::value() to throw; callers normally test the result instead.
[[noreturn]] void throw_exception_from_error(const error& e, const boost::source_location& loc);

template <class T>
using result = boost::system::result<T, error>;

}  // namespace lifeboat::engine

namespace boost::system {
template <>
struct is_error_code_enum<lifeboat::engine::errc> : std::true_type {};
}  // namespace boost::system
