#include "controller/backup/archive_steps.hpp"

#include "controller/archive/engine_source.hpp"
#include "controller/archive/name_pattern.hpp"
#include "controller/archive/retention.hpp"
#include "controller/archive/transforms.hpp"
#include "controller/archive/writer.hpp"

#include <date/tz.h>

#include <filesystem>
#include <stop_token>

namespace lifeboat::backup {

namespace {

// Streams the volumes through the archive writer (pax tar; gzip in parallel
// blocks, zstd on every core, or none) into an upload of the destination,
// hashed on the way; publish() makes it visible.
archive::result<archive_written> write_archive(const archive_request& req) {
  auto begun = req.destination->begin(req.file_name);
  if (!begun) {
    return begun.error();
  }
  // Without commit, the partial upload goes when the last handle does.
  std::shared_ptr<destinations::upload> pending = std::move(*begun);

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
  if (const auto folder = req.destination->spool_folder(); req.spool_limit > 0 && !folder.empty()) {
    options.spool = archive::spool_options{folder, req.spool_limit};
  }
  options.on_progress = [&](const archive::progress& p) {
    check_cancel();
    if (req.on_progress) {
      req.on_progress({p.content_bytes, p.output_bytes});
    }
  };
  options.on_sources_read = req.on_sources_read;

  // Encryption is the last link before the upload. An upload's own error
  // (no space, refused) is kept as it is, not turned into an encryption
  // error, so the run's failure kind still says what happened.
  std::optional<archive::error> upload_failure;
  std::unique_ptr<crypto::encryptor> encrypt;
  if (!req.recipients.empty() || req.openpgp) {
    auto to_upload = [&](std::span<const char> bytes) -> crypto::result<void> {
      if (auto written = pending->write(bytes); !written) {
        upload_failure = written.error();
        return crypto::error{crypto::errc::internal, written.error().message};
      }
      return {};
    };
    auto made = req.openpgp ? crypto::make_openpgp_encryptor(*req.openpgp, to_upload)
                            : crypto::encryptor::make(req.recipients, to_upload);
    if (!made) {
      pending->abandon();
      return archive::make_error(archive::errc::invalid_argument,
                                 "encrypting: " + made.error().message);
    }
    encrypt = std::move(*made);
  }
  auto encryption_failed = [&](const crypto::error& e) {
    return upload_failure
               ? *upload_failure
               : archive::make_error(archive::errc::internal, "encrypting: " + e.message);
  };
  check_cancel();
  auto report = archive::write_archive(sources, options,
                                       [&](std::span<const char> bytes) -> archive::result<void> {
                                         if (!encrypt) {
                                           return pending->write(bytes);
                                         }
                                         if (auto written = encrypt->write(bytes); !written) {
                                           return encryption_failed(written.error());
                                         }
                                         return {};
                                       });
  if (report && encrypt) {
    if (auto finished = encrypt->finish(); !finished) {
      pending->abandon();
      return encryption_failed(finished.error());
    }
  }
  if (!report) {
    pending->abandon();
    return report.error();
  }
  archive_written w;
  w.file_name = req.file_name;
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

// Checksum, rename, folder fsync (the upload's commit), then `latest`, whose
// failure is a warning: the archive is safe by then, and pruning must go on.
archive::result<std::pair<destinations::published_archive, std::string>> publish_archive(
    const archive_written& w, destinations::destination& destination) {
  auto committed = w.pending->commit();
  if (!committed) {
    return committed.error();
  }
  return std::pair{*committed, destination.point_latest(w.file_name)};
}

// Leftovers of interrupted runs of this schedule, then retention among its
// own archives only.
archive::result<std::string> prune_destination(const api::backup_schedule& schedule,
                                               destinations::destination& destination) {
  auto leftovers = destination.remove_leftovers(name_pattern_of(schedule));
  if (!leftovers) {
    return leftovers.error();
  }
  auto pruned = apply_retention(schedule, destination);
  if (!pruned) {
    return pruned.error();
  }
  return "pruned " + std::to_string(*pruned) + " archive(s)" +
         (leftovers->empty() ? ""
                             : ", removed " + std::to_string(leftovers->size()) + " leftover(s)");
}

}  // namespace

archive::archive_name_pattern name_pattern_of(const api::backup_schedule& schedule) {
  return {schedule.spec.archive.name, schedule.metadata.name,
          archive::archive_extension(archive::transform_chain(schedule.spec.archive))};
}

archive::result<std::size_t> apply_retention(const api::backup_schedule& schedule,
                                             destinations::destination& destination) {
  if (!schedule.spec.retention) {
    return 0;
  }
  auto files = destination.list();
  if (!files) {
    return files.error();
  }
  // The calendar rules count the days (hours, weeks...) of the schedule's zone.
  const auto* zone = date::locate_zone(schedule.spec.timezone);
  const auto plan = archive::plan_retention(
      *files, name_pattern_of(schedule), *schedule.spec.retention, std::chrono::system_clock::now(),
      [zone](std::chrono::system_clock::time_point t) { return zone->get_info(t).offset; });
  std::size_t removed = 0;
  for (const auto& name : plan.remove) {
    if (auto done = destination.remove(name); !done) {
      return done.error();
    }
    ++removed;
  }
  return removed;
}

archive_steps standard_archive_steps() {
  return {write_archive, publish_archive, prune_destination};
}

}  // namespace lifeboat::backup
