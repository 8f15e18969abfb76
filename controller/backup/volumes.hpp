#pragma once

#include "api/labels.hpp"
#include "api/objects.hpp"
#include "controller/engine/client.hpp"

#include <optional>
#include <string>
#include <vector>

// Reading volumes through the engine: the volumes a schedule names or selects,
// and a container that mounts them without ever running.
namespace lifeboat::backup {

/// The volumes of `spec` on this node: the named ones (each must exist), or
/// those carrying every label of the selector (none matching is an error, so
/// a typo in a selector does not make empty backups). Sorted by name.
engine::result<std::vector<engine::volume>> resolve_volumes(const engine::client& client,
                                                            const api::backup_schedule_spec& spec);

using engine::own_image;

/// A container that is created, never started, with each volume mounted at
/// /lifeboat/<volume> (read-only for reading). Reading or writing its paths
/// through the engine's archive endpoints needs no process in it, so the
/// image only has to exist locally. Removed when destroyed.
class volume_container {
 public:
  /// Creates the container named `name` from `image`, labelled
  /// volume_container_label=true and with `labels`.
  static engine::result<volume_container> create(const engine::client& client,
                                                 const std::string& image,
                                                 const std::vector<std::string>& volumes,
                                                 bool read_only, const std::string& name,
                                                 const engine::labels& labels = {});

  volume_container(volume_container&& other) noexcept;
  volume_container& operator=(volume_container&&) = delete;
  volume_container(const volume_container&) = delete;
  ~volume_container();

  const std::string& id() const { return id_; }

  /// The tar stream of the volume's content; its entries are named
  /// "<volume>/...", the volume's own directory first.
  engine::result<engine::http::body_reader> read(const std::string& volume) const;

  /// Unpacks a tar stream whose entries are relative to the volume's root.
  engine::result<void> write(const std::string& volume,
                             const engine::http::body_source& source) const;

 private:
  volume_container(const engine::client& client, std::string id)
      : client_(&client), id_(std::move(id)) {}

  const engine::client* client_;
  std::string id_;
};

/// Every volume container carries this label ("true").
inline constexpr std::string_view volume_container_label = api::label::volume_container;
/// The schedule whose run made a backup's volume container.
inline constexpr std::string_view volume_container_schedule_label = api::label::schedule;

/// Removes the volume containers left by runs of `schedule` that died (kill -9,
/// power loss) before removing their own; a run calls it before making its
/// container, as it removes the partial files of earlier runs. Returns how
/// many were removed.
engine::result<std::size_t> remove_leftover_volume_containers(const engine::client& client,
                                                              const std::string& schedule);

/// Where a volume is mounted inside a volume_container.
std::string mount_path(const std::string& volume);

}  // namespace lifeboat::backup
