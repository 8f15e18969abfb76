#include "controller/restore/runner.hpp"

namespace lifeboat::restore {

bool is_terminal(std::string_view p) { return p == phase::succeeded || p == phase::failed; }

std::string_view outcome_of(const error& e) {
  switch (e.code) {
    case errc::refused:
      return outcome::refused;
    case errc::checksum_mismatch:
      return outcome::checksum_mismatch;
    case errc::corrupt:
      return outcome::corrupt;
    case errc::cancelled:
      return outcome::cancelled;
    case errc::io_error:
    case errc::engine:
    case errc::internal:
      return outcome::write_failed;
    case errc::invalid_argument:
    case errc::missing_volume:
      return outcome::invalid;
    case errc::no_space:
      return outcome::no_space;
  }
  return outcome::invalid;
}

}  // namespace lifeboat::restore
