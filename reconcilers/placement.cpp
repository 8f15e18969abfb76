#include "reconcilers/placement.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <string_view>

namespace lifeboat::reconcilers {

namespace {

// Whether RFC 3339 UTC time `a` ("2026-12-01T10:00:00.25Z", as the engine
// writes it: fraction digits trimmed, none at all on a whole second) is
// before `b`. Plain string order gets a whole second wrong: 'Z' sorts after
// '.', so "…:00Z" would pass for later than "…:00.25Z".
bool earlier(std::string_view a, std::string_view b) {
  constexpr std::size_t seconds_end = 19;  // "YYYY-MM-DDTHH:MM:SS"
  if (a.size() < seconds_end || b.size() < seconds_end) {
    return a < b;
  }
  if (const auto whole = a.substr(0, seconds_end).compare(b.substr(0, seconds_end)); whole != 0) {
    return whole < 0;
  }
  // The fraction's digits, right-padded to nanoseconds.
  const auto fraction = [](std::string_view t) {
    std::string digits;
    if (t.size() > seconds_end && t[seconds_end] == '.') {
      for (std::size_t i = seconds_end + 1; i < t.size() && t[i] >= '0' && t[i] <= '9'; ++i) {
        digits += t[i];
      }
    }
    digits.resize(9, '0');
    return digits;
  };
  return fraction(a) < fraction(b);
}

// The nodes a service's data is on: where its tasks are meant to run, or,
// with none meant to run, where its newest task ran.
std::set<std::string> nodes_of(const std::string& service_id,
                               const std::vector<task_placement>& tasks) {
  std::set<std::string> running;
  const task_placement* newest = nullptr;
  for (const auto& t : tasks) {
    if (t.service_id != service_id || t.node_id.empty()) {
      continue;
    }
    if (t.desired_state == "running") {
      running.insert(t.node_id);
    }
    if (newest == nullptr || earlier(newest->created_at, t.created_at)) {
      newest = &t;
    }
  }
  if (running.empty() && newest != nullptr) {
    running.insert(newest->node_id);
  }
  return running;
}

}  // namespace

std::vector<volume_elsewhere> volumes_elsewhere(const std::vector<std::string>& volumes,
                                                const std::vector<observed_service>& services,
                                                const std::vector<task_placement>& tasks,
                                                const std::string& self_node) {
  const std::set<std::string> wanted(volumes.begin(), volumes.end());
  std::map<std::string, std::pair<std::set<std::string>, std::set<std::string>>> found;
  std::set<std::string> here;
  for (const auto& s : services) {
    std::set<std::string> mounted;
    for (const auto& v : s.volumes) {
      if (wanted.contains(v)) {
        mounted.insert(v);
      }
    }
    if (mounted.empty()) {
      continue;
    }
    auto nodes = nodes_of(s.id, tasks);
    if (nodes.erase(self_node) > 0) {
      here.insert(mounted.begin(), mounted.end());
    }
    if (nodes.empty()) {
      continue;
    }
    for (const auto& v : mounted) {
      auto& [node_ids, names] = found[v];
      node_ids.insert(nodes.begin(), nodes.end());
      names.insert(s.name);
    }
  }
  std::vector<volume_elsewhere> out;
  for (auto& [volume, where] : found) {
    out.push_back({volume,
                   {where.first.begin(), where.first.end()},
                   {where.second.begin(), where.second.end()},
                   here.contains(volume)});
  }
  return out;
}

restore_placement place_restore(const std::vector<std::string>& targets,
                                const std::vector<volume_elsewhere>& elsewhere,
                                const std::map<std::string, std::string>& names) {
  const auto name_of = [&](const std::string& id) {
    const auto it = names.find(id);
    return it == names.end() ? id : it->second;
  };
  const auto join = [](const std::vector<std::string>& parts) {
    std::string out;
    for (const auto& p : parts) {
      out += (out.empty() ? "" : ", ") + p;
    }
    return out;
  };
  std::map<std::string, const volume_elsewhere*> by_volume;
  for (const auto& e : elsewhere) {
    by_volume[e.volume] = &e;
  }
  restore_placement out;
  std::string chosen_volume;
  std::vector<std::string> here;  // targets kept by no service elsewhere
  for (const auto& target : targets) {
    const auto it = by_volume.find(target);
    if (it == by_volume.end()) {
      here.push_back(target);
      continue;
    }
    const auto& e = *it->second;
    if (e.node_ids.empty()) {
      here.push_back(target);
      continue;
    }
    if (e.also_here || e.node_ids.size() > 1) {
      std::vector<std::string> nodes;
      if (e.also_here) {
        nodes.emplace_back("the controller's node");
      }
      for (const auto& id : e.node_ids) {
        nodes.push_back(name_of(id));
      }
      out.node_id.clear();
      out.error = "volume " + target + " is kept on " + std::to_string(nodes.size()) + " nodes (" +
                  join(nodes) + "; services " + join(e.service_names) +
                  "): each has its own volume of that name, and a restore writes one; run the "
                  "services mounting it on one node, then restore";
      return out;
    }
    const auto& node = e.node_ids.front();
    if (!out.node_id.empty() && out.node_id != node) {
      out.node_id.clear();
      out.error = "volume " + chosen_volume + " is on node " +
                  name_of(by_volume[chosen_volume]->node_ids.front()) + " and volume " + target +
                  " on node " + name_of(node) +
                  ": a restore writes on one node; restore them in separate Restores";
      return out;
    }
    if (out.node_id.empty()) {
      out.node_id = node;
      chosen_volume = target;
    }
  }
  if (!out.node_id.empty() && !here.empty()) {
    out.error = "volume " + chosen_volume + " is on node " + name_of(out.node_id) +
                ", and no service keeps " + join(here) +
                " there (it is on the controller's node, or unused): a restore writes on one "
                "node; restore them in separate Restores";
    out.node_id.clear();
  }
  return out;
}

std::map<std::string, std::string> node_names(const std::map<std::string, std::string>& hostnames) {
  std::map<std::string, int> uses;
  for (const auto& [id, host] : hostnames) {
    ++uses[host];
  }
  std::map<std::string, std::string> names;
  for (const auto& [id, host] : hostnames) {
    names[id] = host.empty() || uses[host] > 1 ? id : host;
  }
  return names;
}

}  // namespace lifeboat::reconcilers
