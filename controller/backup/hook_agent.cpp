#include "controller/backup/hook_agent.hpp"

#include <fmt/core.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include "controller/backup/agent_job.hpp"

#include <algorithm>

namespace lifeboat::backup {

namespace json = boost::json;

namespace {

constexpr std::string_view report_key = "lifeboat-hook";

engine::error malformed(std::string_view what, std::string_view why) {
  return engine::make_error(engine::errc::protocol_error,
                            fmt::format("{} is malformed: {}", what, why));
}

const json::string* string_at(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? &v->get_string() : nullptr;
}

// Drops the first `n` bytes of `text`, and then any UTF-8 continuation bytes,
// so that the rest starts on a character.
void drop_front(std::string& text, std::size_t n) {
  n = std::min(n, text.size());
  while (n < text.size() && (static_cast<unsigned char>(text[n]) & 0xC0U) == 0x80U) {
    ++n;
  }
  text.erase(0, n);
}

json::object report_object(const hook_report_line& line) {
  if (line.what == hook_report_line::kind::finished) {
    return {{report_key, "finished"}, {"ok", line.ok}, {"message", line.outcome}};
  }
  return {{report_key, "exec"},
          {"task", line.task_id},
          {"ok", line.ok},
          {"outcome", line.outcome},
          {"output", line.output}};
}

void emit(std::FILE* out, const hook_report_line& line) {
  write_report_line(out, encode_hook_report_line(line));
}

}  // namespace

std::string encode_hook_request(const hook_request& request) {
  json::array execs;
  for (const auto& e : request.execs) {
    json::array cmd;
    for (const auto& word : e.cmd) {
      cmd.emplace_back(word);
    }
    execs.emplace_back(json::object{{"task", e.task_id},
                                    {"service", e.container_name},
                                    {"label", e.label},
                                    {"cmd", std::move(cmd)},
                                    {"user", e.user}});
  }
  json::array env;
  for (const auto& v : request.env) {
    env.emplace_back(v);
  }
  return json::serialize(json::object{{"point", request.point},
                                      {"timeout_ms", request.timeout.count()},
                                      {"env", std::move(env)},
                                      {"execs", std::move(execs)}});
}

engine::result<hook_request> decode_hook_request(std::string_view text) {
  const std::string_view what = hooks_variable;
  boost::system::error_code ec;
  const auto v = json::parse(text, ec);
  if (ec) {
    return malformed(what, "not JSON (" + ec.message() + ")");
  }
  if (!v.is_object()) {
    return malformed(what, "not a JSON object");
  }
  const auto& o = v.get_object();
  hook_request request;
  const auto* point = string_at(o, "point");
  if (point == nullptr) {
    return malformed(what, "no string \"point\"");
  }
  request.point = *point;
  const auto* timeout = o.if_contains("timeout_ms");
  if (timeout == nullptr || !timeout->is_number()) {
    return malformed(what, "no number \"timeout_ms\"");
  }
  const auto ms = timeout->to_number<std::int64_t>(ec);
  if (ec || ms <= 0) {
    return malformed(what, "\"timeout_ms\" is not a positive whole number");
  }
  request.timeout = std::chrono::milliseconds{ms};
  const auto* env = o.if_contains("env");
  if (env == nullptr || !env->is_array()) {
    return malformed(what, "no array \"env\"");
  }
  for (const auto& e : env->get_array()) {
    if (!e.is_string()) {
      return malformed(what, "\"env\" holds something other than strings");
    }
    request.env.emplace_back(e.get_string());
  }
  const auto* execs = o.if_contains("execs");
  if (execs == nullptr || !execs->is_array()) {
    return malformed(what, "no array \"execs\"");
  }
  for (std::size_t i = 0; i < execs->get_array().size(); ++i) {
    const auto& item = execs->get_array()[i];
    const auto where = fmt::format("execs[{}]", i);
    if (!item.is_object()) {
      return malformed(what, where + " is not an object");
    }
    const auto& e = item.get_object();
    reconcilers::hook_exec exec;
    for (auto [key, into] :
         {std::pair{"task", &exec.task_id}, std::pair{"service", &exec.container_name},
          std::pair{"label", &exec.label}, std::pair{"user", &exec.user}}) {
      const auto* s = string_at(e, key);
      if (s == nullptr) {
        return malformed(what, where + " has no string \"" + key + "\"");
      }
      *into = *s;
    }
    if (exec.task_id.empty()) {
      return malformed(what, where + " has an empty \"task\"");
    }
    const auto* cmd = e.if_contains("cmd");
    if (cmd == nullptr || !cmd->is_array() || cmd->get_array().empty()) {
      return malformed(what, where + " has no non-empty array \"cmd\"");
    }
    for (const auto& word : cmd->get_array()) {
      if (!word.is_string()) {
        return malformed(what, where + ".cmd holds something other than strings");
      }
      exec.cmd.emplace_back(word.get_string());
    }
    request.execs.push_back(std::move(exec));
  }
  return request;
}

std::string encode_hook_report_line(const hook_report_line& line) {
  auto text = json::serialize(report_object(line));
  if (text.size() < hook_line_limit) {
    return text;
  }
  // The longest tail of the output (or, when even none is too long, of the
  // outcome) that fits: escaping makes the length of a tail unpredictable,
  // but it grows with the tail, so a binary search finds it.
  hook_report_line cut = line;
  auto fit_tail = [&](std::string hook_report_line::*field) {
    const std::string whole = line.*field;
    std::size_t fits = 0;
    std::size_t too_long = whole.size() + 1;
    while (too_long - fits > 1) {
      const auto keep = fits + (too_long - fits) / 2;
      cut.*field = whole.substr(whole.size() - keep);
      if (json::serialize(report_object(cut)).size() < hook_line_limit) {
        fits = keep;
      } else {
        too_long = keep;
      }
    }
    cut.*field = whole;
    drop_front(cut.*field, whole.size() - fits);
  };
  cut.output.clear();
  if (json::serialize(report_object(cut)).size() >= hook_line_limit) {
    fit_tail(&hook_report_line::outcome);
  } else {
    cut.output = line.output;
    fit_tail(&hook_report_line::output);
  }
  return json::serialize(report_object(cut));
}

engine::result<std::optional<hook_report_line>> decode_hook_report_line(std::string_view line) {
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) {
    line.remove_suffix(1);
  }
  const bool claims = line.find(fmt::format("\"{}\"", report_key)) != std::string_view::npos;
  boost::system::error_code ec;
  // Output is the commands' own bytes: not UTF-8 in every case.
  json::parse_options options;
  options.allow_invalid_utf8 = true;
  const auto v = json::parse(line, ec, {}, options);
  const std::string_view what = "a hook report line";
  if (ec || !v.is_object()) {
    if (claims) {
      return malformed(what, "it does not parse (cut short?): " + std::string(line.substr(0, 200)));
    }
    return std::optional<hook_report_line>();
  }
  const auto& o = v.get_object();
  const auto* kind = o.if_contains(report_key);
  if (kind == nullptr) {
    return std::optional<hook_report_line>();
  }
  if (!kind->is_string() || (kind->get_string() != "exec" && kind->get_string() != "finished")) {
    return malformed(what, "unknown report " + json::serialize(*kind));
  }
  hook_report_line report;
  const auto* ok = o.if_contains("ok");
  if (ok == nullptr || !ok->is_bool()) {
    return malformed(what, "no boolean \"ok\"");
  }
  report.ok = ok->get_bool();
  if (kind->get_string() == "finished") {
    report.what = hook_report_line::kind::finished;
    if (const auto* m = string_at(o, "message")) {
      report.outcome = *m;
    }
    return std::optional(std::move(report));
  }
  report.what = hook_report_line::kind::exec;
  for (auto [key, into] :
       {std::pair{"task", &report.task_id}, std::pair{"outcome", &report.outcome},
        std::pair{"output", &report.output}}) {
    const auto* s = string_at(o, key);
    if (s == nullptr) {
      return malformed(what, std::string("no string \"") + key + "\"");
    }
    *into = *s;
  }
  return std::optional(std::move(report));
}

int run_hook_agent(const engine::client& client, const hook_request& request, std::FILE* out,
                   const std::atomic<bool>& cancel) {
  std::vector<std::optional<exec_outcome>> outcomes(request.execs.size());
  std::vector<reconcilers::hook_exec> found;
  std::vector<std::size_t> found_at;
  for (std::size_t i = 0; i < request.execs.size(); ++i) {
    const auto& e = request.execs[i];
    auto containers = client.list_containers(
        {{"label", {std::string(task_id_label) + "=" + e.task_id}}}, /*all=*/false);
    if (!containers) {
      outcomes[i] = {
          false, "its container could not be listed: " + containers.error().describe(), {}};
      continue;
    }
    const auto running = std::find_if(containers->begin(), containers->end(),
                                      [](const auto& c) { return c.state == "running"; });
    if (running == containers->end()) {
      outcomes[i] = {
          false, "no running container of the task on this node (it ended or moved)", {}};
      continue;
    }
    found.push_back(e);
    found.back().container_id = running->id;
    found_at.push_back(i);
  }
  auto ran = run_execs(client, found, request.env, request.timeout, cancel);
  for (std::size_t k = 0; k < ran.size(); ++k) {
    outcomes[found_at[k]] = std::move(ran[k]);
  }
  std::size_t failed = 0;
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    auto& o = *outcomes[i];
    failed += o.ok ? 0 : 1;
    emit(out, {hook_report_line::kind::exec, request.execs[i].task_id, o.ok, std::move(o.outcome),
               std::move(o.output)});
  }
  hook_report_line finished;
  finished.ok = failed == 0;
  if (failed > 0) {
    finished.outcome = fmt::format("{} of {} command(s) failed", failed, outcomes.size());
  }
  emit(out, finished);
  return finished.ok ? 0 : 1;
}

job_definition hook_job(const std::string& run_name, const std::string& schedule,
                        const std::string& node_id, const std::string& image,
                        const std::string& node_socket, const hook_request& request) {
  job_definition job;
  job.run_name = run_name;
  job.labels[std::string(api::label::schedule)] = schedule;
  job.node_id = node_id;
  job.image = image;
  job.args = {"agent-exec"};
  // The commands travel in the environment, as a reading agent's schedule
  // does: nothing to clean up after a crash but the job itself.
  job.env.push_back(std::string(hooks_variable) + "=" + encode_hook_request(request));
  job.mounts.push_back({"bind", node_socket, std::string(default_node_socket), false});
  return job;
}

}  // namespace lifeboat::backup
