#include "controller/archive/engine_source.hpp"

#include "controller/engine/error.hpp"

#include <memory>
#include <utility>

namespace lifeboat::archive {

pull_source pull_from(engine::http::body_reader reader) {
  // std::function needs a copyable target; the reader is move-only.
  auto shared = std::make_shared<engine::http::body_reader>(std::move(reader));
  return [shared](std::span<char> into) -> result<std::size_t> {
    auto n = shared->read(into);
    if (!n) {
      const errc kind =
          n.error().is(engine::errc::cancelled) ? errc::cancelled : errc::source_failed;
      return make_error(kind, "reading the engine's archive: " + n.error().describe());
    }
    return *n;
  };
}

tar_stream_source engine_volume_source(std::string volume, engine::http::body_reader reader) {
  return tar_stream_source{std::move(volume), pull_from(std::move(reader))};
}

}  // namespace lifeboat::archive
