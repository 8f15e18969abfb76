#include "controller/backup/archive_steps.hpp"

#include "controller/archive/engine_source.hpp"
#include "controller/archive/local_destination.hpp"
#include "controller/archive/name_pattern.hpp"
#include "controller/archive/retention.hpp"
#include "controller/archive/writer.hpp"

#include <filesystem>

namespace lifeboat::backup {

namespace fs = std::filesystem;

namespace {

engine::error failure(std::string message) {
  return engine::make_error(engine::errc::server_error, std::move(message));
}

// Streams the volumes through the archive writer (pax tar; gzip in parallel
// blocks, zstd on every core, or none) into "<name>.partial", hashed on the
// way; publish() makes it visible.
engine::result<archive_written> write_archive(const archive_request& req) {
  const std::string file_name =
      req.file_stem + std::string(api::archive_extension(req.spec.compression));
  // A destination folder per schedule (e.g. /archive/<schedule>) is made on
  // first use.
  std::error_code ec;
  fs::create_directories(req.directory, ec);
  if (ec) {
    return failure("creating " + req.directory + ": " + ec.message());
  }
  auto file = archive::local_archive_file::create(req.directory, file_name);
  if (!file) {
    return failure(file.error().describe());
  }
  auto pending = std::make_shared<archive::local_archive_file>(std::move(*file));

  std::vector<archive::volume_source> sources;
  for (const auto& volume : req.volumes) {
    // Opened when the writer reaches it: one engine connection at a time, and
    // no stream left idle (and timing out) while earlier volumes are read.
    auto source =
        archive::engine_volume_source(volume, [&req, volume] { return req.open(volume); });
    // Cancelling (SIGTERM) ends the read at the next buffer.
    source.pull = [pull = std::move(source.pull),
                   cancel = req.cancel](std::span<char> into) -> archive::result<std::size_t> {
      if (cancel != nullptr && cancel->load()) {
        return archive::make_error(archive::errc::cancelled, "cancelled");
      }
      return pull(into);
    };
    sources.emplace_back(std::move(source));
  }

  archive::write_options options;
  options.compression.kind = req.spec.compression;
  options.compression.level = req.spec.level;
  options.exclude = req.spec.exclude;
  auto report = archive::write_archive(sources, options, pending->sink());
  if (!report) {
    return failure(report.error().describe());
  }
  archive_written w;
  w.final_path = (fs::path(req.directory) / file_name).string();
  w.bytes = pending->bytes_written();
  w.warnings = report->warnings;
  w.pending = std::move(pending);
  return w;
}

// Checksum, rename, folder fsync (local_archive_file::commit), then `latest`.
engine::result<void> publish_archive(const archive_written& w) {
  auto* file = static_cast<archive::local_archive_file*>(w.pending.get());
  auto committed = file->commit();
  if (!committed) {
    return failure(committed.error().describe());
  }
  const fs::path path(w.final_path);
  auto linked = archive::update_latest_link(path.parent_path(), "latest", path.filename().string());
  if (!linked) {
    return failure(linked.error().describe());
  }
  return {};
}

// Leftovers of interrupted runs of this schedule, then retention among its
// own archives only.
engine::result<std::string> prune_directory(const api::backup_schedule& schedule,
                                            const std::string& directory) {
  const auto& spec = schedule.spec;
  const archive::archive_name_pattern pattern(spec.archive.name, schedule.metadata.name,
                                              api::archive_extension(spec.archive.compression));
  auto leftovers = archive::remove_leftovers(directory, pattern);
  if (!leftovers) {
    return failure(leftovers.error().describe());
  }
  std::size_t pruned = 0;
  if (spec.retention) {
    auto files = archive::list_archive_files(directory);
    if (!files) {
      return failure(files.error().describe());
    }
    const auto plan =
        archive::plan_retention(*files, pattern, *spec.retention, std::chrono::system_clock::now());
    auto removed = archive::remove_archives(directory, plan.remove);
    if (!removed) {
      return failure(removed.error().describe());
    }
    pruned = plan.remove.size();
  }
  return "pruned " + std::to_string(pruned) + " archive(s)" +
         (leftovers->empty() ? ""
                             : ", removed " + std::to_string(leftovers->size()) + " leftover(s)");
}

}  // namespace

archive_steps local_archive_steps() { return {write_archive, publish_archive, prune_directory}; }

}  // namespace lifeboat::backup
