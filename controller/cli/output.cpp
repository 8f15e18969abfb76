#include "controller/cli/output.hpp"

namespace lifeboat::cli {

void write_out(std::FILE* stream, std::string_view text) noexcept {
  if (!text.empty()) {
    (void)std::fwrite(text.data(), 1, text.size(), stream);
  }
  (void)std::fflush(stream);
  std::clearerr(stream);
}

}  // namespace lifeboat::cli
