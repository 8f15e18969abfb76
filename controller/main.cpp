// lifeboat: one binary, one subcommand per job (ARCHITECTURE.md, "Process").
#include "controller/cli/commands.hpp"
#include "controller/cli/restore_command.hpp"
#include "controller/engine/client.hpp"

#include <fmt/core.h>
#include <CLI/CLI.hpp>

#include <cstdio>

namespace {

namespace engine = lifeboat::engine;

constexpr const char* lifeboat_version = "0.1.0";

// `lifeboat version`: our version, and proof that the engine answers — its
// version, the negotiated API version and this node's swarm role.
int run_version(const engine::client_options& options) {
  fmt::print("lifeboat {}\n", lifeboat_version);
  auto client = lifeboat::cli::connect_or_report(options);
  if (!client) {
    return 1;
  }
  auto version = client->version();
  auto info = client->info();
  if (!version || !info) {
    const auto& e = !version ? version.error() : info.error();
    fmt::print(stderr, "error: {}\n", e.describe());
    return 1;
  }
  fmt::print("engine {} (API {}, using {}), {}/{}\n", version->version, version->api_version,
             client->api_version(), version->os, version->arch);
  const auto& swarm = info->swarm;
  if (swarm.local_node_state != "active") {
    fmt::print("swarm: {} (not in swarm mode)\n", swarm.local_node_state);
  } else {
    fmt::print("swarm: active, {} on node {} ({} node(s), {} manager(s))\n",
               swarm.control_available ? "manager" : "worker", swarm.node_id, swarm.nodes,
               swarm.managers);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"lifeboat: backups of Docker volumes for Swarm, run as a reconciliation controller"};
  app.require_subcommand(1);
  engine::client_options options;
  app.add_option("--host", options.host,
                 "engine address, unix:///path (default: $DOCKER_HOST, else /var/run/docker.sock)");

  auto* version = app.add_subcommand("version", "print lifeboat's and the engine's versions");

  std::vector<std::string> files;
  auto* validate = app.add_subcommand("validate", "check object files offline");
  validate->add_option("files", files, "YAML files with lifeboat objects")->required();

  lifeboat::cli::get_options get_options{"", "table", ""};
  auto* get = app.add_subcommand("get", "list objects and their status");
  get->add_option("what", get_options.what, "schedules, backups or restores")->required();
  get->add_option("-o,--output", get_options.output, "table, json or yaml");
  get->add_option("--objects-dir", get_options.objects_dir,
                  "read objects from this directory instead of the swarm's configs");

  std::string apply_file;
  auto* apply = app.add_subcommand("apply", "store objects as swarm configs");
  apply->add_option("-f,--filename", apply_file, "YAML file with lifeboat objects")->required();

  auto* sync = app.add_subcommand(
      "sync-status", "discover objects once and write their status to their configs' labels");

  std::string state_file = "/var/lib/lifeboat/state.json";
  int recover_timeout_seconds = 300;
  auto* recover =
      app.add_subcommand("recover", "bring back every workload a run left scaled down or stopped");
  recover->add_option("--state-file", state_file,
                      "journal file, used when the engine is not a swarm manager");
  recover->add_option("--timeout", recover_timeout_seconds,
                      "seconds to wait for each run's workloads to come back");

  lifeboat::cli::controller_options controller_options;
  int resync_seconds = 60;
  auto* controller = app.add_subcommand("controller", "run the reconciliation controller");
  controller->add_option("--metrics-addr", controller_options.metrics_addr,
                         "where /metrics, /healthz and /readyz are served (host:port)");
  controller->add_option("--log-format", controller_options.log_format, "text or json")
      ->check(CLI::IsMember({"text", "json"}));
  controller
      ->add_option("--log-level", controller_options.log_level,
                   "debug, info or warning (debug: each exec hook's outcome and output)")
      ->check(CLI::IsMember({"debug", "info", "warning"}));
  controller->add_option("--helper-image", controller_options.helper_image,
                         "image for volume containers (default: lifeboat's own)");
  controller->add_option("--agent-image", controller_options.agent_image,
                         "image the agents reading volumes on other nodes run, present on "
                         "every node (default: the image of lifeboat's own container)");
  controller->add_option("--node-socket", controller_options.node_socket,
                         "the engine's socket on each node, mounted into the agent jobs that "
                         "run exec hooks there; Swarm templates such as {{.Node.Hostname}} "
                         "are expanded");
  controller->add_flag("!--read-through-engine", controller_options.direct_read,
                       "always read volumes through the engine, even when their mountpoint "
                       "is readable");
  controller
      ->add_option("--spool-limit", controller_options.spool_limit,
                   "how much of a volume's data may wait on disk (in the destination) "
                   "for compression, so that workloads resume once it is read; 0 = none")
      ->transform(CLI::AsSizeValue(false));
  controller->add_option("--state-file", controller_options.state_file,
                         "journal file, used when the engine is not a swarm manager");
  controller->add_option("--identity", controller_options.loop.identity,
                         "lease identity (default: host name and PID)");
  controller->add_option("--workers", controller_options.loop.workers, "reconcile workers");
  controller
      ->add_option("--resync", resync_seconds,
                   "seconds between full re-lists of objects and workloads (events "
                   "trigger one at once; this catches anything missed)")
      ->check(CLI::Range(1, 86400));
  controller->add_option("--lease-name", controller_options.loop.lease_name,
                         "the config that holds the leader lease; controllers sharing it "
                         "elect one leader");

  lifeboat::cli::backup_once_options backup_options;
  auto* backup = app.add_subcommand("backup", "run one backup now, or ask the controller to");
  backup->add_option("--schedule", backup_options.schedule_file, "a file with one BackupSchedule");
  backup->add_option("--helper-image", backup_options.helper_image,
                     "image for the volume container (default: lifeboat's own)");
  backup->add_option("--agent-image", backup_options.agent_image,
                     "image the agents reading volumes on other nodes run, present on every "
                     "node (default: the image of lifeboat's own container)");
  backup->add_option("--node-socket", backup_options.node_socket,
                     "the engine's socket on each node, mounted into the agent jobs that run "
                     "exec hooks there; Swarm templates such as {{.Node.Hostname}} are expanded");
  backup->add_flag("!--read-through-engine", backup_options.direct_read,
                   "always read volumes through the engine, even when their mountpoint is "
                   "readable");
  backup
      ->add_option("--spool-limit", backup_options.spool_limit,
                   "how much of a volume's data may wait on disk (in the destination) for "
                   "compression, so that workloads resume once it is read; 0 = none")
      ->transform(CLI::AsSizeValue(false));
  backup->add_option("--state-file", backup_options.state_file,
                     "journal file, used when the engine is not a swarm manager");
  std::string now_schedule;
  auto* backup_now = backup->add_subcommand("now", "create a Backup object for the controller");
  backup_now->add_option("schedule", now_schedule, "the BackupSchedule's name")->required();

  lifeboat::cli::restore_options restore_options;
  auto* restore = app.add_subcommand(
      "restore", "verify an archive, then put it back into volumes with their workloads held");
  auto* archive_option =
      restore->add_option("--archive", restore_options.archive,
                          "the archive (.tar, .tar.gz, .tar.zst); with --destination, its name "
                          "there");
  restore
      ->add_option("--repository", restore_options.repository,
                   "instead of --archive: a local restic repository's folder (lifeboat's or "
                   "restic's own); --volume FROM is a volume name (its snapshot path /FROM) or "
                   "an absolute path inside the snapshot, with =TO")
      ->excludes(archive_option);
  restore->add_option("--snapshot", restore_options.snapshot,
                      "with --repository: latest (per volume, the newest snapshot that holds "
                      "it; the default), or a snapshot ID or a unique prefix of one");
  restore->add_option("--password-file", restore_options.password_file,
                      "with --repository: FILE whose content is the repository's password");
  restore->add_option("--tag", restore_options.tags,
                      "with --repository and latest: only snapshots with this tag; repeatable "
                      "(all must be there)");
  restore->add_option("--destination", restore_options.destination_file,
                      "a YAML file with one destination as a schedule lists it (s3: {…}, "
                      "webdav: {…}, local: {…}): read the archive from there");
  restore->add_option("--spool-dir", restore_options.spool_folder,
                      "where an archive from a remote destination is copied to be verified and "
                      "unpacked, as a file without a name (default: $TMPDIR, else /tmp)");
  restore
      ->add_option("--volume", restore_options.volumes,
                   "FROM[=TO]: the archive's folder FROM (a volume name, a path, or . for the "
                   "archive's root) into volume TO (default FROM); repeatable")
      ->required();
  restore->add_flag("--wipe", restore_options.wipe,
                    "empty each target volume first (only after the archive is verified and "
                    "found to fit)");
  restore->add_flag("--create-volume", restore_options.create_volume,
                    "create a target volume that does not exist, on this engine's node");
  restore->add_flag("--allow-devices", restore_options.allow_devices,
                    "accept character and block device entries");
  restore->add_flag("--allow-absolute-symlinks", restore_options.allow_absolute_symlinks,
                    "accept symlinks to absolute paths (they resolve in the workload's container)");
  auto* identity =
      restore->add_option("--identity", restore_options.identity_file,
                          "FILE with the age identity (age-keygen's file) that decrypts an "
                          "encrypted archive");
  restore
      ->add_option("--gpg-secret-key", restore_options.gpg_secret_key_file,
                   "FILE with OpenPGP secret keys (gpg --export-secret-keys) that decrypt an "
                   "archive encrypted with gpg")
      ->excludes(identity);
  restore
      ->add_option("--passphrase-file", restore_options.passphrase_file,
                   "FILE whose content is the passphrase of an archive encrypted with one (age "
                   "or gpg -c), or with --gpg-secret-key the passphrase of those keys")
      ->excludes(identity);
  restore->add_flag("--dry-run", restore_options.dry_run,
                    "verify the archive (checksum, every entry, readable to the end, fits in "
                    "the volumes) and stop");
  restore
      ->add_option("--path", restore_options.path,
                   "auto (direct when the mountpoints are writable here), engine or direct")
      ->check(CLI::IsMember({"auto", "engine", "direct"}));
  restore->add_option(
      "--stop-group", restore_options.stop_group,
      "also hold the workloads of this stop-during-backup group (default: only those "
      "that mount a target volume)");
  restore
      ->add_option("--label-match", restore_options.label_match,
                   "how --stop-group matches label values: exact, or one-of (a value \"a,b\" is "
                   "in groups a and b)")
      ->check(CLI::IsMember({"exact", "one-of"}));
  restore->add_option("--helper-image", restore_options.helper_image,
                      "image for the restore and wipe containers (default: lifeboat's own)");
  restore->add_option("--agent-image", restore_options.agent_image,
                      "image of the agent jobs restoring into volumes on other nodes, present "
                      "on every node (default: lifeboat's own)");
  restore->add_option("--state-file", restore_options.state_file,
                      "journal file, used when the engine is not a swarm manager");
  restore->add_option("--into-directory", restore_options.into_directory,
                      "extract into DIR/TO instead of volumes, without an engine");

  lifeboat::cli::agent_options agent_options;
  auto* agent = app.add_subcommand(
      "agent", "the part of a backup run on the node of its volumes (the controller starts it)");
  agent->add_option("--run", agent_options.run_name, "the run's name")->required();
  agent->add_option("--file-name", agent_options.file_name, "the archive's file name")->required();
  agent->add_option("--volume", agent_options.volumes, "a volume mounted at /lifeboat/VOLUME")
      ->required();

  auto* agent_exec = app.add_subcommand(
      "agent-exec",
      "the exec hooks of tasks on one node, run there (the controller starts it; the commands "
      "come in LIFEBOAT_HOOKS)");

  lifeboat::cli::restore_agent_options restore_agent_options;
  auto* restore_agent = app.add_subcommand(
      "restore-agent",
      "the part of a restore on the node of its target volumes (the controller starts it)");
  restore_agent->add_option("--run", restore_agent_options.run_name, "the run's name")->required();
  restore_agent->add_flag("--write", restore_agent_options.write,
                          "wipe (when asked) and unpack once verified; without: verify only");
  restore_agent->add_flag("--allow-devices", restore_agent_options.allow_devices,
                          "restore device and fifo entries");
  restore_agent->add_flag("--allow-absolute-symlinks",
                          restore_agent_options.allow_absolute_symlinks,
                          "restore symlinks to absolute paths");

  CLI11_PARSE(app, argc, argv);
  if (agent->parsed()) {
    return lifeboat::cli::agent(agent_options);
  }
  if (agent_exec->parsed()) {
    return lifeboat::cli::agent_exec(options);
  }
  if (restore_agent->parsed()) {
    return lifeboat::cli::restore_agent(restore_agent_options);
  }
  if (restore->parsed()) {
    return lifeboat::cli::restore(options, restore_options);
  }
  if (controller->parsed()) {
    controller_options.loop.resync = std::chrono::seconds{resync_seconds};
    return lifeboat::cli::controller(options, controller_options);
  }
  if (backup_now->parsed()) {
    return lifeboat::cli::backup_now(options, now_schedule);
  }
  if (backup->parsed()) {
    if (backup_options.schedule_file.empty()) {
      fmt::print(stderr, "error: backup needs --schedule FILE (or: backup now SCHEDULE)\n");
      return 2;
    }
    return lifeboat::cli::backup_once(options, backup_options);
  }
  if (recover->parsed()) {
    return lifeboat::cli::recover(options, state_file,
                                  std::chrono::seconds{recover_timeout_seconds});
  }
  if (version->parsed()) {
    return run_version(options);
  }
  if (validate->parsed()) {
    return lifeboat::cli::validate(files);
  }
  if (get->parsed()) {
    return lifeboat::cli::get(options, get_options);
  }
  if (apply->parsed()) {
    return lifeboat::cli::apply(options, apply_file);
  }
  if (sync->parsed()) {
    return lifeboat::cli::sync_status(options);
  }
  return 2;
}
