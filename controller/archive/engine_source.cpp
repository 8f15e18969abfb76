#include "controller/archive/engine_source.hpp"

#include "controller/engine/error.hpp"

#include <memory>
#include <optional>
#include <utility>

namespace lifeboat::archive {

pull_source pull_from(engine::http::body_reader reader) {
  // std::function needs a copyable target; the reader is move-only. It is
  // dropped, closing its connection, as soon as the body has been read.
  auto shared = std::make_shared<std::optional<engine::http::body_reader>>(std::move(reader));
  return [shared](std::span<char> into) -> result<std::size_t> {
    if (!shared->has_value()) {
      return std::size_t{0};
    }
    auto n = (*shared)->read(into);
    if (!n) {
      const errc kind =
          n.error().is(engine::errc::cancelled) ? errc::cancelled : errc::source_failed;
      return make_error(kind, "reading the engine's archive: " + n.error().describe());
    }
    if (*n == 0) {
      shared->reset();
    }
    return *n;
  };
}

tar_stream_source engine_volume_source(std::string volume, engine::http::body_reader reader) {
  return tar_stream_source{std::move(volume), pull_from(std::move(reader))};
}

tar_stream_source engine_volume_source(const std::string& volume, body_opener open) {
  struct state {
    body_opener open;
    pull_source pull;  // set once opened
  };
  auto s = std::make_shared<state>(state{std::move(open), {}});
  return tar_stream_source{volume, [s, volume](std::span<char> into) -> result<std::size_t> {
                             if (!s->pull) {
                               auto reader = s->open();
                               if (!reader) {
                                 return make_error(errc::source_failed,
                                                   "opening the engine's archive of " + volume +
                                                       ": " + reader.error().describe());
                               }
                               s->pull = pull_from(std::move(*reader));
                             }
                             return s->pull(into);
                           }};
}

}  // namespace lifeboat::archive
