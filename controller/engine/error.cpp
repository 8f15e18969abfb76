#include "controller/engine/error.hpp"

#include <boost/throw_exception.hpp>

#include <stdexcept>

namespace lifeboat::engine {

namespace {

class category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "lifeboat.engine"; }

  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::not_found:
        return "not found";
      case errc::conflict:
        return "conflict";
      case errc::bad_request:
        return "bad request";
      case errc::unavailable:
        return "engine unavailable";
      case errc::timeout:
        return "timeout";
      case errc::cancelled:
        return "cancelled";
      case errc::server_error:
        return "engine error";
      case errc::protocol_error:
        return "protocol error";
      case errc::unsupported:
        return "unsupported engine";
    }
    return "unknown engine error";
  }
};

}  // namespace

const boost::system::error_category& engine_category() noexcept {
  static const category instance;
  return instance;
}

std::string error::describe() const {
  std::string out = code.message();
  if (!message.empty()) {
    out += ": ";
    out += message;
  }
  if (http_status != 0) {
    out += " (HTTP " + std::to_string(http_status) + ")";
  }
  return out;
}

error make_error(errc e, std::string message, int http_status) {
  return error{make_error_code(e), http_status, std::move(message)};
}

void throw_exception_from_error(const error& e, const boost::source_location& loc) {
  boost::throw_exception(std::runtime_error(e.describe()), loc);
}

}  // namespace lifeboat::engine
