#include "controller/archive/error.hpp"

#include <boost/throw_exception.hpp>

#include <stdexcept>

namespace lifeboat::archive {

const char* to_string(errc e) noexcept {
  switch (e) {
    case errc::invalid_argument:
      return "invalid argument";
    case errc::source_failed:
      return "source failed";
    case errc::bad_source:
      return "bad source";
    case errc::io_error:
      return "io error";
    case errc::no_space:
      return "no space";
    case errc::refused:
      return "destination refused";
    case errc::cancelled:
      return "cancelled";
    case errc::internal:
      return "internal error";
  }
  return "unknown archive error";
}

std::string error::describe() const {
  std::string out = to_string(code);
  if (!message.empty()) {
    out += ": ";
    out += message;
  }
  return out;
}

error make_error(errc e, std::string message) { return error{e, std::move(message)}; }

void throw_exception_from_error(const error& e, const boost::source_location& loc) {
  boost::throw_exception(std::runtime_error(e.describe()), loc);
}

}  // namespace lifeboat::archive
