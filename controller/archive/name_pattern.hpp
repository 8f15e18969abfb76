#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lifeboat::archive {

/// The names of the files one schedule writes into a destination: its archive
/// name template (api::archive_spec::name) expanded for the schedule at any
/// time, followed by the extension (".tar.gz"). Matching is exact and
/// positional: `{schedule}` and every other character must appear as written,
/// and each conversion stands for exactly what api::expand_archive_name writes
/// for it (%Y four digits, %m two, %e a space or digit and a digit, %a and %b
/// an English abbreviation, ...). So with "{schedule}-%Y-%m-%dT%H-%M-%S",
/// "nightly-db-2024-05-01T03-00-00.tar.gz" is nightly-db's, while
/// "nightly-db-extra-2024-05-01T03-00-00.tar.gz" (schedule nightly-db-extra)
/// is not, nor is any ".partial" or ".sha256" file. Two schedules whose
/// templates expand to the same shapes (a template without {schedule} used
/// by both, in one folder) cannot be told apart: give each its own
/// {schedule} or folder.
///
/// An archive written on another node by that node's agent carries the
/// node's name before the extension ("nightly-db-2024-05-01T03-00-00.n3.tar.gz",
/// see node_file_name): it is the schedule's too, and node_of() tells whose.
class archive_name_pattern {
 public:
  archive_name_pattern(std::string_view name_template, std::string_view schedule_name,
                       std::string_view extension);

  bool matches(std::string_view file_name) const { return node_of(file_name).has_value(); }

  /// nullopt when `file_name` is not one of the schedule's archives; "" for
  /// one written on the controller's node; otherwise the node's name.
  std::optional<std::string> node_of(std::string_view file_name) const;

  /// The same pattern narrowed to the archives of one node ("" for the
  /// controller's): what an agent may clear as its own leftovers in a folder
  /// every node writes into, while the others may be writing there.
  archive_name_pattern of_node(std::string_view node) const;

 private:
  enum class kind { literal, digits, space_or_digit, weekday, month };
  struct token {
    kind k = kind::literal;
    std::string text;  // for literals
  };
  std::optional<std::string> any_node_of(std::string_view file_name) const;

  std::vector<token> tokens_;
  std::string extension_;
  std::optional<std::string> only_node_;
};

/// The name under which a node's agent writes its archive: the stem, a dot,
/// the node's name made file-name safe (every character but letters, digits,
/// '-' and '_' becomes '_'), then the extension.
std::string node_file_name(std::string_view stem, std::string_view node,
                           std::string_view extension);

/// The archive that node `node` wrote in the same run as `file_name` (an
/// archive of a run, as a Backup records it: the controller's node's, or one
/// of `nodes`' when it read nothing itself): the stem, without the suffix of
/// any of `nodes`, then `node`'s (node_file_name), then the extension, which
/// starts at the last ".tar". `file_name` itself when it has no ".tar".
std::string node_archive_of(std::string_view file_name, std::string_view node,
                            const std::vector<std::string>& nodes);

}  // namespace lifeboat::archive
