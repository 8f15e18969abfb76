#pragma once

#include "controller/backup/engine_runner.hpp"

namespace lifeboat::backup {

/// The archive steps of every run: the pipeline of controller/archive (pax
/// tar, gzip on all cores / zstd / none, exclude) into an upload of the first
/// destination (visible only once complete, with a `.sha256` beside it), and
/// retention among this schedule's archives only, in each destination.
archive_steps standard_archive_steps();

}  // namespace lifeboat::backup
