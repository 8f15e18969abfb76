#pragma once

#include "controller/archive/source.hpp"
#include "controller/engine/http.hpp"

#include <string>

namespace lifeboat::archive {

/// Adapts the body of GET /containers/{id}/archive (engine::client::get_archive)
/// to a pull_source; the source owns the reader, so the connection lives as
/// long as the source. An engine error becomes errc::source_failed (or
/// errc::cancelled after the reader's cancel()) with the engine's message.
pull_source pull_from(engine::http::body_reader reader);

/// The source for a volume read through the engine: the archive of the path
/// the volume is mounted at in the helper container, stored under `volume`.
tar_stream_source engine_volume_source(std::string volume, engine::http::body_reader reader);

}  // namespace lifeboat::archive
