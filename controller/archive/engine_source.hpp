#pragma once

#include "controller/archive/source.hpp"
#include "controller/engine/http.hpp"

#include <functional>
#include <string>

namespace lifeboat::archive {

/// Adapts the body of GET /containers/{id}/archive (engine::client::get_archive)
/// to a pull_source. The source owns the reader and closes its connection
/// once the body has been read (or when the source is destroyed). An engine
/// error becomes errc::source_failed (or errc::cancelled after the reader's
/// cancel()) with the engine's message.
pull_source pull_from(engine::http::body_reader reader);

/// The source for a volume read through the engine: the archive of the path
/// the volume is mounted at in the helper container, stored under `volume`.
tar_stream_source engine_volume_source(std::string volume, engine::http::body_reader reader);

/// Opens the engine's archive when the writer first reads this source, so
/// that an archive of several volumes holds one connection at a time, e.g.
///   engine_volume_source(v, [&] { return client.get_archive(id, "/" + v); })
/// A failure to open becomes errc::source_failed naming the volume.
using body_opener = std::function<engine::result<engine::http::body_reader>()>;
tar_stream_source engine_volume_source(const std::string& volume, body_opener open);

}  // namespace lifeboat::archive
