#pragma once

#include "reconcilers/observed.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

// Which container commands run at a hook point of a backup run: the labels
// of docker-volume-backup's exec hooks, read from containers, and the
// choice of containers for one point. Pure: the controller lists the
// containers (its own node's) and the tasks of other nodes, and runs the
// commands this plans (controller/backup/exec_hooks.hpp): its own node's
// itself, another node's through an agent job on that node.
namespace lifeboat::reconcilers {

/// `docker-volume-backup.<point>=<command>` with point "archive-pre",
/// "archive-post", ..., "prune-post"; `<that>.user=<user>` runs it as a user.
inline constexpr std::string_view hook_label_prefix = "docker-volume-backup.";
inline constexpr std::string_view hook_user_suffix = ".user";
/// A schedule's `execLabel` restricts its hooks to containers whose value of
/// this label equals it.
inline constexpr std::string_view exec_label_label = "docker-volume-backup.exec-label";
/// Deprecated names of archive-pre and archive-post, still read: a container
/// with both the new and the old label runs the new one's command.
inline constexpr std::string_view exec_pre_label = "docker-volume-backup.exec-pre";
inline constexpr std::string_view exec_post_label = "docker-volume-backup.exec-post";

/// A command split into words, or why it could not be.
struct split_command {
  std::vector<std::string> words;
  std::string error;  ///< empty when the split succeeded
};

/// Splits `command` into words as a POSIX shell does, without running one
/// (no variables, globs, pipes or redirections: `/bin/sh -c '...'` does
/// those): words are separated by blanks (space, tab, newline); a backslash
/// outside quotes takes the next character literally (a backslash-newline
/// joins lines); '...' is literal; inside "..." a backslash escapes only
/// `$`, `` ` ``, `"`, `\` and newline. An unterminated quote, a trailing
/// backslash or a command of no words is an error.
split_command split_shell_words(std::string_view command);

/// One container's command at a point, as its labels give it.
struct hook_command {
  std::string label;    ///< the label it came from (the deprecated one when that was used)
  std::string command;  ///< the label's value, unsplit
  std::string user;     ///< from `<label>.user`; empty: the container's user
};

/// The command `labels` give for `point` ("archive-pre", ...): the label
/// `docker-volume-backup.<point>`, or for archive-pre and archive-post the
/// deprecated exec-pre and exec-post when the new one is absent. The user
/// comes from `<the label used>.user`, or for a deprecated label from the
/// new label's `.user` when its own is absent. nullopt: no command there.
std::optional<hook_command> hook_command_at(const label_map& labels, std::string_view point);

/// Whether `labels` pass a schedule's execLabel: always when unset, else
/// when `docker-volume-backup.exec-label` has exactly that value.
bool exec_label_matches(const label_map& labels, const std::optional<std::string>& exec_label);

/// A container on the controller's own node, where execs can run.
struct hook_container {
  std::string id;
  std::string name;  ///< without the leading '/'
  label_map container_labels;
  std::string state;  ///< State.Status: only "running" containers run hooks
};

/// A running task container on another node, known from its task and its
/// service's container labels (Spec.TaskTemplate.ContainerSpec.Labels, which
/// Swarm copies onto the container).
struct hook_remote_task {
  std::string task_id;
  std::string service_name;
  std::string node_id;
  std::string node_name;  ///< as messages name nodes (node_names)
  label_map container_labels;
};

/// One exec to run.
struct hook_exec {
  /// Here: the container. On another node: empty, the node's side finds the
  /// container of `task_id` there.
  std::string container_id;
  std::string task_id;  ///< on another node only
  /// Here: the container's name. On another node: its service's name (the
  /// container's name is known on its node only).
  std::string container_name;
  std::string label;
  std::vector<std::string> cmd;
  std::string user;
};

/// The execs of one other node: they run in one agent job there.
struct node_hook_execs {
  std::string node_id;
  std::string node_name;         ///< as messages name nodes (node_names)
  std::vector<hook_exec> execs;  ///< sorted by service name, then task
};

/// What runs at one point.
struct hook_plan {
  std::vector<hook_exec> execs;  ///< here, sorted by container name
  /// On other nodes, by node; sorted by node name. Only nodes with a command.
  std::vector<node_hook_execs> elsewhere;
  /// Commands that could not be split, naming container (or service, task
  /// and node) and label; when any is here the point fails and nothing of it
  /// runs.
  std::vector<std::string> errors;
};

/// The execs of `point` ("archive-pre", ...): every running container `here`
/// and every task `elsewhere` with a command for it that passes `exec_label`,
/// the latter grouped by node.
hook_plan plan_hook_point(std::string_view point, const std::optional<std::string>& exec_label,
                          const std::vector<hook_container>& here,
                          const std::vector<hook_remote_task>& elsewhere);

}  // namespace lifeboat::reconcilers
