#include "controller/restore/engine_runner.hpp"

#include "api/labels.hpp"
#include "controller/archive/name_pattern.hpp"
#include "controller/backup/agent_job.hpp"
#include "controller/crypto/spec_keys.hpp"
#include "controller/destinations/destination.hpp"
#include "controller/quiesce/quiesce.hpp"
#include "controller/restic/restore.hpp"
#include "controller/restore/agent.hpp"
#include "controller/restore/fetch.hpp"
#include "controller/restore/restic_source.hpp"
#include "controller/restore/space.hpp"
#include "reconcilers/placement.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <array>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <utility>

namespace lifeboat::restore {

namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
using clock = std::chrono::steady_clock;

// Mounted here, so that one PUT at the parent writes every target volume.
constexpr std::string_view mount_root = "/lifeboat";

error engine_failure(const std::string& what, const engine::error& e) {
  return make_error(errc::engine, what + ": " + e.describe());
}

json::array mounts_of(const std::vector<std::string>& volumes, bool read_only = false) {
  json::array mounts;
  for (const auto& v : volumes) {
    mounts.push_back(json::object{{"Type", "volume"},
                                  {"Source", v},
                                  {"Target", restore_mount_path(v)},
                                  {"ReadOnly", read_only}});
  }
  return mounts;
}

// A container of this run, removed (forced) when the guard goes.
class container_guard {
 public:
  container_guard(const engine::client& client, std::string id)
      : client_(client), id_(std::move(id)) {}
  container_guard(const container_guard&) = delete;
  container_guard& operator=(const container_guard&) = delete;
  ~container_guard() { (void)client_.remove_container(id_, true); }
  const std::string& id() const { return id_; }

 private:
  const engine::client& client_;
  std::string id_;
};

// Created under a fixed name per run: a container left by a run that was
// killed is replaced by its retry.
engine::result<std::string> create_container(const engine::client& client, const std::string& name,
                                             const json::object& body) {
  (void)client.remove_container(name, true);
  return client.create_container(body, name);
}

// Empties the volumes by running busybox's find and rm in a short-lived container of
// the helper image (lifeboat's image carries /bin/busybox): nothing on the
// host is needed.
result<void> wipe_through_engine(const engine::client& client, const std::string& image,
                                 const std::string& run_name,
                                 const std::vector<std::string>& volumes) {
  json::array cmd{"find"};
  for (const auto& v : volumes) {
    cmd.emplace_back(restore_mount_path(v));
  }
  // Debian's busybox find has no -delete; rm -rf removes symlinks, never
  // what they point to.
  for (const char* arg :
       {"-mindepth", "1", "-maxdepth", "1", "-exec", "/bin/busybox", "rm", "-rf", "{}", "+"}) {
    cmd.emplace_back(arg);
  }
  json::object body{
      {"Image", image},
      {"Entrypoint", json::array{"/bin/busybox"}},
      {"Cmd", std::move(cmd)},
      {"Labels", json::object{{api::label::volume_container, "true"}}},
      {"HostConfig", json::object{{"NetworkMode", "none"}, {"Mounts", mounts_of(volumes)}}}};
  auto id = create_container(client, "lifeboat-wipe-" + run_name, body);
  if (!id) {
    return engine_failure("creating the wipe container", id.error());
  }
  container_guard guard(client, *id);
  if (auto started = client.start_container(*id); !started) {
    return engine_failure("starting the wipe container", started.error());
  }
  auto code = client.wait_container(*id, std::chrono::hours{1});
  if (!code) {
    return engine_failure("waiting for the wipe container", code.error());
  }
  if (*code != 0) {
    return make_error(errc::io_error,
                      fmt::format("wiping the volumes failed: find exited with {} (does the image "
                                  "{} have /bin/busybox?)",
                                  *code, image));
  }
  return {};
}

// The free space (and with `with_content` the content) of the volumes, seen
// from inside a short-lived container of the helper image that mounts them
// read-only: a volume whose data is a mount has it only there.
result<std::vector<volume_space>> measure_through_engine(const engine::client& client,
                                                         const std::string& image,
                                                         const std::string& run_name,
                                                         const std::vector<std::string>& volumes,
                                                         bool with_content) {
  json::object body{
      {"Image", image},
      {"Entrypoint", json::array{"/bin/busybox"}},
      {"Cmd", json::array{"sleep", "3600"}},
      {"Labels", json::object{{api::label::volume_container, "true"}}},
      {"HostConfig",
       json::object{{"NetworkMode", "none"}, {"Mounts", mounts_of(volumes, /*read_only=*/true)}}}};
  auto id = create_container(client, "lifeboat-measure-" + run_name, body);
  if (!id) {
    return engine_failure("creating the container that measures the volumes", id.error());
  }
  container_guard guard(client, *id);
  if (auto started = client.start_container(*id); !started) {
    return engine_failure("starting the container that measures the volumes", started.error());
  }
  std::vector<std::string> cmd{"/bin/busybox",
                               "sh",
                               "-c",
                               std::string(measure_script()),
                               "lifeboat-measure",
                               with_content ? "du" : "df"};
  for (const auto& v : volumes) {
    cmd.push_back(restore_mount_path(v));
  }
  auto exec = client.create_exec(*id, cmd);
  if (!exec) {
    return engine_failure("measuring the volumes", exec.error());
  }
  auto output = client.start_exec(*exec, std::size_t{64} * 1024);
  if (!output) {
    return engine_failure("measuring the volumes", output.error());
  }
  auto status = client.inspect_exec(*exec);
  if (!status) {
    return engine_failure("measuring the volumes", status.error());
  }
  if (status->exit_code.value_or(-1) != 0) {
    return make_error(errc::engine, fmt::format("measuring the volumes in the image {} exited with "
                                                "{}: {} (does it have /bin/busybox?)",
                                                image, status->exit_code.value_or(-1), *output));
  }
  return parse_measurements(*output, volumes);
}

// "volume a does not exist on node n1 (node ID x)": where the controller's
// engine runs, since a volume is created on the node of the engine asked.
std::string missing_volumes_message(const engine::client& client,
                                    const std::vector<std::string>& missing) {
  std::string node = "the node of this engine";
  if (auto info = client.info(); info) {
    node = "node " + info->name;
    if (!info->swarm.node_id.empty()) {
      node += " (node ID " + info->swarm.node_id + ")";
    }
  }
  return fmt::format(
      "{} {} not exist on {}, where this restore runs: set createVolume: true in the Restore's "
      "spec (lifeboat restore --create-volume) to create {} there, or restore on the node that "
      "holds {}",
      missing.size() == 1 ? "volume " + missing.front()
                          : "volumes " + fmt::format("{}", fmt::join(missing, ", ")),
      missing.size() == 1 ? "does" : "do", node, missing.size() == 1 ? "it" : "them",
      missing.size() == 1 ? "it" : "them");
}

result<unpack_report> unpack_through_engine(const engine::client& client, const std::string& image,
                                            const std::string& run_name,
                                            const archive_file& archive,
                                            const std::vector<mapping>& mappings,
                                            const read_options& options) {
  std::vector<std::string> volumes;
  for (const auto& m : mappings) {
    volumes.push_back(m.to);
  }
  // Never started: the engine writes into its mounts without running anything.
  json::object body{
      {"Image", image},
      {"Cmd", json::array{"true"}},
      {"Labels", json::object{{api::label::volume_container, "true"}}},
      {"HostConfig", json::object{{"NetworkMode", "none"}, {"Mounts", mounts_of(volumes)}}}};
  auto id = create_container(client, "lifeboat-restore-" + run_name, body);
  if (!id) {
    return engine_failure("creating the restore container", id.error());
  }
  container_guard guard(client, *id);
  auto stream = tar_restream::open(archive, mappings, options);
  if (!stream) {
    return stream.error();
  }
  // The stream's own error is kept: the engine only sees a broken upload.
  std::optional<error> stream_error;
  auto put =
      client.put_archive(*id, mount_root, [&](std::span<char> into) -> engine::result<std::size_t> {
        auto n = stream->pull(into);
        if (!n) {
          stream_error = n.error();
          return engine::make_error(engine::errc::cancelled, n.error().describe());
        }
        return *n;
      });
  if (stream_error) {
    return *stream_error;
  }
  if (!put) {
    return engine_failure("unpacking through the engine", put.error());
  }
  return stream->report();
}

// A mountpoint this process can write into as the engine would.
bool writable_folder(const std::string& path) {
  std::error_code ec;
  return !path.empty() && fs::is_directory(path, ec) &&
         ::access(path.c_str(), R_OK | W_OK | X_OK) == 0;
}

}  // namespace

std::string restore_mount_path(const std::string& volume) {
  return std::string(mount_root) + "/" + volume;
}

std::vector<std::string> target_volumes(const api::restore_spec& spec) {
  std::vector<std::string> out;
  for (const auto& v : spec.volumes) {
    out.push_back(v.to.empty() ? v.from : v.to);
  }
  return out;
}

reconcilers::quiesce_run quiesce_run_for(const std::string& run_name,
                                         const api::restore_spec& spec) {
  return reconcilers::quiesce_run{run_name, spec.stop_during_backup, target_volumes(spec),
                                  spec.label_match};
}

namespace {

// One restore run, phase by phase: each method is a phase of run(), and the
// state the phases hand on is this object's. A phase that ends the run
// returns its result; nullopt goes on.
class restore_run {
 public:
  restore_run(const engine::client& client, quiesce::journal_store& journals,
              const runner_options& options, const api::restore& restore,
              const std::string& run_name, const phase_reporter& report,
              const held_reporter& holding, const std::atomic<bool>& cancel)
      : client_(client),
        journals_(journals),
        options_(options),
        spec_(restore.spec),
        run_name_(run_name),
        report_(report),
        holding_(holding),
        cancel_(cancel),
        restore_metadata_(restore.metadata) {}

  run_result run() {
    if (auto ended = locate_archive()) {
      return *ended;
    }
    if (auto ended = find_targets()) {
      return *ended;
    }
    if (node_) {
      return on_node();
    }
    if (auto ended = spec_.restic ? verify_snapshots() : verify_archive()) {
      return *ended;
    }
    if (options_.verify_only && !missing_.empty()) {
      return verified_only(fmt::format("; {} would be created, so their space is not checked",
                                       fmt::join(missing_, ", ")));
    }
    if (auto ended = create_missing()) {
      return *ended;
    }
    if (auto ended = choose_path()) {
      return *ended;
    }
    if (auto ended = check_space()) {
      return *ended;
    }
    if (options_.verify_only) {
      return verified_only("");
    }
    const auto held = hold_and_write();
    return finish(held);
  }

 private:
  run_result fail(std::string_view outcome, std::string message) {
    result_.ok = false;
    result_.outcome = outcome;
    result_.message = std::move(message);
    result_.duration = clock::now() - start_;
    return result_;
  }

  // Missing volumes created by this run go again when it fails before it
  // writes anything.
  run_result fail_unwritten(std::string_view outcome, std::string message) {
    for (const auto& v : created_) {
      (void)client_.remove_volume(v);
    }
    return fail(outcome, std::move(message));
  }

  run_result verified_only(const std::string& note) {
    result_.ok = true;
    result_.outcome = outcome::verified;
    result_.message = "verified: " + checked_ + note;
    result_.duration = clock::now() - start_;
    return result_;
  }

  // Which archive. One on a remote destination is fetched while Verifying.
  std::optional<run_result> locate_archive() {
    if (spec_.restic) {
      result_.archive = "restic repository " + spec_.restic->repository;
    } else if (spec_.source) {
      if (const auto* local = std::get_if<api::local_destination>(&spec_.source->destination)) {
        result_.archive = (std::filesystem::path(local->path) / spec_.source->name).string();
      } else {
        remote_ = destinations::make_destination(spec_.source->destination);
        result_.archive = remote_->describe() + " " + spec_.source->name;
      }
    } else if (spec_.archive) {
      result_.archive = *spec_.archive;
    } else {
      // The controller turns backupRef into spec.archive before a run starts
      // (it knows the Backup objects); a runner given one directly cannot.
      return fail(outcome::invalid, "spec.backupRef cannot be resolved here; give spec.archive");
    }
    for (const auto& v : spec_.volumes) {
      mappings_.push_back(mapping{v.from, v.to.empty() ? v.from : v.to});
    }
    read_.allow_devices = options_.allow_devices;
    read_.allow_absolute_symlinks = options_.allow_absolute_symlinks;
    read_.cancel = &cancel_;
    return std::nullopt;
  }

  // Target volumes, looked up before the archive is read: a missing one is
  // created only when asked (on this engine's node, which need not be the
  // node whose volume the archive came from).
  std::optional<run_result> find_targets() {
    std::vector<std::string> target_names;
    target_names.reserve(mappings_.size());
    for (const auto& m : mappings_) {
      target_names.push_back(m.to);
    }
    // A target whose data is on another node is restored there, by that
    // node's agent: writing into a namesake here would restore nothing where
    // it counts.
    auto placed = quiesce::place_restore(client_, target_names);
    if (!placed) {
      return fail(outcome::write_failed,
                  "finding the nodes of the target volumes: " + placed.error().describe());
    }
    if (!placed->error.empty()) {
      return fail(outcome::invalid, placed->error);
    }
    if (!placed->node_id.empty()) {
      node_ = std::move(*placed);
      return std::nullopt;
    }
    for (const auto& m : mappings_) {
      auto existing = client_.inspect_volume(m.to);
      if (!existing && !existing.error().is(engine::errc::not_found)) {
        return fail(outcome::write_failed,
                    "inspecting volume " + m.to + ": " + existing.error().describe());
      }
      if (!existing) {
        missing_.push_back(m.to);
        volumes_.emplace_back();
      } else {
        volumes_.emplace_back(std::move(*existing));
      }
    }
    if (!missing_.empty() && !spec_.create_volume) {
      return fail(outcome::invalid, missing_volumes_message(client_, missing_));
    }
    return std::nullopt;
  }

  // What an agent job ended with.
  struct job_outcome {
    bool ok = false;
    std::string_view outcome = outcome::write_failed;
    std::string message;
    std::uint64_t bytes = 0;
  };

  static std::string_view known_outcome(std::string_view reported) {
    for (const auto o :
         {outcome::succeeded, outcome::verified, outcome::refused, outcome::checksum_mismatch,
          outcome::corrupt, outcome::invalid, outcome::no_space, outcome::quiesce_failed,
          outcome::write_failed, outcome::cancelled}) {
      if (o == reported) {
        return o;
      }
    }
    return outcome::write_failed;
  }

  // One agent job on the target's node, to its end; the job is removed
  // before this returns, whatever happened.
  job_outcome run_job(bool write) {
    const restore_job_spec job{run_name_,
                               node_->node_id,
                               image_,
                               job_restore_,
                               write,
                               options_.allow_devices,
                               options_.allow_absolute_symlinks};
    auto started = backup::agent_job::start(client_, restore_job(job));
    if (!started) {
      return {false, outcome::write_failed,
              "starting the agent on node " + node_->node_name + ": " + started.error().describe()};
    }
    auto ended = started->wait([] {}, cancel_, options_.agent_timeout);
    if (!ended) {
      return {
          false,
          ended.error().is(engine::errc::cancelled) ? outcome::cancelled : outcome::write_failed,
          "the agent on node " + node_->node_name + ": " + ended.error().describe()};
    }
    return {ended->ok, known_outcome(ended->outcome), ended->message, ended->bytes};
  }

  // The targets are kept on another node: verified there, then, held from
  // here (services are cluster-wide), written there.
  run_result on_node() {
    const std::string& node = node_->node_name;
    result_.path = "agent on node " + node;
    if (spec_.restic) {
      return fail(outcome::invalid,
                  "the target volumes are on node " + node +
                      ": restic snapshots are restored on the controller's node only, for now. "
                      "Restore into a volume here and move it, or run `lifeboat restore "
                      "--repository` on node " +
                      node);
    }
    if (spec_.decryption) {
      // Its keys would travel in the job's spec, readable by anyone who can
      // inspect services: refused before anything is held.
      return fail(outcome::invalid,
                  "the target volumes are on node " + node +
                      ", where a restore runs as an agent job, and an encrypted archive cannot "
                      "be restored there: the decryption keys would have to be written into "
                      "the job's spec. Restore a decrypted copy of the archive, or restore into "
                      "a volume on the controller's node");
    }
    image_ = options_.agent_image.empty() ? engine::own_image(client_).value_or("")
                                          : options_.agent_image;
    if (image_.empty()) {
      return fail(outcome::invalid, "no image for the agent on node " + node +
                                        ": run lifeboat in a container, or pass --agent-image");
    }
    job_restore_.metadata = restore_metadata_;
    job_restore_.spec = spec_;
    job_restore_.spec.backup_ref.reset();
    if (spec_.backup_ref) {
      // A Backup's archive is the controller's node's (or another node's):
      // the node's own is beside it, named for the node.
      std::vector<std::string> nodes;
      if (auto listed = client_.list_nodes()) {
        std::map<std::string, std::string> hostnames;
        for (const auto& n : *listed) {
          hostnames[n.id] = n.hostname;
        }
        for (const auto& [id, name] : reconcilers::node_names(hostnames)) {
          nodes.push_back(name);
        }
      }
      if (auto& archive = job_restore_.spec.archive) {
        const std::filesystem::path path(*archive);
        *archive =
            (path.parent_path() / archive::node_archive_of(path.filename().string(), node, nodes))
                .string();
        result_.archive = *archive;
      } else if (auto& source = job_restore_.spec.source) {
        source->name = archive::node_archive_of(source->name, node, nodes);
        result_.archive =
            destinations::make_destination(source->destination)->describe() + " " + source->name;
      }
    }
    report_(phase::verifying, result_.archive + ", on node " + node);
    const auto verified = run_job(/*write=*/false);
    if (!verified.ok) {
      return fail(verified.outcome, "verifying on node " + node + ": " + verified.message);
    }
    checked_ = verified.message;
    if (options_.verify_only) {
      return verified_only(", on node " + node);
    }
    std::optional<job_outcome> written;
    report_(phase::quiescing, "verified on node " + node + ": " + checked_);
    const auto held = hold_while_writing(
        fmt::format("{} volume(s) through the agent on node {}", targets_.size(), node), [&] {
          written = run_job(/*write=*/true);
          return written->ok;
        });
    const auto note = resume_note(held);
    if (auto failed =
            hold_failed(held,
                        !written || !written->ok
                            ? std::optional<std::pair<std::string_view, std::string>>(
                                  {written ? written->outcome : outcome::write_failed,
                                   written ? written->message : std::string("nothing written")})
                            : std::nullopt,
                        note)) {
      return *failed;
    }
    result_.ok = held.resume.ok;
    result_.outcome = held.resume.ok ? outcome::succeeded : outcome::quiesce_failed;
    result_.bytes = static_cast<double>(written->bytes);
    result_.duration = clock::now() - start_;
    result_.message = fmt::format("{} volume(s), {}, {}, held {:.1f}s{}", targets_.size(),
                                  written->message, result_.path, result_.downtime.count(), note);
    return result_;
  }

  // Verifying: before anything is held or written.
  std::optional<run_result> verify_archive() {
    report_(phase::verifying, result_.archive);
    auto archive = remote_ ? fetch_archive(*remote_, spec_.source->name,
                                           options_.spool_folder.empty()
                                               ? std::filesystem::temp_directory_path()
                                               : options_.spool_folder,
                                           &cancel_)
                           : archive_file::open(result_.archive);
    if (!archive) {
      return fail(outcome_of(archive.error()), archive.error().message);
    }
    archive_.emplace(std::move(*archive));
    // The keys, before the archive is read: an encrypted archive is
    // decrypted as it is verified, so a wrong key fails here, with nothing
    // held or written.
    if (const auto* gpg =
            spec_.decryption ? std::get_if<api::gpg_decryption>(&*spec_.decryption) : nullptr) {
      auto identities = crypto::load_openpgp_identities(*gpg, "spec.decryption.gpg");
      if (!identities) {
        return fail(outcome::invalid, identities.error().message);
      }
      read_.openpgp = std::move(*identities);
    } else if (spec_.decryption) {
      auto identities = crypto::load_identities(std::get<api::age_decryption>(*spec_.decryption),
                                                "spec.decryption.age");
      if (!identities) {
        return fail(outcome::invalid, identities.error().message);
      }
      read_.identities = std::move(*identities);
    }
    if (options_.on_progress) {
      read_.on_progress = [this](const progress& p) { options_.on_progress(phase::verifying, p); };
    }
    auto verified = verify(*archive_, mappings_, read_);
    if (!verified) {
      return fail(outcome_of(verified.error()), verified.error().describe());
    }
    std::uint64_t entries = 0;
    for (const auto e : verified->entries) {
      entries += e;
    }
    checked_ =
        fmt::format("{} entries, {} of data, {}{}", entries,
                    human_bytes(static_cast<double>(verified->content_bytes)),
                    verified->compression +
                        (verified->encrypted ? ", " + verified->encryption + "-encrypted" : ""),
                    verified->checksum_verified ? ", checksum verified" : ", no checksum file");
    verified_.emplace(std::move(*verified));
    return std::nullopt;
  }

  // Verifying a restic source: the repository opens with the password, each
  // target's snapshot is chosen, and every tree and data blob each restores
  // is read and checked against its ID. Repository's exclusive lock held from
  // here to the end of the run: a prune must not remove a pack in between.
  std::optional<run_result> verify_snapshots() {
    const auto& source = *spec_.restic;
    report_(phase::verifying, result_.archive + ", snapshot " + source.snapshot);
    auto repo = open_restic_source(source);
    if (!repo) {
      return fail(outcome_of(restore_error(repo.error(), errc::invalid_argument)),
                  repo.error().message);
    }
    repository_.emplace(std::move(*repo));
    auto locked = restic::repository_lock::acquire(*repository_);
    if (!locked) {
      return fail(outcome::write_failed,
                  "locking restic repository " + source.repository + ": " + locked.error().message);
    }
    lock_.emplace(std::move(*locked));
    auto all = restic::list_snapshots(*repository_);
    if (!all) {
      return fail(outcome_of(restore_error(all.error(), errc::corrupt)), all.error().message);
    }
    auto picked = pick_snapshots(*all, source, mappings_);
    if (!picked) {
      return fail(outcome::invalid, picked.error().message);
    }
    picks_ = std::move(*picked);
    std::uint64_t entries = 0;
    std::uint64_t bytes = 0;
    std::vector<std::string> named;
    for (std::size_t i = 0; i < picks_.size(); ++i) {
      if (cancel_) {
        return fail(outcome::cancelled, "cancelled while verifying");
      }
      const auto& pick = picks_[i];
      auto stats = restic::verify_snapshot(
          *repository_, pick.snapshot,
          {.subtree = pick.subtree, .allow_devices = options_.allow_devices});
      if (!stats) {
        return fail(
            outcome_of(restore_error(stats.error(), errc::corrupt)),
            "snapshot " + pick.short_id + " " + pick.subtree + ": " + stats.error().message);
      }
      entries += stats->files + stats->hard_links + stats->dirs + stats->symlinks + stats->special;
      bytes += stats->bytes;
      // Holes are not known before writing: counted as data. Each file and
      // folder takes at least a block.
      restic_needs_.push_back(stats->bytes +
                              (stats->files + stats->dirs) * space_need::allocation_unit);
      named.push_back(pick.subtree + " of " + pick.short_id);
    }
    checked_ =
        fmt::format("{}; {} entries, {} of data, every blob checked against its ID",
                    fmt::join(named, ", "), entries, human_bytes(static_cast<double>(bytes)));
    return std::nullopt;
  }

  std::optional<run_result> create_missing() {
    for (std::size_t i = 0; i < mappings_.size(); ++i) {
      if (volumes_[i]) {
        continue;
      }
      const auto& m = mappings_[i];
      std::string driver = "local";
      engine::labels labels;
      if (m.from != m.to) {
        // Renamed: the new volume is made like the source, when it exists here.
        if (auto source = client_.inspect_volume(m.from); source) {
          driver = source->driver;
          labels = source->volume_labels;
        }
      }
      auto made = client_.create_volume(m.to, driver, labels);
      if (!made) {
        return fail_unwritten(outcome::write_failed,
                              "creating volume " + m.to + ": " + made.error().describe());
      }
      created_.push_back(m.to);
      volumes_[i] = std::move(*made);
    }
    return std::nullopt;
  }

  // Which path: the mountpoints directly, or through the engine (a restore
  // container, run from lifeboat's own image).
  std::optional<run_result> choose_path() {
    std::vector<std::string> mounted;  // volumes whose data is a mount: engine only
    for (std::size_t i = 0; i < mappings_.size(); ++i) {
      mountpoints_.push_back(volumes_[i]->mountpoint);
      if (engine::data_is_a_mount(*volumes_[i])) {
        mounted.push_back(mappings_[i].to);
      }
    }
    if (spec_.restic) {
      // Written by restic::restore_snapshot, through directory descriptors
      // into the mountpoints: there is no engine path for snapshots yet.
      if (options_.path == data_path::engine) {
        return fail_unwritten(outcome::invalid,
                              "--path engine: restic snapshots are restored directly into the "
                              "volumes' folders");
      }
      for (std::size_t i = 0; i < mappings_.size(); ++i) {
        if (engine::data_is_a_mount(*volumes_[i])) {
          return fail_unwritten(outcome::invalid,
                                "volume " + mappings_[i].to +
                                    " is a mount that exists only while a container uses it: "
                                    "restic snapshots are restored into local volumes' folders");
        }
        if (!writable_folder(mountpoints_[i])) {
          return fail_unwritten(
              outcome::invalid,
              "volume " + mappings_[i].to + "'s folder " + mountpoints_[i] +
                  " cannot be written here: a restic snapshot is restored directly into it. "
                  "Run lifeboat on the volume's node as root, with /var/lib/docker/volumes "
                  "mounted (stack.yml has the line, commented)");
        }
        std::error_code ec;
        if (!spec_.wipe && !fs::is_empty(mountpoints_[i], ec)) {
          return fail_unwritten(outcome::invalid,
                                "volume " + mappings_[i].to +
                                    " is not empty: a restic snapshot is restored into an empty "
                                    "volume; set wipe: true (--wipe) to empty it first");
        }
      }
      direct_ = true;
      result_.path = "direct";
      return std::nullopt;
    }
    direct_ = options_.path == data_path::direct;
    if (options_.path != data_path::engine) {
      if (direct_ && !mounted.empty()) {
        return fail_unwritten(outcome::invalid,
                              "--path direct: volume " + mounted.front() +
                                  " is a mount that exists only while a container uses it; "
                                  "restore it through the engine");
      }
      bool all = mounted.empty();
      for (const auto& mp : mountpoints_) {
        all = all && writable_folder(mp);
      }
      if (direct_ && !all) {
        return fail_unwritten(outcome::invalid,
                              "--path direct: a target's mountpoint cannot be written here");
      }
      direct_ = all;
    }
    result_.path = direct_ ? "direct" : "engine";
    image_ = options_.helper_image;
    if (!direct_ && image_.empty()) {
      image_ = engine::own_image(client_).value_or("");
      if (image_.empty()) {
        return fail_unwritten(
            outcome::invalid,
            "no image for the restore container: run lifeboat in a container, or pass "
            "--helper-image");
      }
    }
    return std::nullopt;
  }

  // Still verifying: do the files fit? The engine writes sparse files densely.
  std::optional<run_result> check_space() {
    std::vector<std::uint64_t> needs = restic_needs_;
    if (verified_) {
      needs.reserve(verified_->space.size());
      for (const auto& need : verified_->space) {
        needs.push_back(direct_ ? need.sparse : need.dense);
      }
    }
    restore::result<std::vector<volume_space>> spaces{std::vector<volume_space>{}};
    if (direct_) {
      for (std::size_t i = 0; i < mappings_.size() && spaces; ++i) {
        auto one = measure_directory(mappings_[i].to, mountpoints_[i], spec_.wipe);
        if (!one) {
          spaces = one.error();
        } else {
          spaces->push_back(std::move(*one));
        }
      }
    } else {
      spaces = measure_through_engine(client_, image_, run_name_, targets_, spec_.wipe);
    }
    if (!spaces) {
      return fail_unwritten(outcome_of(spaces.error()), spaces.error().describe());
    }
    if (auto fits = restore::check_space(*spaces, needs, spec_.wipe); !fits) {
      return fail_unwritten(outcome::no_space, fits.error().describe());
    }
    std::uint64_t total = 0;
    for (const auto n : needs) {
      total += n;
    }
    checked_ += fmt::format(", fits ({} needed, {})", human_bytes(static_cast<double>(total)),
                            result_.path);
    return std::nullopt;
  }

  quiesce::held_outcome hold_and_write() {
    if (options_.on_progress) {
      read_.on_progress = [this](const progress& p) { options_.on_progress(phase::restoring, p); };
    }
    report_(phase::quiescing, "verified: " + checked_);
    return hold_while_writing(fmt::format("{} volume(s) {}", targets_.size(), result_.path), [&] {
      write();
      return written_ && *written_;
    });
  }

  // Holds the workloads while `write` runs (here or through an agent), checks
  // that they stayed held when it succeeded, and resumes them. `what` begins
  // the Restoring phase's message.
  quiesce::held_outcome hold_while_writing(const std::string& what,
                                           const std::function<bool()>& write) {
    auto held = quiesce::with_quiesced(
        client_, journals_, quiesce_run_, spec_.timeouts.scale_down, spec_.timeouts.scale_up,
        [&](const quiesce::holding& hold) {
          holding_(hold.workloads);
          report_(phase::restoring, fmt::format("{}, {} workload(s) held", what, hold.workloads));
          if (write()) {
            if (auto still =
                    quiesce::holds_still_hold(client_, journals_, quiesce_run_, hold.baseline);
                !still) {
              disturbed_ = still.error().describe();
            }
          }
          report_(phase::resuming, "");
        });
    holding_(0);
    result_.downtime = held.held;
    return held;
  }

  // What a failed or partial resume adds to the run's message.
  static std::string resume_note(const quiesce::held_outcome& held) {
    std::string note = held.resume.ok ? "" : "; resuming failed: " + held.resume.message;
    for (std::size_t i = 0; i < held.resume.left_stopped.size(); ++i) {
      note += (i == 0 ? "; left stopped (stop-during-backup-no-restart): " : ", ") +
              held.resume.left_stopped[i];
    }
    return note;
  }

  // The run's failure after a hold, if it failed: quiescing, then the write
  // (`write_failure`: its outcome and why), then a workload that ran while
  // the volumes were written.
  std::optional<run_result> hold_failed(
      const quiesce::held_outcome& held,
      const std::optional<std::pair<std::string_view, std::string>>& write_failure,
      const std::string& note) {
    if (!held.quiesce.ok) {
      return fail(outcome::quiesce_failed, "quiescing failed: " + held.quiesce.message + note);
    }
    if (write_failure) {
      return fail(write_failure->first,
                  "restoring failed (" + result_.path + "): " + write_failure->second + note);
    }
    if (disturbed_) {
      return fail(outcome::quiesce_failed,
                  "the volumes were written, but a workload ran meanwhile, so they may be "
                  "inconsistent; restore again: " +
                      *disturbed_ + note);
    }
    return std::nullopt;
  }

  // While held. The archive was verified: only now may the volumes be
  // emptied.
  void write() {
    if (spec_.wipe) {
      restore::result<void> wiped;
      if (direct_) {
        for (const auto& mp : mountpoints_) {
          if (wiped) {
            wiped = wipe_directory(mp);
          }
        }
      } else {
        wiped = wipe_through_engine(client_, image_, run_name_, targets_);
      }
      if (!wiped) {
        written_ = wiped.error();
        return;
      }
    }
    if (spec_.restic) {
      written_ = write_snapshots();
    } else if (direct_) {
      std::vector<fs::path> roots(mountpoints_.begin(), mountpoints_.end());
      written_ = extract_to_directories(*archive_, mappings_, roots, read_);
    } else {
      written_ = unpack_through_engine(client_, image_, run_name_, *archive_, mappings_, read_);
    }
  }

  // Each target's snapshot into its (empty) folder. The lock is refreshed
  // between volumes: restic takes a lock untouched for 30 minutes for stale.
  restore::result<unpack_report> write_snapshots() {
    unpack_report report;
    restic::restore_options options;
    options.owners = ::geteuid() == 0;
    options.verified = true;  // while Verifying, before anything was held or wiped
    options.allow_devices = options_.allow_devices;
    for (std::size_t i = 0; i < picks_.size(); ++i) {
      if (cancel_) {
        return make_error(errc::cancelled,
                          fmt::format("cancelled after {} of {} volume(s)", i, picks_.size()));
      }
      if (auto refreshed = lock_->refresh(); !refreshed) {
        return restore_error(refreshed.error(), errc::io_error);
      }
      options.subtree = picks_[i].subtree;
      auto stats =
          restic::restore_snapshot(*repository_, picks_[i].snapshot, mountpoints_[i], options);
      if (!stats) {
        auto e = restore_error(stats.error(), errc::corrupt);
        e.message =
            "volume " + mappings_[i].to + " from snapshot " + picks_[i].short_id + ": " + e.message;
        return e;
      }
      report.entries +=
          stats->files + stats->hard_links + stats->dirs + stats->symlinks + stats->special;
      report.content_bytes += stats->bytes;
    }
    return report;
  }

  run_result finish(const quiesce::held_outcome& held) {
    const auto note = resume_note(held);
    std::optional<std::pair<std::string_view, std::string>> write_failure;
    if (!written_ || !*written_) {
      const error why =
          written_ ? written_->error() : make_error(errc::internal, "nothing written");
      write_failure.emplace(outcome_of(why), why.describe());
    }
    if (auto failed = hold_failed(held, write_failure, note)) {
      return *failed;
    }
    result_.ok = held.resume.ok;
    result_.outcome = held.resume.ok ? outcome::succeeded : outcome::quiesce_failed;
    result_.bytes = static_cast<double>((*written_)->content_bytes);
    result_.duration = clock::now() - start_;
    result_.message = fmt::format("{} volume(s), {} entries, {}, {}, held {:.1f}s{}",
                                  targets_.size(), (*written_)->entries, human_bytes(result_.bytes),
                                  result_.path, result_.downtime.count(), note);
    return result_;
  }

  const engine::client& client_;
  quiesce::journal_store& journals_;
  const runner_options& options_;
  const api::restore_spec& spec_;
  const std::string& run_name_;
  const phase_reporter& report_;
  const held_reporter& holding_;
  const std::atomic<bool>& cancel_;
  const clock::time_point start_ = clock::now();
  const std::vector<std::string> targets_ = target_volumes(spec_);
  const reconcilers::quiesce_run quiesce_run_ = quiesce_run_for(run_name_, spec_);

  run_result result_;
  std::unique_ptr<destinations::destination> remote_;
  std::vector<mapping> mappings_;
  read_options read_;
  std::vector<std::optional<engine::volume>> volumes_;
  std::vector<std::string> missing_;
  std::optional<archive_file> archive_;
  std::optional<verify_report> verified_;
  std::string checked_;  ///< what verifying found, for the run's messages
  std::vector<std::string> created_;
  std::vector<std::string> mountpoints_;
  bool direct_ = false;
  std::string image_;
  std::optional<restore::result<unpack_report>> written_;
  /// A restic source: the repository, its lock, each target's snapshot and
  /// the space each needs.
  std::optional<restic::repository> repository_;
  std::optional<restic::repository_lock> lock_;
  std::vector<restic_pick> picks_;
  std::vector<std::uint64_t> restic_needs_;
  /// Set when a held workload came back while the volumes were written.
  std::optional<std::string> disturbed_;
  /// Set when the targets are kept on another node.
  std::optional<quiesce::restore_node> node_;
  api::object_meta restore_metadata_;
  /// The Restore the agent jobs are given.
  api::restore job_restore_;
};

}  // namespace

engine_runner::engine_runner(const engine::client& client, quiesce::journal_store& journals,
                             runner_options options)
    : client_(client), journals_(journals), options_(std::move(options)) {}

run_result engine_runner::run(const api::restore& restore, const std::string& run_name,
                              const phase_reporter& report, const held_reporter& holding,
                              const std::atomic<bool>& cancel) {
  return restore_run(client_, journals_, options_, restore, run_name, report, holding, cancel)
      .run();
}

}  // namespace lifeboat::restore
