#include "controller/crypto/age.hpp"

#include <boost/throw_exception.hpp>

#include <stdexcept>

namespace lifeboat::crypto {

const char* to_string(errc e) noexcept {
  switch (e) {
    case errc::invalid_key:
      return "invalid key";
    case errc::no_matching_identity:
      return "no matching identity";
    case errc::corrupt:
      return "corrupt";
    case errc::truncated:
      return "truncated";
    case errc::internal:
      return "internal error";
  }
  return "unknown crypto error";
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

}  // namespace lifeboat::crypto
