#include "controller/restic/error.hpp"

#include <boost/throw_exception.hpp>

#include <stdexcept>

namespace lifeboat::restic {

const char* to_string(errc e) noexcept {
  switch (e) {
    case errc::wrong_password:
      return "wrong password";
    case errc::corrupt:
      return "corrupt";
    case errc::invalid_format:
      return "invalid format";
    case errc::io:
      return "i/o error";
    case errc::internal:
      return "internal error";
    case errc::refused:
      return "refused";
  }
  return "unknown restic error";
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

}  // namespace lifeboat::restic
