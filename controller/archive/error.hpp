#pragma once

#include <boost/system/result.hpp>

#include <string>

namespace lifeboat::archive {

/// What went wrong writing or pruning archives, as callers need to tell it apart.
enum class errc {
  invalid_argument = 1,  ///< a bad option: an exclude regex that does not compile, a bad prefix
  source_failed,         ///< a tar stream could not be read (the engine broke off, say)
  bad_source,            ///< a tar stream is not a tar archive, or a directory cannot be read
  io_error,              ///< the destination could not be written, synced or renamed
  no_space,              ///< the destination is full (ENOSPC, EDQUOT)
  refused,               ///< the destination refused: missing, not a mount, no permission
  cancelled,             ///< the caller's stop token was triggered
  internal,              ///< a library call failed in a way that cannot be blamed on the input
};

/// "io error", "cancelled", ...
const char* to_string(errc e) noexcept;

/// A failure of an archive operation: its kind and a message for people, which
/// names the file or entry concerned.
struct error {
  errc code = errc::internal;
  std::string message;

  /// "io error: fsync /archive/x.tar.gz.partial: No space left on device".
  std::string describe() const;
  bool is(errc e) const { return code == e; }
};

error make_error(errc e, std::string message);

/// Used by result<T>::value() to throw; callers normally test the result instead.
[[noreturn]] void throw_exception_from_error(const error& e, const boost::source_location& loc);

template <class T>
using result = boost::system::result<T, error>;

}  // namespace lifeboat::archive
