#pragma once

#include <boost/system/result.hpp>

#include <string>

// Errors of lifeboat::restic: values, never exceptions, at every I/O and
// parsing boundary (STYLE.md habit 4).
namespace lifeboat::restic {

enum class errc {
  wrong_password,  // no key file of the repository opens with the password
  corrupt,         // a MAC does not verify, or data is too short to hold one
  invalid_format,  // a file parses but a field is missing, of the wrong type or out of range
  io,              // reading or writing the repository's files failed
  internal,        // OpenSSL refused an operation that should not fail
  refused,         // a snapshot entry this restore is not allowed to write (a device node)
};

const char* to_string(errc e) noexcept;

struct error {
  errc code = errc::internal;
  std::string message;  // names what is wrong and where (file, field)

  std::string describe() const;
  bool is(errc e) const { return code == e; }
};

error make_error(errc e, std::string message);

/// Used by result<T>::value() to throw; callers normally test the result instead.
[[noreturn]] void throw_exception_from_error(const error& e, const boost::source_location& loc);

template <class T>
using result = boost::system::result<T, error>;

}  // namespace lifeboat::restic
