#include "controller/backup/archive_steps.hpp"

#include "controller/archive/engine_source.hpp"
#include "controller/archive/local_destination.hpp"
#include "controller/archive/name_pattern.hpp"
#include "controller/archive/retention.hpp"
#include "controller/archive/writer.hpp"

#include <filesystem>
#include <stop_token>

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
    if (!volume.directory.empty()) {
      sources.emplace_back(archive::directory_source{volume.name, volume.directory});
      continue;
    }
    // Opened when the writer reaches it: one engine connection at a time, and
    // no stream left idle (and timing out) while earlier volumes are read.
    sources.emplace_back(archive::engine_volume_source(
        volume.name, [&req, name = volume.name] { return req.open(name); }));
  }

  // Cancelling (SIGTERM) ends the write at the next buffer: the writer checks
  // its stop token between buffers, and progress is reported at least every
  // 8 MiB, so a cancel is seen within a few MiB whichever way a volume is read.
  std::stop_source stop;
  auto check_cancel = [&] {
    if (req.cancel != nullptr && req.cancel->load()) {
      stop.request_stop();
    }
  };
  for (auto& source : sources) {
    if (auto* stream = std::get_if<archive::tar_stream_source>(&source)) {
      stream->pull = [pull = std::move(stream->pull),
                      cancel = req.cancel](std::span<char> into) -> archive::result<std::size_t> {
        if (cancel != nullptr && cancel->load()) {
          return archive::make_error(archive::errc::cancelled, "cancelled");
        }
        return pull(into);
      };
    }
  }

  archive::write_options options;
  options.compression.kind = req.spec.compression;
  options.compression.level = req.spec.level;
  options.exclude = req.spec.exclude;
  options.stop = stop.get_token();
  if (req.spool_limit > 0) {
    options.spool = archive::spool_options{req.directory, req.spool_limit};
  }
  options.on_progress = [&](const archive::progress& p) {
    check_cancel();
    if (req.on_progress) {
      req.on_progress({p.content_bytes, p.output_bytes});
    }
  };
  options.on_sources_read = req.on_sources_read;
  check_cancel();
  auto report = archive::write_archive(sources, options, pending->sink());
  if (!report) {
    return failure(report.error().describe());
  }
  archive_written w;
  w.final_path = (fs::path(req.directory) / file_name).string();
  w.bytes = pending->bytes_written();
  w.warnings = report->warnings;
  w.warning_count = report->warning_count;
  for (const auto& source : report->sources) {
    w.read_paths.push_back(source.prefix + ": " + std::string(archive::to_string(source.path)));
    // Only the volume's own folder: either it is empty, or its data was not
    // there to read (a mount that was not mounted). Said first, loudly: an
    // archive without the data must never pass for a good backup silently.
    if (source.entries <= 1 && source.excluded == 0) {
      w.warnings.insert(w.warnings.begin(), "volume " + source.prefix + " holds no files");
      ++w.warning_count;
    }
  }
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
