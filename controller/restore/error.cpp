#include "controller/restore/error.hpp"

#include <boost/throw_exception.hpp>

#include <stdexcept>

namespace lifeboat::restore {

const char* to_string(errc e) noexcept {
  switch (e) {
    case errc::invalid_argument:
      return "invalid argument";
    case errc::refused:
      return "refused";
    case errc::missing_volume:
      return "missing volume";
    case errc::checksum_mismatch:
      return "checksum mismatch";
    case errc::corrupt:
      return "corrupt archive";
    case errc::io_error:
      return "io error";
    case errc::engine:
      return "engine error";
    case errc::cancelled:
      return "cancelled";
    case errc::internal:
      return "internal error";
    case errc::no_space:
      return "not enough space";
  }
  return "unknown restore error";
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

}  // namespace lifeboat::restore
