#include "reconcilers/exec_hooks.hpp"

#include <algorithm>
#include <map>
#include <tuple>

namespace lifeboat::reconcilers {

namespace {

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\n'; }

// The characters a backslash escapes inside double quotes (POSIX 2.2.3).
bool escapable_in_double_quotes(char c) {
  return c == '$' || c == '`' || c == '"' || c == '\\' || c == '\n';
}

std::string value_of(const label_map& labels, const std::string& key) {
  const auto it = labels.find(key);
  return it == labels.end() ? std::string() : it->second;
}

}  // namespace

split_command split_shell_words(std::string_view command) {
  split_command out;
  std::string word;
  // A word exists once anything of it was read, even '' (an empty word).
  bool in_word = false;
  std::size_t i = 0;
  while (i < command.size()) {
    const char c = command[i];
    if (is_blank(c)) {
      if (in_word) {
        out.words.push_back(std::move(word));
        word.clear();
        in_word = false;
      }
      ++i;
    } else if (c == '\\') {
      if (i + 1 >= command.size()) {
        out.error = "ends with a backslash";
        return out;
      }
      // A backslash-newline joins lines and is not part of the word.
      if (command[i + 1] != '\n') {
        word += command[i + 1];
        in_word = true;
      }
      i += 2;
    } else if (c == '\'') {
      const auto end = command.find('\'', i + 1);
      if (end == std::string_view::npos) {
        out.error = "a single quote is not closed";
        return out;
      }
      word.append(command.substr(i + 1, end - i - 1));
      in_word = true;
      i = end + 1;
    } else if (c == '"') {
      in_word = true;
      ++i;
      for (;;) {
        if (i >= command.size()) {
          out.error = "a double quote is not closed";
          return out;
        }
        const char d = command[i];
        if (d == '"') {
          ++i;
          break;
        }
        if (d == '\\' && i + 1 < command.size() && escapable_in_double_quotes(command[i + 1])) {
          if (command[i + 1] != '\n') {
            word += command[i + 1];
          }
          i += 2;
          continue;
        }
        word += d;
        ++i;
      }
    } else {
      word += c;
      in_word = true;
      ++i;
    }
  }
  if (in_word) {
    out.words.push_back(std::move(word));
  }
  if (out.words.empty()) {
    out.error = "the command is empty";
  }
  return out;
}

std::optional<hook_command> hook_command_at(const label_map& labels, std::string_view point) {
  const std::string label = std::string(hook_label_prefix) + std::string(point);
  const std::string user_label = label + std::string(hook_user_suffix);
  if (const auto it = labels.find(label); it != labels.end()) {
    return hook_command{label, it->second, value_of(labels, user_label)};
  }
  std::string_view deprecated;
  if (point == "archive-pre") {
    deprecated = exec_pre_label;
  } else if (point == "archive-post") {
    deprecated = exec_post_label;
  } else {
    return std::nullopt;
  }
  const auto it = labels.find(std::string(deprecated));
  if (it == labels.end()) {
    return std::nullopt;
  }
  std::string user = value_of(labels, std::string(deprecated) + std::string(hook_user_suffix));
  if (user.empty()) {
    user = value_of(labels, user_label);
  }
  return hook_command{std::string(deprecated), it->second, std::move(user)};
}

bool exec_label_matches(const label_map& labels, const std::optional<std::string>& exec_label) {
  if (!exec_label) {
    return true;
  }
  const auto it = labels.find(std::string(exec_label_label));
  return it != labels.end() && it->second == *exec_label;
}

hook_plan plan_hook_point(std::string_view point, const std::optional<std::string>& exec_label,
                          const std::vector<hook_container>& here,
                          const std::vector<hook_remote_task>& elsewhere) {
  hook_plan plan;
  for (const auto& c : here) {
    if (c.state != "running" || !exec_label_matches(c.container_labels, exec_label)) {
      continue;
    }
    auto command = hook_command_at(c.container_labels, point);
    if (!command) {
      continue;
    }
    auto split = split_shell_words(command->command);
    if (!split.error.empty()) {
      plan.errors.push_back("container " + c.name + ": label " + command->label + ": " +
                            split.error);
      continue;
    }
    plan.execs.push_back({c.id,
                          {},
                          c.name,
                          std::move(command->label),
                          std::move(split.words),
                          std::move(command->user)});
  }
  std::map<std::string, node_hook_execs> by_node;
  for (const auto& t : elsewhere) {
    if (!exec_label_matches(t.container_labels, exec_label)) {
      continue;
    }
    auto command = hook_command_at(t.container_labels, point);
    if (!command) {
      continue;
    }
    auto split = split_shell_words(command->command);
    if (!split.error.empty()) {
      plan.errors.push_back("service " + t.service_name + " task " + t.task_id + " on node " +
                            t.node_name + ": label " + command->label + ": " + split.error);
      continue;
    }
    auto& node = by_node[t.node_id];
    node.node_id = t.node_id;
    node.node_name = t.node_name;
    node.execs.push_back({{},
                          t.task_id,
                          t.service_name,
                          std::move(command->label),
                          std::move(split.words),
                          std::move(command->user)});
  }
  for (auto& [id, node] : by_node) {
    std::sort(node.execs.begin(), node.execs.end(), [](const hook_exec& a, const hook_exec& b) {
      return std::tie(a.container_name, a.task_id) < std::tie(b.container_name, b.task_id);
    });
    plan.elsewhere.push_back(std::move(node));
  }
  std::sort(plan.execs.begin(), plan.execs.end(), [](const hook_exec& a, const hook_exec& b) {
    return a.container_name < b.container_name;
  });
  std::sort(plan.elsewhere.begin(), plan.elsewhere.end(),
            [](const node_hook_execs& a, const node_hook_execs& b) {
              return std::tie(a.node_name, a.node_id) < std::tie(b.node_name, b.node_id);
            });
  std::sort(plan.errors.begin(), plan.errors.end());
  return plan;
}

}  // namespace lifeboat::reconcilers
