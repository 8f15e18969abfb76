#include "controller/backup/engine_runner.hpp"

#include "controller/backup/volumes.hpp"
#include "controller/quiesce/quiesce.hpp"

#include <date/tz.h>
#include <fmt/core.h>

#include <filesystem>

namespace lifeboat::backup {

namespace {

using clock = std::chrono::steady_clock;

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  return fmt::format("{:.1f} {}", bytes, units[u]);
}

}  // namespace

engine_runner::engine_runner(const engine::client& client, quiesce::journal_store& journals,
                             archive_steps steps, runner_options options)
    : client_(client),
      journals_(journals),
      steps_(std::move(steps)),
      options_(std::move(options)) {}

run_result engine_runner::run(const api::backup_schedule& schedule, const std::string& run_name,
                              const phase_reporter& report, const held_reporter& holding,
                              const std::atomic<bool>& cancel) {
  const auto start = clock::now();
  run_result result;
  auto fail = [&](std::string message) {
    result.ok = false;
    result.message = std::move(message);
    result.duration = clock::now() - start;
    return result;
  };
  const auto& spec = schedule.spec;

  auto volumes = resolve_volumes(client_, spec);
  if (!volumes) {
    return fail(volumes.error().message);
  }
  std::vector<std::string> names;
  for (const auto& v : *volumes) {
    names.push_back(v.name);
  }
  std::string image = options_.helper_image;
  if (image.empty()) {
    image = own_image(client_).value_or("");
  }
  if (image.empty()) {
    return fail(
        "no image for the volume container: run lifeboat in a container, or pass "
        "--helper-image");
  }
  // A container left by a run that died has the same name: remove it first.
  const std::string container_name = "lifeboat-read-" + run_name;
  (void)client_.remove_container(container_name, true);
  auto reader = volume_container::create(client_, image, names, /*read_only=*/true, container_name);
  if (!reader) {
    return fail("creating the volume container: " + reader.error().describe());
  }

  // All destinations get the same file name, from the schedule's zone.
  const auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  const auto local_now = date::locate_zone(spec.timezone)->to_local(now);
  const std::string stem =
      api::expand_archive_name(spec.archive.name, schedule.metadata.name,
                               std::chrono::local_seconds{local_now.time_since_epoch()});
  std::vector<std::string> directories;
  for (const auto& d : spec.destinations) {
    directories.push_back(std::get<api::local_destination>(d).path);
  }
  // The first destination is written while held; the others are copies.
  archive_request request{names,        [&](const std::string& v) { return reader->read(v); },
                          spec.archive, directories.front(),
                          stem,         &cancel};

  std::optional<engine::result<archive_written>> written;
  report(phase::quiescing, "");
  const auto held = quiesce::with_quiesced(
      client_, journals_, quiesce::quiesce_run{run_name, spec.stop_during_backup},
      spec.timeouts.scale_down, spec.timeouts.scale_up, [&](int workloads) {
        holding(workloads);
        report(phase::archiving,
               fmt::format("reading {} volume(s), {} workload(s) held", names.size(), workloads));
        written = steps_.write(request);
        report(phase::resuming, "");
      });
  holding(0);
  result.downtime = held.held;
  if (!held.quiesce.ok) {
    return fail("quiescing failed: " + held.quiesce.message +
                (held.resume.ok ? "" : "; resuming failed: " + held.resume.message));
  }
  if (!written || !*written) {
    // The write step removes its own partial file when it fails.
    const std::string why = written ? written->error().message : "the archive was not written";
    return fail("archiving failed: " + why +
                (held.resume.ok ? "" : "; resuming failed: " + held.resume.message));
  }
  const auto& archive = **written;

  report(phase::shipping, "");
  if (auto published = steps_.publish(archive); !published) {
    return fail("publishing the archive failed: " + published.error().message);
  }
  for (std::size_t i = 1; i < directories.size(); ++i) {
    const auto target = std::filesystem::path(directories[i]) /
                        std::filesystem::path(archive.final_path).filename();
    std::error_code ec;
    std::filesystem::create_directories(directories[i], ec);
    // The checksum first, then the archive, each under a temporary name: a
    // visible archive always has its checksum beside it.
    for (const std::string suffix : {".sha256", ""}) {
      const std::string to = target.string() + suffix;
      if (!ec) {
        std::filesystem::copy_file(archive.final_path + suffix, to + ".partial",
                                   std::filesystem::copy_options::overwrite_existing, ec);
      }
      if (!ec) {
        std::filesystem::rename(to + ".partial", to, ec);
      }
    }
    if (ec) {
      return fail("copying to " + directories[i] + " failed: " + ec.message());
    }
  }

  report(phase::pruning, "");
  std::string pruned;
  for (const auto& dir : directories) {
    auto p = steps_.prune(schedule, dir);
    if (!p) {
      return fail("pruning " + dir + " failed: " + p.error().message);
    }
    pruned += pruned.empty() ? *p : "; " + *p;
  }

  result.ok = true;
  result.archive = archive.final_path;
  result.size_bytes = static_cast<double>(archive.bytes);
  result.duration = clock::now() - start;
  result.message = fmt::format(
      "{} volume(s), {}, held {:.1f}s{}{}", names.size(), human_bytes(result.size_bytes),
      result.downtime.count(), held.resume.ok ? "" : "; resuming: " + held.resume.message,
      archive.warnings.empty() ? "" : fmt::format("; {} warning(s)", archive.warnings.size()));
  return result;
}

}  // namespace lifeboat::backup
