#pragma once

#include <boost/system/result.hpp>

#include <string>

namespace lifeboat::restore {

/// What went wrong restoring, as callers (the CLI's exit message, the Restore's
/// status, the metric's result label) need to tell it apart.
enum class errc {
  invalid_argument = 1,  ///< a bad mapping, a missing archive, a malformed .sha256
  refused,               ///< an entry that would write outside its volume, a device node...
  missing_volume,        ///< a mapping's `from` has no entry in the archive
  checksum_mismatch,     ///< the archive's SHA-256 differs from its .sha256 file
  corrupt,               ///< the archive cannot be read to its end (truncated, damaged)
  io_error,              ///< the target folder could not be written
  engine,                ///< an engine call failed (volume, container, upload)
  cancelled,             ///< the caller's cancel flag was set
  internal,              ///< a library call failed in a way the input cannot explain
  no_space,              ///< the archive's files do not fit in a target's free space
};

/// "refused", "checksum mismatch", ...
const char* to_string(errc e) noexcept;

/// A failure of a restore: its kind and a message for people, which names the
/// archive entry concerned where there is one.
struct error {
  errc code = errc::internal;
  std::string message;

  /// "refused: entry app_db/../etc/passwd: path has a '..' component".
  std::string describe() const;
  bool is(errc e) const { return code == e; }
};

error make_error(errc e, std::string message);

/// Used by result<T>::value() to throw; callers normally test the result instead.
[[noreturn]] void throw_exception_from_error(const error& e, const boost::source_location& loc);

template <class T>
using result = boost::system::result<T, error>;

}  // namespace lifeboat::restore
