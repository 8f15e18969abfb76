#pragma once

#include "controller/backup/engine_runner.hpp"

namespace lifeboat::backup {

/// The archive steps on local directories: the pipeline of controller/archive
/// (pax tar, gzip on all cores / zstd / none, exclude), `.partial` then rename,
/// a `.sha256` beside it, retention among this schedule's files only.
archive_steps local_archive_steps();

}  // namespace lifeboat::backup
