#include "controller/backup/volumes.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>

namespace lifeboat::backup {

namespace json = boost::json;

std::string mount_path(const std::string& volume) { return "/lifeboat/" + volume; }

engine::result<std::vector<engine::volume>> resolve_volumes(const engine::client& client,
                                                            const api::backup_schedule_spec& spec) {
  std::vector<engine::volume> out;
  if (spec.volume_selector) {
    engine::filters f;
    for (const auto& [k, v] : spec.volume_selector->match_labels) {
      f["label"].push_back(k + "=" + v);
    }
    auto listed = client.list_volumes(f);
    if (!listed) {
      return listed.error();
    }
    if (listed->empty()) {
      std::string selector;
      for (const auto& [k, v] : spec.volume_selector->match_labels) {
        selector += (selector.empty() ? "" : ",") + k + "=" + v;
      }
      return engine::make_error(engine::errc::not_found,
                                "no volume on this node matches the selector " + selector);
    }
    out = std::move(*listed);
  } else {
    for (const auto& name : spec.volumes) {
      auto v = client.inspect_volume(name);
      if (!v) {
        if (v.error().is(engine::errc::not_found)) {
          return engine::make_error(engine::errc::not_found,
                                    "volume " + name + " does not exist on this node");
        }
        return v.error();
      }
      out.push_back(std::move(*v));
    }
  }
  std::sort(out.begin(), out.end(),
            [](const engine::volume& a, const engine::volume& b) { return a.name < b.name; });
  return out;
}

engine::result<volume_container> volume_container::create(const engine::client& client,
                                                          const std::string& image,
                                                          const std::vector<std::string>& volumes,
                                                          bool read_only, const std::string& name,
                                                          const engine::labels& labels) {
  json::array mounts;
  for (const auto& v : volumes) {
    mounts.push_back(json::object{
        {"Type", "volume"}, {"Source", v}, {"Target", mount_path(v)}, {"ReadOnly", read_only}});
  }
  json::object container_labels{{volume_container_label, "true"}};
  for (const auto& [k, v] : labels) {
    container_labels[k] = v;
  }
  const json::object body{
      {"Image", image},
      // Never started; a command is given only because some images have none.
      {"Cmd", json::array{"true"}},
      {"Labels", container_labels},
      {"HostConfig", json::object{{"NetworkMode", "none"}, {"Mounts", std::move(mounts)}}}};
  auto id = client.create_container(body, name);
  if (!id) {
    return id.error();
  }
  return volume_container(client, std::move(*id));
}

engine::result<std::size_t> remove_leftover_volume_containers(const engine::client& client,
                                                              const std::string& schedule) {
  engine::filters f;
  f["label"].push_back(std::string(volume_container_label) + "=true");
  f["label"].push_back(std::string(volume_container_schedule_label) + "=" + schedule);
  auto listed = client.list_containers(f, /*all=*/true);
  if (!listed) {
    return listed.error();
  }
  std::size_t removed = 0;
  for (const auto& c : *listed) {
    auto r = client.remove_container(c.id, /*force=*/true);
    if (!r && !r.error().is(engine::errc::not_found)) {
      return r.error();
    }
    removed += r ? 1 : 0;
  }
  return removed;
}

volume_container::volume_container(volume_container&& other) noexcept
    : client_(other.client_), id_(std::move(other.id_)) {
  other.id_.clear();
}

volume_container::~volume_container() {
  if (!id_.empty()) {
    (void)client_->remove_container(id_, true);
  }
}

engine::result<engine::http::body_reader> volume_container::read(const std::string& volume) const {
  return client_->get_archive(id_, mount_path(volume));
}

engine::result<void> volume_container::write(const std::string& volume,
                                             const engine::http::body_source& source) const {
  return client_->put_archive(id_, mount_path(volume), source);
}

}  // namespace lifeboat::backup
