#include "controller/backup/engine_runner.hpp"

#include "controller/archive/name_pattern.hpp"
#include "controller/archive/transforms.hpp"
#include "controller/backup/agent_job.hpp"
#include "controller/backup/restic_steps.hpp"
#include "controller/backup/volumes.hpp"
#include "controller/crypto/spec_keys.hpp"
#include "controller/quiesce/quiesce.hpp"

#include <date/tz.h>
#include <fmt/core.h>
#include <fmt/ranges.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <thread>

namespace lifeboat::backup {

namespace {

using clock = std::chrono::steady_clock;

// True when this process can list and read the directory: the volume can be
// read directly instead of through the engine. Inside a container the
// engine's mountpoint path normally does not exist (unless the host's volume
// folder is mounted there), and lifeboat falls back to the engine.
bool readable_directory(const std::string& path) {
  if (path.empty()) {
    return false;
  }
  std::error_code ec;
  return std::filesystem::is_directory(path, ec) && ::access(path.c_str(), R_OK | X_OK) == 0;
}

// The kind of an engine failure, for the run's status and metrics.
std::string_view engine_failure_kind(const engine::error& e) {
  return e.is(engine::errc::unavailable) ? "engine unavailable" : "engine error";
}

// The kind of a restic failure: an unreadable or unwritable file is an I/O
// error, anything else `otherwise` (what the step was doing).
std::string_view restic_failure_kind(const restic::error& e, archive::errc otherwise) {
  return archive::to_string(e.is(restic::errc::io) ? archive::errc::io_error : otherwise);
}

// One backup run, phase by phase: each method is a phase of run(), and the
// state the phases hand on is this object's. A phase that ends the run
// returns its result; nullopt goes on.
class backup_run {
 public:
  backup_run(const engine::client& client, quiesce::journal_store& journals,
             const archive_steps& steps, const runner_options& options,
             const api::backup_schedule& schedule, const std::string& run_name,
             const phase_reporter& report, const held_reporter& holding,
             const std::atomic<bool>& cancel)
      : client_(client),
        journals_(journals),
        steps_(steps),
        options_(options),
        schedule_(schedule),
        spec_(schedule.spec),
        run_name_(run_name),
        report_(report),
        holding_(holding),
        cancel_(cancel) {}

  run_result run() {
    if (auto ended = open_destinations()) {
      return *ended;
    }
    if (auto ended = find_volumes()) {
      return *ended;
    }
    if (restic()) {
      if (auto ended = prepare_restic()) {
        return *ended;
      }
    } else {
      if (auto ended = load_keys()) {
        return *ended;
      }
      if (auto ended = prepare_readers()) {
        return *ended;
      }
      name_archives();
    }
    if (!hooks_at({hook_phase::archive, hook_when::pre})) {
      return fail(pre_hook_failure_);
    }
    const auto held = hold_and_read();
    // An early resume (source_read) released what the final one then no
    // longer finds: what either left stopped counts.
    std::vector<std::string> left = early_left_stopped_;
    for (const auto& w : held.resume.left_stopped) {
      if (std::find(left.begin(), left.end(), w) == left.end()) {
        left.push_back(w);
      }
    }
    for (std::size_t i = 0; i < left.size(); ++i) {
      left_stopped_ +=
          (i == 0 ? "; left stopped (stop-during-backup-no-restart): " : ", ") + left[i];
    }
    hooks_at({hook_phase::archive, hook_when::post});
    if (auto ended = check_reads(held)) {
      return restic() ? discard_snapshots(std::move(*ended)) : *ended;
    }
    return restic() ? retain_snapshots(held) : ship(held);
  }

 private:
  struct agent_part {
    const quiesce::node_volumes* node = nullptr;
    agent_job_spec spec;
    std::optional<engine::result<agent_event>> outcome;
  };

  run_result fail(std::string message) {
    result_.ok = false;
    // Failures of post hook points: each fails the run, after its phase did
    // its work (a published archive stays published: it is consistent).
    for (const auto& f : post_hook_failures_) {
      message += "; " + f;
    }
    message += left_stopped_;
    result_.message = std::move(message);
    result_.duration = clock::now() - start_;
    return result_;
  }

  // A pre point that fails ends the run before its phase, and the phase's
  // post point does not run; a post point runs also when its phase failed.
  bool hooks_at(hook_point point, const std::string& location = {}) {
    if (!options_.hooks) {
      return true;
    }
    const hook_context context{schedule_, run_name_, location, cancel_};
    auto outcome = options_.hooks(point, context);
    for (auto& skipped : outcome.skipped) {
      hook_warnings_.push_back(fmt::format("{} skipped {}", to_string(point), skipped));
    }
    if (outcome.ok) {
      return true;
    }
    auto failure = fmt::format("{} hook failed: {}", to_string(point), outcome.message);
    if (point.when == hook_when::pre) {
      result_.failure = "hook failed";
      pre_hook_failure_ = std::move(failure);
    } else {
      post_hook_failures_.push_back(std::move(failure));
    }
    return false;
  }

  void destination_failed(const destinations::destination& d, const archive::error& e,
                          std::string_view doing) {
    if (first_failure_kind_.empty()) {
      first_failure_kind_ = archive::to_string(e.code);
    }
    const auto name = d.describe();
    std::string message = e.message;
    if (message.starts_with(name + ": ")) {
      message.erase(0, name.size() + 2);
    }
    destination_failures_.push_back(name + ": " + std::string(doing) + message);
  }
  void reached(const destinations::destination& d, double bytes, clock::time_point since) {
    result_.destinations.push_back({d.describe(), true, {}, bytes, clock::now() - since});
  }
  void missed(const destinations::destination& d, const archive::error& e,
              clock::time_point since) {
    result_.destinations.push_back(
        {d.describe(), false, archive::to_string(e.code), 0, clock::now() - since});
  }
  std::string joined_failures() const {
    return fmt::format("{}", fmt::join(destination_failures_, "; "));
  }

  // One destination failing does not stop the others: the archive goes to
  // every destination that can take it, and the run fails at the end naming
  // each one that could not. Only when none can is nothing held: a missing
  // mount fails the run here, naming the path.
  std::optional<run_result> open_destinations() {
    for (const auto& d : spec_.destinations) {
      auto target = destinations::make_destination(d);
      if (auto ok = target->check(); !ok) {
        destination_failed(*target, ok.error(), "");
        missed(*target, ok.error(), clock::now());
        continue;
      }
      targets_.push_back(std::move(target));
    }
    if (targets_.empty()) {
      result_.failure = first_failure_kind_;
      return fail(joined_failures());
    }
    return std::nullopt;
  }

  // Where the volumes are: those kept on other nodes are read there, by one
  // agent per node; a namesake here of a volume kept only elsewhere is an
  // unrelated volume and is not read. Named volumes are located before they
  // are looked up here (where they may not exist).
  std::optional<run_result> find_volumes() {
    auto locate = [&](const std::vector<std::string>& wanted) -> std::optional<run_result> {
      auto located = quiesce::locate_volumes(client_, wanted);
      if (!located) {
        result_.failure = engine_failure_kind(located.error());
        return fail("finding the nodes of the volumes: " + located.error().describe());
      }
      where_ = std::move(*located);
      return std::nullopt;
    };
    auto here_spec = spec_;
    if (!spec_.volumes.empty()) {
      if (auto failed = locate(spec_.volumes)) {
        return failed;
      }
      std::erase_if(here_spec.volumes,
                    [&](const std::string& v) { return where_.only_elsewhere.contains(v); });
    }
    std::vector<engine::volume> volumes;
    if (spec_.volumes.empty() || !here_spec.volumes.empty()) {
      auto resolved = resolve_volumes(client_, here_spec);
      if (!resolved) {
        result_.failure = engine_failure_kind(resolved.error());
        return fail(resolved.error().message);
      }
      volumes = std::move(*resolved);
    }
    if (spec_.volumes.empty()) {
      std::vector<std::string> selected;
      selected.reserve(volumes.size());
      for (const auto& v : volumes) {
        selected.push_back(v.name);
      }
      if (auto failed = locate(selected)) {
        return failed;
      }
      std::erase_if(
          volumes, [&](const engine::volume& v) { return where_.only_elsewhere.contains(v.name); });
    }
    for (const auto& v : volumes) {
      volume_input input{v.name, {}};
      if (options_.direct_read && !engine::data_is_a_mount(v) && readable_directory(v.mountpoint)) {
        input.directory = v.mountpoint;
      } else {
        through_engine_.push_back(v.name);
      }
      inputs_.push_back(std::move(input));
    }
    volume_count_ = inputs_.size();
    for (const auto& node : where_.elsewhere) {
      volume_count_ += node.volumes.size();
    }
    return std::nullopt;
  }

  // The keys an encrypting schedule names, read before anything is held: a
  // missing secret or a bad recipient fails the run naming the field and the
  // file, with every workload untouched. Agents get the public keys inline
  // (they are not secrets, and the files are this container's); a
  // passphrase would have to travel in the job's environment, so it is
  // refused for volumes on other nodes.
  std::optional<run_result> load_keys() {
    if (!spec_.archive.encryption) {
      return std::nullopt;
    }
    if (const auto* gpg = std::get_if<api::gpg_encryption>(&*spec_.archive.encryption)) {
      return load_openpgp_keys(*gpg);
    }
    const auto& age = std::get<api::age_encryption>(*spec_.archive.encryption);
    static constexpr std::string_view field = "spec.archive.encryption.age";
    auto recipients = crypto::load_recipients(age, field);
    if (!recipients) {
      result_.failure = archive::to_string(archive::errc::invalid_argument);
      return fail(recipients.error().message);
    }
    request_.recipients = std::move(*recipients);
    if (where_.elsewhere.empty()) {
      return std::nullopt;
    }
    if (age.passphrase_file) {
      return refuse_passphrase_for_agents(field);
    }
    agent_schedule_.spec.archive.encryption =
        api::age_encryption{crypto::recipient_texts(age, field).value(), {}, {}};
    return std::nullopt;
  }

  // As load_keys, for OpenPGP: the keys are also tried by gpg here, so a key
  // that cannot encrypt fails the run before anything is held.
  std::optional<run_result> load_openpgp_keys(const api::gpg_encryption& gpg) {
    static constexpr std::string_view field = "spec.archive.encryption.gpg";
    auto recipients = crypto::load_openpgp_recipients(gpg, field);
    if (recipients) {
      if (auto usable = crypto::check_openpgp_recipients(*recipients, field); !usable) {
        recipients = usable.error();
      }
    }
    if (!recipients) {
      result_.failure = archive::to_string(archive::errc::invalid_argument);
      return fail(recipients.error().message);
    }
    request_.openpgp = std::move(*recipients);
    if (where_.elsewhere.empty()) {
      return std::nullopt;
    }
    if (gpg.passphrase_file) {
      return refuse_passphrase_for_agents(field);
    }
    if (request_.openpgp->public_keys.find("-----BEGIN PGP PUBLIC KEY BLOCK-----") ==
        std::string::npos) {
      result_.failure = archive::to_string(archive::errc::invalid_argument);
      return fail(std::string(field) +
                  ".publicKeyFile: volumes on other nodes are archived by agents, which are "
                  "handed the keys as text: export them armored (gpg --armor --export)");
    }
    agent_schedule_.spec.archive.encryption =
        api::gpg_encryption{std::nullopt, request_.openpgp->public_keys, std::nullopt};
    return std::nullopt;
  }

  std::optional<run_result> refuse_passphrase_for_agents(std::string_view field) {
    result_.failure = archive::to_string(archive::errc::invalid_argument);
    return fail(std::string(field) +
                ".passphraseFile: volumes on other nodes are archived by agents, and a "
                "passphrase cannot be handed to them without writing it into a job's "
                "environment; encrypt to " +
                (field.ends_with("gpg") ? "public keys" : "recipients") + " instead");
  }

  bool restic() const { return spec_.format == api::backup_format::restic; }

  // A restic run reads every volume from its folder on this node, and opens
  // its repository (creating it on first use) before anything is held: a
  // wrong password or an unreadable volume fails here, with every workload
  // untouched.
  std::optional<run_result> prepare_restic() {
    auto refuse = [&](std::string message) {
      result_.failure = archive::to_string(archive::errc::invalid_argument);
      return fail(std::move(message));
    };
    if (!where_.elsewhere.empty()) {
      std::string elsewhere;
      for (const auto& node : where_.elsewhere) {
        elsewhere += fmt::format("{}{}: {}", elsewhere.empty() ? "" : "; ", node.node_name,
                                 fmt::join(node.volumes, ", "));
      }
      return refuse(
          "format: restic backs up volumes of the controller's node only (not yet "
          "those of other nodes): " +
          elsewhere);
    }
    if (!through_engine_.empty()) {
      return refuse(fmt::format(
          "format: restic reads volumes from their folders, and these are not readable here: "
          "{}; mount the engine's volume folder (/var/lib/docker/volumes) into lifeboat's "
          "container at the same path, read-only (manifests/stack.yml)",
          fmt::join(through_engine_, ", ")));
    }
    auto repo = open_restic_repository(schedule_);
    if (!repo) {
      result_.failure = restic_failure_kind(repo.error(), archive::errc::invalid_argument);
      return fail(repo.error().message);
    }
    repository_.emplace(std::move(*repo));
    // Listed once, before anything is held: each volume's parent is among them.
    auto listed = restic::list_snapshots(*repository_);
    if (!listed) {
      result_.failure = restic_failure_kind(listed.error(), archive::errc::invalid_argument);
      return fail("listing the snapshots of " + repository_->path().string() + ": " +
                  listed.error().message);
    }
    listed_ = std::move(*listed);
    auto info = client_.info();
    if (!info) {
      result_.failure = engine_failure_kind(info.error());
      return fail("asking the engine for its node's name: " + info.error().describe());
    }
    // Snapshots name the node, so the next run of a volume finds its parent
    // wherever the controller's container runs on that node.
    hostname_ = info->name;
    unread_ = 1;
    return std::nullopt;
  }

  // While held: one snapshot per volume, in order; the workloads resume once
  // the last one is written (its packs, index and snapshot file are on disk).
  void snapshot_volumes() {
    for (const auto& input : inputs_) {
      if (cancel_.load()) {
        snapshot_failure_ = "cancelled before " + input.name + " was read";
        return;
      }
      auto made = snapshot_volume(*repository_, schedule_, run_name_, hostname_, input.name,
                                  input.directory, listed_);
      if (!made) {
        snapshot_failure_ = fmt::format("volume {}: {}", input.name, made.error().message);
        snapshot_failure_kind_ = restic_failure_kind(made.error(), archive::errc::bad_source);
        return;
      }
      snapshots_.push_back(std::move(*made));
    }
    source_read();
  }

  // After the snapshots: forget by the keep rules and prune, between the
  // prune hook points (archive-only points, process and copy, do not run:
  // nothing is published or copied).
  run_result retain_snapshots(const quiesce::held_outcome& held) {
    std::uint64_t added = 0;
    std::uint64_t read = 0;
    std::vector<std::string> ids;
    std::vector<std::string> per_volume;
    for (const auto& s : snapshots_) {
      const auto id = restic::to_hex(s.id);
      ids.push_back(s.volume + "=" + id);
      added += s.stats.pack_bytes_written;
      read += s.stats.bytes_read;
      per_volume.push_back(fmt::format(
          "{} {} ({} file(s), {} read, {} unchanged{})", s.volume, id.substr(0, 8), s.stats.files,
          s.stats.files_read, s.stats.files_unchanged, s.incremental ? "" : ", no parent"));
    }
    location_ = repository_->path().string();
    result_.archive = location_;
    result_.snapshots = fmt::format("{}", fmt::join(ids, ","));
    result_.size_bytes = static_cast<double>(added);
    reached(*targets_.front(), static_cast<double>(added), writing_from_.value_or(held_from_));

    report_(phase::pruning, "");
    if (!hooks_at({hook_phase::prune, hook_when::pre}, location_)) {
      return fail(pre_hook_failure_);
    }
    std::string retention;
    if (auto retained = apply_restic_retention(*repository_, schedule_, snapshotted_volumes());
        !retained) {
      destination_failures_.push_back(location_ +
                                      ": retention failed: " + retained.error().message);
      first_failure_kind_ = archive::to_string(archive::errc::io_error);
    } else {
      retention = *retained;
    }
    hooks_at({hook_phase::prune, hook_when::post}, location_);
    if (!destination_failures_.empty()) {
      result_.failure = first_failure_kind_;
      return fail(fmt::format("the snapshots are in {} ({}); {}", location_, result_.snapshots,
                              joined_failures()));
    }
    if (!post_hook_failures_.empty()) {
      result_.failure = "hook failed";
      return fail(fmt::format("the snapshots are in {} ({})", location_, result_.snapshots));
    }
    warnings_.insert(warnings_.begin(), hook_warnings_.begin(), hook_warnings_.end());
    result_.ok = true;
    result_.duration = clock::now() - start_;
    result_.message = fmt::format(
        "{} volume(s) into restic repository {}: {}; {} read, {} added, held {:.1f}s; {}{}{}{}",
        snapshots_.size(), location_, fmt::join(per_volume, ", "),
        human_bytes(static_cast<double>(read)), human_bytes(static_cast<double>(added)),
        result_.downtime.count(), retention,
        held.resume.ok ? "" : "; resuming: " + held.resume.message, left_stopped_,
        warnings_.empty()
            ? ""
            : fmt::format("; {} warning(s), first: {}", warnings_.size(), warnings_.front()));
    return result_;
  }

  // A failed run leaves no snapshot of its own: those it wrote may have been
  // read while a writer ran (the hold was broken), and a Failed Backup must
  // not hold data the next run's retention would count as good.
  run_result discard_snapshots(run_result failed) {
    if (snapshots_.empty()) {
      return failed;
    }
    if (auto removed = remove_snapshots(*repository_, snapshots_); !removed) {
      failed.message += "; removing its snapshots failed: " + removed.error().message;
    } else {
      failed.message += fmt::format("; its {} snapshot(s) removed", snapshots_.size());
    }
    return failed;
  }

  std::vector<std::string> snapshotted_volumes() const {
    std::vector<std::string> volumes;
    for (const auto& s : snapshots_) {
      volumes.push_back(s.volume);
    }
    return volumes;
  }

  // The agents' image and the volume container, with what runs of this
  // schedule that died left of either removed first.
  std::optional<run_result> prepare_readers() {
    if (!where_.elsewhere.empty()) {
      agent_image_ =
          options_.agent_image.empty() ? own_image(client_).value_or("") : options_.agent_image;
      if (agent_image_.empty()) {
        result_.failure = "invalid argument";
        return fail(
            "no image for the agents that read the volumes on other nodes: run lifeboat in a "
            "container, or pass --agent-image");
      }
      // Jobs of this schedule's earlier runs that died (one run per schedule
      // at a time).
      if (auto removed = remove_leftover_agent_jobs(
              client_, [&](const std::string& run) { return run == run_name_; },
              schedule_.metadata.name);
          !removed) {
        result_.failure = engine_failure_kind(removed.error());
        return fail("removing leftover agent jobs: " + removed.error().describe());
      }
    }
    // Containers of runs of this schedule that died are removed first (a
    // retry of the same run has the same container name).
    if (auto removed = remove_leftover_volume_containers(client_, schedule_.metadata.name);
        !removed) {
      result_.failure = engine_failure_kind(removed.error());
      return fail("removing leftover volume containers: " + removed.error().describe());
    }
    // The volume container is only needed for volumes read through the engine.
    if (through_engine_.empty()) {
      return std::nullopt;
    }
    std::string image = options_.helper_image;
    if (image.empty()) {
      image = own_image(client_).value_or("");
    }
    if (image.empty()) {
      result_.failure = "invalid argument";
      return fail(
          "no image for the volume container: run lifeboat in a container, or pass "
          "--helper-image");
    }
    auto created = volume_container::create(
        client_, image, through_engine_, /*read_only=*/true, "lifeboat-read-" + run_name_,
        {{std::string(volume_container_schedule_label), schedule_.metadata.name}});
    if (!created) {
      result_.failure = engine_failure_kind(created.error());
      return fail("creating the volume container: " + created.error().describe());
    }
    reader_.emplace(std::move(*created));
    return std::nullopt;
  }

  // All destinations get the same file name, from the schedule's zone; each
  // other node's archive adds the node's name. The first destination is
  // written while held; the others are copies. One agent per other node: it
  // writes its node's archive into every destination itself (a `local`
  // folder there is that node's).
  void name_archives() {
    const auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
    const auto local_now = date::locate_zone(spec_.timezone)->to_local(now);
    const std::string stem =
        api::expand_archive_name(spec_.archive.name, schedule_.metadata.name,
                                 std::chrono::local_seconds{local_now.time_since_epoch()});
    const auto extension = archive::archive_extension(archive::transform_chain(spec_.archive));
    request_.volumes = inputs_;
    request_.open = [this](const std::string& v) { return reader_->read(v); };
    request_.spec = spec_.archive;
    request_.destination = targets_.front().get();
    request_.file_name = stem + extension;
    request_.cancel = &cancel_;
    request_.on_progress = options_.on_progress;
    request_.spool_limit = options_.spool_limit;
    request_.on_sources_read = [this] { source_read(); };

    std::vector<std::string> bind_folders;
    for (const auto& target : targets_) {
      if (auto folder = target->spool_folder(); !folder.empty()) {
        bind_folders.push_back(std::move(folder));
      }
    }
    for (const auto& node : where_.elsewhere) {
      agents_.push_back(
          {&node,
           {run_name_, node.node_id, agent_image_, agent_schedule_,
            archive::node_file_name(stem, node.node_name, extension), node.volumes, bind_folders},
           std::nullopt});
    }
    unread_ = (read_here() ? 1 : 0) + agents_.size();
  }

  bool read_here() const { return !inputs_.empty(); }

  // Downtime first: the workloads resume as soon as the volumes have been
  // read (here and by every agent), on a thread of their own, while the
  // writers compress and write the rest. with_quiesced() resumes again
  // afterwards, which finds nothing left to do after an early resume, and
  // everything when it did not happen or failed (its engine errors are
  // retried there until the deadline). Whether everything stayed held while
  // the volumes were read is checked before anything is resumed: an archive
  // read while a writer ran is never published.
  void source_read() {
    if (unread_.fetch_sub(1) != 1) {
      return;
    }
    report_(phase::resuming, "volumes read; resuming the workloads while the archive is finished");
    resumer_ = std::jthread([this] {
      still_held_ = quiesce::holds_still_hold(client_, journals_, quiesce_run_, *baseline_);
      const auto resumed = quiesce::reach(client_, journals_, quiesce_run_,
                                          quiesce::quiesce_goal::restored, spec_.timeouts.scale_up);
      early_left_stopped_ = resumed.left_stopped;
      if (resumed.ok) {
        resumed_at_ = clock::now();
        holding_(0);
      }
    });
  }

  bool agents_ok() const {
    return std::all_of(agents_.begin(), agents_.end(), [](const agent_part& a) {
      return a.outcome && *a.outcome && (*a.outcome)->ok;
    });
  }

  quiesce::held_outcome hold_and_read() {
    report_(phase::quiescing, "");
    held_from_ = clock::now();
    auto held = quiesce::with_quiesced(
        client_, journals_, quiesce_run_, spec_.timeouts.scale_down, spec_.timeouts.scale_up,
        [&](const quiesce::holding& hold) {
          baseline_ = &hold.baseline;
          holding_(hold.workloads);
          report_(phase::archiving,
                  fmt::format("reading {} volume(s){}, {} workload(s) held", volume_count_,
                              agents_.empty() ? ""
                                              : fmt::format(" on {} node(s)",
                                                            agents_.size() + (read_here() ? 1 : 0)),
                              hold.workloads));
          writing_from_ = clock::now();
          read_everywhere();
          if (resumer_.joinable()) {
            resumer_.join();
          } else {
            if ((!read_here() || read_here_ok()) && agents_ok()) {
              still_held_ =
                  quiesce::holds_still_hold(client_, journals_, quiesce_run_, hold.baseline);
            }
            report_(phase::resuming, "");
          }
        });
    holding_(0);
    return held;
  }

  bool read_here_ok() const { return restic() ? snapshot_failure_.empty() : written_ && *written_; }

  // The agents start reading at once; a job that cannot be created ends the
  // run before anything else is read.
  void read_everywhere() {
    if (restic()) {
      snapshot_volumes();
      return;
    }
    std::vector<agent_job> jobs;
    for (auto& a : agents_) {
      auto job = agent_job::start(client_, a.spec);
      if (!job) {
        a.outcome = job.error();
        return;
      }
      jobs.push_back(std::move(*job));
    }
    std::vector<std::jthread> waiting;
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      waiting.emplace_back([&, i] {
        agents_[i].outcome =
            jobs[i].wait([this] { source_read(); }, cancel_, options_.agent_timeout);
      });
    }
    if (read_here()) {
      written_ = steps_.write(request_);
    }
    // Every agent has finished or failed when `waiting` has joined; their
    // jobs go with `jobs`.
  }

  // What the hold came to: quiesce, the archive here, each agent (what each
  // did goes into the run's message; the first failure fails it), and
  // whether everything stayed held.
  std::optional<run_result> check_reads(const quiesce::held_outcome& held) {
    result_.downtime =
        resumed_at_
            ? std::chrono::duration_cast<std::chrono::milliseconds>(*resumed_at_ - held_from_)
            : held.held;
    const std::string resume_failure =
        held.resume.ok ? "" : "; resuming failed: " + held.resume.message;
    if (!held.quiesce.ok) {
      result_.failure = "quiesce failed";
      return fail("quiescing failed: " + held.quiesce.message + resume_failure);
    }
    std::optional<std::string> agent_failure;
    for (const auto& a : agents_) {
      const auto& node = a.node->node_name;
      if (!a.outcome) {
        agent_failure = agent_failure.value_or("node " + node + ": the agent was not started");
      } else if (!*a.outcome) {
        agent_failure =
            agent_failure.value_or("node " + node + ": " + a.outcome->error().describe());
      } else if (!(*a.outcome)->ok) {
        agent_failure = agent_failure.value_or("node " + node + ": " + (*a.outcome)->message);
      } else {
        agent_reports_.push_back(
            fmt::format("{}: {} volume(s) in {}, {}, agent peak RSS {}", node,
                        a.node->volumes.size(), (*a.outcome)->archive, (*a.outcome)->message,
                        human_bytes(static_cast<double>((*a.outcome)->peak_rss))));
        result_.size_bytes += static_cast<double>((*a.outcome)->bytes);
        // An agent reports success only once its archive is in every
        // destination: one upload to each, as the manager's own archive is.
        for (const auto& t : targets_) {
          reached(*t, static_cast<double>((*a.outcome)->bytes), writing_from_.value_or(held_from_));
        }
        if (result_.archive.empty()) {
          result_.archive = (*a.outcome)->archive;
        }
      }
    }
    if (restic() && !snapshot_failure_.empty()) {
      // Snapshots written before the failing one stay: each is complete, and
      // the next run's parent. Nothing half-written is visible in a restic
      // repository (packs no index names are ignored, and pruned later).
      result_.failure = snapshot_failure_kind_.empty() ? "cancelled" : snapshot_failure_kind_;
      return fail("backing up into the restic repository failed: " + snapshot_failure_ +
                  resume_failure);
    }
    if (!restic() && read_here() && (!written_ || !*written_)) {
      // The write step abandons its own upload when it fails. A failure of
      // the destination's side (not of reading the volumes) is its upload's.
      if (written_ && writing_from_) {
        const auto code = written_->error().code;
        if (code == archive::errc::io_error || code == archive::errc::no_space ||
            code == archive::errc::refused) {
          missed(*targets_.front(), written_->error(), *writing_from_);
        }
      }
      result_.failure = written_ ? archive::to_string(written_->error().code) : "internal error";
      const std::string why = written_ ? written_->error().message : "the archive was not written";
      return fail("archiving failed: " + why +
                  (agent_failure ? "; agent on " + *agent_failure : "") + resume_failure);
    }
    if (agent_failure) {
      result_.failure = "agent failed";
      return fail("the agent on " + *agent_failure + resume_failure);
    }
    if (still_held_ && !*still_held_) {
      result_.failure = "quiesce failed";
      return fail((restic() ? "the snapshots were not kept: " : "the archive was not published: ") +
                  still_held_->error().describe() + resume_failure);
    }
    return std::nullopt;
  }

  // Publishing, copies and pruning, each between its hook points; then the
  // summary.
  run_result ship(const quiesce::held_outcome& held) {
    archive_ = read_here() ? &**written_ : nullptr;
    location_ = result_.archive;
    if (auto ended = publish()) {
      return *ended;
    }
    if (!hooks_at({hook_phase::copy, hook_when::pre}, location_)) {
      return fail(pre_hook_failure_);
    }
    copy();
    hooks_at({hook_phase::copy, hook_when::post}, location_);

    report_(phase::pruning, "");
    if (!hooks_at({hook_phase::prune, hook_when::pre}, location_)) {
      return fail(pre_hook_failure_);
    }
    for (auto* target : holding_archive_) {
      if (auto p = steps_.prune(schedule_, *target); !p) {
        destination_failed(*target, p.error(), "pruning failed: ");
      }
    }
    hooks_at({hook_phase::prune, hook_when::post}, location_);
    if (!destination_failures_.empty()) {
      result_.failure = first_failure_kind_;
      return fail(fmt::format("the archive reached {} of {} destination(s) ({}); {}",
                              holding_archive_.size(), spec_.destinations.size(), location_,
                              joined_failures()));
    }
    if (!post_hook_failures_.empty()) {
      result_.failure = "hook failed";
      return fail(fmt::format("the archive is in {}", location_));
    }
    return succeeded(held);
  }

  // The archive written here goes public in its own destination, between
  // the process hook points.
  std::optional<run_result> publish() {
    if (archive_ == nullptr) {
      // Only agents wrote: every destination that was reachable has their
      // archives, and is pruned.
      for (const auto& t : targets_) {
        holding_archive_.push_back(t.get());
      }
      return std::nullopt;
    }
    report_(phase::shipping, "");
    if (!hooks_at({hook_phase::process, hook_when::pre})) {
      return fail(pre_hook_failure_);
    }
    auto published = steps_.publish(*archive_, *targets_.front());
    hooks_at({hook_phase::process, hook_when::post},
             published ? published->first.location : std::string());
    if (!published) {
      missed(*targets_.front(), published.error(), *writing_from_);
      result_.failure = archive::to_string(published.error().code);
      return fail("publishing the archive in " + targets_.front()->describe() +
                  " failed: " + published.error().message);
    }
    reached(*targets_.front(), static_cast<double>(archive_->bytes), *writing_from_);
    if (!published->second.empty()) {
      warnings_.push_back(published->second);
    }
    // The archive's own destination has it; each other one gets a copy, and
    // is pruned only when its copy is there (never the newest good one lost).
    holding_archive_.push_back(targets_.front().get());
    // From here on the archive is published: every outcome reports it.
    location_ = published->first.location;
    result_.archive = location_;
    result_.size_bytes += static_cast<double>(archive_->bytes);
    return std::nullopt;
  }

  void copy() {
    for (std::size_t i = 1; archive_ != nullptr && i < targets_.size(); ++i) {
      const auto copying_from = clock::now();
      auto copied =
          destinations::copy_archive(*targets_.front(), *targets_[i], archive_->file_name);
      if (!copied) {
        destination_failed(*targets_[i], copied.error(), "copying the archive failed: ");
        missed(*targets_[i], copied.error(), copying_from);
        continue;
      }
      reached(*targets_[i], static_cast<double>(copied->size), copying_from);
      holding_archive_.push_back(targets_[i].get());
      if (auto w = targets_[i]->point_latest(archive_->file_name); !w.empty()) {
        warnings_.push_back(w);
      }
    }
  }

  run_result succeeded(const quiesce::held_outcome& held) {
    // The hooks' and destinations' warnings (latest links), then the archive's.
    warnings_.insert(warnings_.begin(), hook_warnings_.begin(), hook_warnings_.end());
    std::uint64_t warning_count = warnings_.size();
    std::string read_paths;
    if (archive_ != nullptr) {
      warning_count += archive_->warning_count;
      for (std::size_t i = 0; i < archive_->warnings.size() && warnings_.size() < 100; ++i) {
        warnings_.push_back(archive_->warnings[i]);
      }
      for (const auto& p : archive_->read_paths) {
        read_paths += (read_paths.empty() ? "" : ", ") + p;
      }
    }
    std::string elsewhere;
    for (const auto& r : agent_reports_) {
      elsewhere += "; " + r;
    }
    result_.ok = true;
    result_.duration = clock::now() - start_;
    result_.message =
        fmt::format("{} volume(s) ({}), {}, held {:.1f}s{}{}{}{}", volume_count_,
                    read_paths.empty() ? "all on other nodes" : read_paths,
                    human_bytes(result_.size_bytes), result_.downtime.count(),
                    held.resume.ok ? "" : "; resuming: " + held.resume.message, left_stopped_,
                    warning_count == 0 ? ""
                                       : fmt::format("; {} warning(s), first: {}", warning_count,
                                                     warnings_.empty() ? "" : warnings_.front()),
                    elsewhere);
    return result_;
  }

  const engine::client& client_;
  quiesce::journal_store& journals_;
  const archive_steps& steps_;
  const runner_options& options_;
  const api::backup_schedule& schedule_;
  const api::backup_schedule_spec& spec_;
  const std::string& run_name_;
  const phase_reporter& report_;
  const held_reporter& holding_;
  const std::atomic<bool>& cancel_;
  const quiesce::quiesce_run quiesce_run_{
      run_name_, spec_.stop_during_backup, {}, spec_.label_match};
  /// What agents are given: the schedule, with its recipients inline.
  api::backup_schedule agent_schedule_ = schedule_;
  const clock::time_point start_ = clock::now();

  run_result result_;
  std::vector<std::string> post_hook_failures_;
  std::vector<std::string> hook_warnings_;
  /// "; left stopped (...): service a (2 replicas), ...": what the run left
  /// stopped for a no-restart label, in every message once it has resumed.
  std::string left_stopped_;
  /// What the early resume left stopped; written by resumer_, read once it
  /// has joined.
  std::vector<std::string> early_left_stopped_;
  std::string pre_hook_failure_;
  std::vector<std::unique_ptr<destinations::destination>> targets_;
  std::vector<std::string> destination_failures_;
  std::string_view first_failure_kind_;

  quiesce::volume_locations where_;
  std::vector<volume_input> inputs_;
  std::vector<std::string> through_engine_;
  std::size_t volume_count_ = 0;
  std::string agent_image_;
  std::optional<volume_container> reader_;
  archive_request request_;
  std::vector<agent_part> agents_;
  std::vector<std::string> agent_reports_;

  // Format restic: the repository, the node's name for the snapshots, and
  // what the snapshots came to.
  std::optional<restic::repository> repository_;
  std::vector<std::pair<restic::object_id, restic::snapshot>> listed_;
  std::string hostname_;
  std::vector<volume_snapshot> snapshots_;
  std::string snapshot_failure_;
  std::string_view snapshot_failure_kind_;

  // Shipping: the archive written here (none when only agents wrote), where
  // it went public, the destinations that hold it, and warnings.
  const archive_written* archive_ = nullptr;
  std::string location_;
  std::vector<destinations::destination*> holding_archive_;
  std::vector<std::string> warnings_;

  clock::time_point held_from_;
  std::optional<clock::time_point> writing_from_;
  std::optional<archive::result<archive_written>> written_;
  const quiesce::hold_baseline* baseline_ = nullptr;
  std::optional<engine::result<void>> still_held_;
  std::optional<clock::time_point> resumed_at_;
  std::atomic<std::size_t> unread_{0};
  // Last: the resuming thread uses the members above until it is joined.
  std::jthread resumer_;
};

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
  return backup_run(client_, journals_, steps_, options_, schedule, run_name, report, holding,
                    cancel)
      .run();
}

}  // namespace lifeboat::backup
