#pragma once

#include "api/decode.hpp"
#include "api/labels.hpp"
#include "api/objects.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// Discovery: which lifeboat objects exist, read from Swarm configs labelled
// `lifeboat.object` (or from a directory of YAML files), and which version of
// each is in force. Pure apart from load_directory, which reads files.
namespace lifeboat::objects {

using label_map = std::map<std::string, std::string>;

/// Label keys (api/labels.hpp), under the name discovery has always used.
namespace label = api::label;

/// Where one object's text came from: a Swarm config, or a file (then `id` is
/// the path and `version` 0).
struct object_source {
  std::string id;
  std::uint64_t version = 0;
  std::string name;        ///< config name, or file path
  std::string created_at;  ///< RFC 3339 as the engine writes it (or the file's mtime)
  label_map labels;
  std::string data;  ///< the YAML text
};

enum class standing {
  active,      ///< valid, and the version in force for its kind and name
  superseded,  ///< valid, but a newer valid config with the same kind and name exists
  invalid,     ///< does not decode or validate; never in force
};

std::string_view to_string(standing s);

/// One discovered object: its source, what decoding made of it, and whether
/// it is the version in force.
struct catalog_entry {
  object_source source;
  api::decoded_document document;  ///< document.value is set iff valid
  standing state = standing::invalid;
  std::string superseded_by;  ///< config name of the version in force, when superseded
  std::string note;           ///< why an active entry is noteworthy (a newer version is invalid)

  const api::object* object() const { return document.value ? &*document.value : nullptr; }
  /// All errors as "line:col: path: message", joined by "; ".
  std::string error_summary() const;
};

/// Decodes every source and settles which version is in force: for each kind
/// and metadata.name the newest *valid* source (by created_at, then id) is
/// active; older valid ones are superseded. A newer invalid version never
/// displaces a valid one — the schedule keeps running as it was and the
/// invalid config reports its errors — so a typo cannot stop backups.
/// A source must hold exactly one object. Output is ordered by kind, name,
/// then newest first.
std::vector<catalog_entry> build_catalog(std::vector<object_source> sources);

/// Reads every *.yaml and *.yml file directly in `dir`, one source per
/// document; a file's sources share its modification time. Returns an error
/// message when the directory cannot be read.
std::optional<std::string> load_directory(const std::string& dir, std::vector<object_source>& out);

/// Compares two RFC 3339 UTC times as the engine writes them (with 0 to 9
/// fractional digits): <0, 0, >0.
int compare_timestamps(std::string_view a, std::string_view b);

/// RFC 3339 UTC with seconds precision: "2026-11-25T03:00:00Z".
std::string format_utc(std::chrono::sys_seconds t);

}  // namespace lifeboat::objects
