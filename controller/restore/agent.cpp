#include "controller/restore/agent.hpp"

#include "api/decode.hpp"
#include "controller/destinations/destination.hpp"
#include "controller/restore/fetch.hpp"
#include "controller/restore/runner.hpp"
#include "controller/restore/space.hpp"
#include "controller/restore/unpack.hpp"

#include <fmt/format.h>

#include <sys/resource.h>

#include <utility>
#include <vector>

namespace lifeboat::restore {

namespace fs = std::filesystem;

namespace {

void emit(std::FILE* out, const backup::agent_event& e) {
  const auto line = backup::encode_agent_event(e) + "\n";
  std::fwrite(line.data(), 1, line.size(), out);
  std::fflush(out);
}

std::string target_of(const api::volume_mapping& v) { return v.to.empty() ? v.from : v.to; }

}  // namespace

int run_restore_agent(const restore_agent_request& request, std::FILE* out,
                      const std::atomic<bool>& cancel) {
  backup::agent_event finished;
  auto finish = [&](std::string_view ended, std::string message) {
    finished.outcome = std::string(ended);
    finished.ok = ended == outcome::succeeded || ended == outcome::verified;
    finished.message = std::move(message);
    if (rusage usage{}; ::getrusage(RUSAGE_SELF, &usage) == 0) {
      finished.peak_rss = static_cast<std::uint64_t>(usage.ru_maxrss) * 1024;  // KiB on Linux
    }
    emit(out, finished);
    return finished.ok ? 0 : 1;
  };
  const auto& spec = request.restore.spec;
  if (spec.decryption) {
    return finish(outcome::invalid, "a restore agent is given no decryption keys");
  }
  std::vector<mapping> mappings;
  std::vector<fs::path> roots;
  for (const auto& v : spec.volumes) {
    mappings.push_back(mapping{v.from, target_of(v)});
    roots.emplace_back(request.volumes_root + "/" + target_of(v));
  }
  if (!spec.source && !spec.archive) {
    return finish(outcome::invalid, "the agent was given no archive");
  }
  finished.archive = spec.source ? spec.source->name : spec.archive.value_or("");
  auto opened = [&]() -> result<archive_file> {
    if (spec.source) {
      const auto from = destinations::make_destination(spec.source->destination);
      return fetch_archive(
          *from, spec.source->name,
          request.spool_folder.empty() ? fs::temp_directory_path() : request.spool_folder, &cancel);
    }
    return archive_file::open(finished.archive);
  }();
  if (!opened) {
    return finish(outcome_of(opened.error()), opened.error().message);
  }
  const archive_file& archive = *opened;
  read_options read;
  read.allow_devices = request.allow_devices;
  read.allow_absolute_symlinks = request.allow_absolute_symlinks;
  read.cancel = &cancel;
  auto verified = verify(archive, mappings, read);
  if (!verified) {
    return finish(outcome_of(verified.error()), verified.error().describe());
  }
  std::uint64_t entries = 0;
  for (const auto e : verified->entries) {
    entries += e;
  }
  std::string checked =
      fmt::format("{} entries, {} of data, {}{}", entries,
                  human_bytes(static_cast<double>(verified->content_bytes)), verified->compression,
                  verified->checksum_verified ? ", checksum verified" : ", no checksum file");
  // The room, in the volumes as this node has them; holes are kept, as on
  // the controller's direct path.
  std::vector<volume_space> spaces;
  std::vector<std::uint64_t> needs;
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < mappings.size(); ++i) {
    auto space = measure_directory(mappings[i].to, roots[i], spec.wipe);
    if (!space) {
      return finish(outcome_of(space.error()), space.error().describe());
    }
    spaces.push_back(std::move(*space));
    needs.push_back(verified->space[i].sparse);
    total += verified->space[i].sparse;
  }
  if (auto fits = check_space(spaces, needs, spec.wipe); !fits) {
    return finish(outcome::no_space, fits.error().describe());
  }
  checked += fmt::format(", fits ({} needed)", human_bytes(static_cast<double>(total)));
  if (!request.write) {
    return finish(outcome::verified, checked);
  }
  if (spec.wipe) {
    for (const auto& root : roots) {
      if (auto wiped = wipe_directory(root); !wiped) {
        return finish(outcome_of(wiped.error()), "wiping: " + wiped.error().describe());
      }
    }
  }
  auto written = extract_to_directories(archive, mappings, roots, read);
  if (!written) {
    return finish(outcome_of(written.error()), written.error().describe());
  }
  finished.bytes = written->content_bytes;
  return finish(outcome::succeeded,
                fmt::format("{} entries, {}", written->entries,
                            human_bytes(static_cast<double>(written->content_bytes))));
}

backup::job_definition restore_job(const restore_job_spec& spec) {
  backup::job_definition job;
  job.run_name = spec.run_name;
  job.labels[std::string(restore_label)] = spec.restore.metadata.name;
  job.node_id = spec.node_id;
  job.image = spec.image;
  job.args = {"restore-agent", "--run", spec.run_name};
  if (spec.write) {
    job.args.emplace_back("--write");
  }
  if (spec.allow_devices) {
    job.args.emplace_back("--allow-devices");
  }
  if (spec.allow_absolute_symlinks) {
    job.args.emplace_back("--allow-absolute-symlinks");
  }
  for (const auto& v : spec.restore.spec.volumes) {
    const auto to = target_of(v);
    job.mounts.push_back({"volume", to, "/lifeboat/" + to, !spec.write});
  }
  if (spec.restore.spec.archive) {
    // A path of the node the job runs on: a `local` destination there is
    // that node's folder.
    const auto folder = fs::path(*spec.restore.spec.archive).parent_path().string();
    job.mounts.push_back({"bind", folder, folder, true});
  }
  job.env.push_back("LIFEBOAT_RESTORE=" + api::encode_yaml(api::object(spec.restore)));
  return job;
}

}  // namespace lifeboat::restore
