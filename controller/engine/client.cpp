#include "controller/engine/client.hpp"

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <initializer_list>
#include <string>

namespace lifeboat::engine {

namespace json = boost::json;
using std::chrono::milliseconds;

namespace {

// --- JSON field access: the engine omits empty fields, so absent means default.

const json::object* object_at(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_object() ? &v->get_object() : nullptr;
}

std::string string_at(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

std::optional<std::int64_t> int_at(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr) {
    return std::nullopt;
  }
  if (v->is_int64()) {
    return v->get_int64();
  }
  if (v->is_uint64()) {
    return static_cast<std::int64_t>(v->get_uint64());
  }
  return std::nullopt;
}

std::uint64_t uint_at(const json::object& o, std::string_view key) {
  const auto n = int_at(o, key);
  return n && *n > 0 ? static_cast<std::uint64_t>(*n) : 0;
}

bool bool_at(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_bool() && v->get_bool();
}

labels labels_at(const json::object& o, std::string_view key) {
  labels out;
  if (const auto* m = object_at(o, key)) {
    for (const auto& [k, v] : *m) {
      if (v.is_string()) {
        out.emplace(std::string(k), std::string(v.get_string()));
      }
    }
  }
  return out;
}

json::object labels_to_json(const labels& l) {
  json::object o;
  for (const auto& [k, v] : l) {
    o[k] = v;
  }
  return o;
}

const json::object empty_object;

const json::object& object_or_empty(const json::object& o, std::string_view key) {
  const auto* p = object_at(o, key);
  return p != nullptr ? *p : empty_object;
}

// --- base64, for config data (RFC 4648, with padding).

constexpr std::string_view base64_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const auto n = (static_cast<unsigned char>(in[i]) << 16U) |
                   (static_cast<unsigned char>(in[i + 1]) << 8U) |
                   static_cast<unsigned char>(in[i + 2]);
    out += base64_alphabet[(n >> 18U) & 63U];
    out += base64_alphabet[(n >> 12U) & 63U];
    out += base64_alphabet[(n >> 6U) & 63U];
    out += base64_alphabet[n & 63U];
  }
  if (i < in.size()) {
    unsigned n = static_cast<unsigned char>(in[i]) << 16U;
    if (i + 1 < in.size()) {
      n |= static_cast<unsigned char>(in[i + 1]) << 8U;
    }
    out += base64_alphabet[(n >> 18U) & 63U];
    out += base64_alphabet[(n >> 12U) & 63U];
    out += i + 1 < in.size() ? base64_alphabet[(n >> 6U) & 63U] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view in) {
  std::array<int, 256> value{};
  value.fill(-1);
  for (std::size_t i = 0; i < base64_alphabet.size(); ++i) {
    value[static_cast<unsigned char>(base64_alphabet[i])] = static_cast<int>(i);
  }
  std::string out;
  unsigned buffer = 0;
  int bits = 0;
  for (const char c : in) {
    if (c == '=' || c == '\n' || c == '\r') {
      continue;
    }
    const int v = value[static_cast<unsigned char>(c)];
    if (v < 0) {
      return std::nullopt;
    }
    buffer = (buffer << 6U) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> static_cast<unsigned>(bits)) & 0xFFU);
    }
  }
  return out;
}

// --- Decoders: JSON value -> typed struct.

version_info decode_version(const json::object& o) {
  return {string_at(o, "Version"), string_at(o, "ApiVersion"), string_at(o, "MinAPIVersion"),
          string_at(o, "Os"),      string_at(o, "Arch"),       string_at(o, "KernelVersion")};
}

engine_info decode_info(const json::object& o) {
  engine_info info;
  info.id = string_at(o, "ID");
  info.name = string_at(o, "Name");
  info.server_version = string_at(o, "ServerVersion");
  info.ncpu = static_cast<int>(int_at(o, "NCPU").value_or(0));
  info.mem_total = int_at(o, "MemTotal").value_or(0);
  const auto& s = object_or_empty(o, "Swarm");
  info.swarm.node_id = string_at(s, "NodeID");
  info.swarm.node_addr = string_at(s, "NodeAddr");
  info.swarm.local_node_state = string_at(s, "LocalNodeState");
  info.swarm.control_available = bool_at(s, "ControlAvailable");
  info.swarm.cluster_id = string_at(object_or_empty(s, "Cluster"), "ID");
  info.swarm.managers = static_cast<int>(int_at(s, "Managers").value_or(0));
  info.swarm.nodes = static_cast<int>(int_at(s, "Nodes").value_or(0));
  return info;
}

node decode_node(const json::object& o) {
  node n;
  n.id = string_at(o, "ID");
  n.version = uint_at(object_or_empty(o, "Version"), "Index");
  const auto& spec = object_or_empty(o, "Spec");
  n.role = string_at(spec, "Role");
  n.availability = string_at(spec, "Availability");
  n.node_labels = labels_at(spec, "Labels");
  n.hostname = string_at(object_or_empty(o, "Description"), "Hostname");
  const auto& status = object_or_empty(o, "Status");
  n.state = string_at(status, "State");
  n.addr = string_at(status, "Addr");
  return n;
}

service decode_service(const json::object& o) {
  service s;
  s.id = string_at(o, "ID");
  s.version = uint_at(object_or_empty(o, "Version"), "Index");
  s.created_at = string_at(o, "CreatedAt");
  s.updated_at = string_at(o, "UpdatedAt");
  s.spec = object_or_empty(o, "Spec");
  s.name = string_at(s.spec, "Name");
  s.service_labels = labels_at(s.spec, "Labels");
  const auto& task_template = object_or_empty(s.spec, "TaskTemplate");
  s.container_labels = labels_at(object_or_empty(task_template, "ContainerSpec"), "Labels");
  s.restart_condition = string_at(object_or_empty(task_template, "RestartPolicy"), "Condition");
  if (s.restart_condition.empty()) {
    s.restart_condition = "any";  // Swarm's default
  }
  const auto& mode = object_or_empty(s.spec, "Mode");
  if (const auto* replicated = object_at(mode, "Replicated")) {
    s.mode = service_mode::replicated;
    // An omitted Replicas means 1, as the engine defaults it on create.
    s.replicas = replicated->contains("Replicas") ? uint_at(*replicated, "Replicas") : 1;
  } else if (mode.contains("Global")) {
    s.mode = service_mode::global;
  } else if (mode.contains("ReplicatedJob")) {
    s.mode = service_mode::replicated_job;
  } else if (mode.contains("GlobalJob")) {
    s.mode = service_mode::global_job;
  }
  if (const auto* status = object_at(o, "ServiceStatus")) {
    s.running_tasks = uint_at(*status, "RunningTasks");
    s.desired_tasks = uint_at(*status, "DesiredTasks");
  }
  return s;
}

task decode_task(const json::object& o) {
  task t;
  t.id = string_at(o, "ID");
  t.service_id = string_at(o, "ServiceID");
  t.node_id = string_at(o, "NodeID");
  t.slot = uint_at(o, "Slot");
  t.desired_state = string_at(o, "DesiredState");
  t.created_at = string_at(o, "CreatedAt");
  t.updated_at = string_at(o, "UpdatedAt");
  const auto& status = object_or_empty(o, "Status");
  t.state = string_at(status, "State");
  t.message = string_at(status, "Message");
  t.err = string_at(status, "Err");
  const auto& cs = object_or_empty(status, "ContainerStatus");
  t.container_id = string_at(cs, "ContainerID");
  if (const auto code = int_at(cs, "ExitCode")) {
    t.exit_code = static_cast<int>(*code);
  }
  return t;
}

std::vector<mount_point> decode_mounts(const json::object& o) {
  std::vector<mount_point> out;
  const auto* mounts = o.if_contains("Mounts");
  if (mounts == nullptr || !mounts->is_array()) {
    return out;
  }
  for (const auto& m : mounts->get_array()) {
    if (!m.is_object()) {
      continue;
    }
    const auto& mo = m.get_object();
    const auto* rw = mo.if_contains("RW");
    out.push_back({string_at(mo, "Type"), string_at(mo, "Name"), string_at(mo, "Source"),
                   string_at(mo, "Destination"),
                   rw == nullptr || !rw->is_bool() || rw->get_bool()});
  }
  return out;
}

container_summary decode_container_summary(const json::object& o) {
  container_summary c;
  c.id = string_at(o, "Id");
  if (const auto* names = o.if_contains("Names"); names != nullptr && names->is_array()) {
    for (const auto& n : names->get_array()) {
      if (n.is_string()) {
        c.names.emplace_back(n.get_string());
      }
    }
  }
  c.image = string_at(o, "Image");
  c.state = string_at(o, "State");
  c.status = string_at(o, "Status");
  c.container_labels = labels_at(o, "Labels");
  c.mounts = decode_mounts(o);
  c.created = int_at(o, "Created").value_or(0);
  return c;
}

container decode_container(const json::object& o) {
  container c;
  c.id = string_at(o, "Id");
  c.name = string_at(o, "Name");
  if (c.name.starts_with('/')) {
    c.name.erase(0, 1);
  }
  const auto& state = object_or_empty(o, "State");
  c.status = string_at(state, "Status");
  c.running = bool_at(state, "Running");
  c.exit_code = static_cast<int>(int_at(state, "ExitCode").value_or(0));
  c.started_at = string_at(state, "StartedAt");
  c.finished_at = string_at(state, "FinishedAt");
  const auto& cfg = object_or_empty(o, "Config");
  c.image = string_at(cfg, "Image");
  c.container_labels = labels_at(cfg, "Labels");
  c.restart_policy =
      string_at(object_or_empty(object_or_empty(o, "HostConfig"), "RestartPolicy"), "Name");
  c.mounts = decode_mounts(o);
  return c;
}

result<config> decode_config(const json::object& o) {
  config c;
  c.id = string_at(o, "ID");
  c.version = uint_at(object_or_empty(o, "Version"), "Index");
  c.created_at = string_at(o, "CreatedAt");
  c.updated_at = string_at(o, "UpdatedAt");
  c.spec = object_or_empty(o, "Spec");
  c.name = string_at(c.spec, "Name");
  c.config_labels = labels_at(c.spec, "Labels");
  auto data = base64_decode(string_at(c.spec, "Data"));
  if (!data) {
    return make_error(errc::protocol_error, "config " + c.id + ": Data is not base64");
  }
  c.data = std::move(*data);
  return c;
}

volume decode_volume(const json::object& o) {
  return {string_at(o, "Name"),   string_at(o, "Driver"),    string_at(o, "Mountpoint"),
          string_at(o, "Scope"),  string_at(o, "CreatedAt"), labels_at(o, "Labels"),
          labels_at(o, "Options")};
}

event decode_event(const json::object& o) {
  event e;
  e.type = string_at(o, "Type");
  e.action = string_at(o, "Action");
  e.scope = string_at(o, "scope");
  e.time_nano = int_at(o, "timeNano").value_or(0);
  const auto& actor = object_or_empty(o, "Actor");
  e.actor_id = string_at(actor, "ID");
  e.attributes = labels_at(actor, "Attributes");
  return e;
}

// --- Response helpers.

result<json::value> parse_json(const http::response& res) {
  boost::system::error_code ec;
  // The tree lives in blocks of its own, released together with it: a list of
  // every service of a big swarm is megabytes of small nodes, which from the
  // general heap stay behind as fragments under whatever a run allocated
  // meanwhile (300 services: +5 MiB of anonymous memory while quiescing).
  // The first block is sized from the body, so a response is one or two
  // blocks, which glibc maps and unmaps on their own (M_MMAP_THRESHOLD).
  auto v = json::parse(res.body, ec,
                       json::make_shared_resource<json::monotonic_resource>(
                           std::max<std::size_t>(res.body.size(), 1024)));
  if (ec) {
    return make_error(errc::protocol_error, "malformed JSON from the engine: " + ec.message());
  }
  return v;
}

result<json::object> parse_object(const result<http::response>& res) {
  if (!res) {
    return res.error();
  }
  auto v = parse_json(*res);
  if (!v) {
    return v.error();
  }
  if (!v->is_object()) {
    return make_error(errc::protocol_error, "expected a JSON object from the engine");
  }
  return std::move(v->get_object());
}

// Decodes a JSON array response element by element; `none_is_empty` accepts
// `null` (the engine's answer for an empty list on some endpoints). A list of
// every service of a large swarm is the controller's largest transient, so
// the body is released once parsed: the peak is the tree (in its own arena,
// see parse_json) and the decoded copies, not the body as well.
template <class T, class Decode>
result<std::vector<T>> parse_list(result<http::response>&& res, Decode decode) {
  if (!res) {
    return res.error();
  }
  auto v = parse_json(*res);
  std::string().swap(res->body);
  if (!v) {
    return v.error();
  }
  std::vector<T> out;
  if (v->is_null()) {
    return out;
  }
  if (!v->is_array()) {
    return make_error(errc::protocol_error, "expected a JSON array from the engine");
  }
  out.reserve(v->get_array().size());
  for (const auto& item : v->get_array()) {
    if (!item.is_object()) {
      return make_error(errc::protocol_error, "expected JSON objects in the engine's list");
    }
    if constexpr (std::is_same_v<decltype(decode(item.get_object())), result<T>>) {
      auto decoded = decode(item.get_object());
      if (!decoded) {
        return decoded.error();
      }
      out.push_back(std::move(*decoded));
    } else {
      out.push_back(decode(item.get_object()));
    }
  }
  return out;
}

result<void> discard(const result<http::response>& res) {
  if (!res) {
    return res.error();
  }
  return {};
}

result<std::string> id_of(const result<http::response>& res, std::string_view key) {
  auto o = parse_object(res);
  if (!o) {
    return o.error();
  }
  auto id = string_at(*o, key);
  if (id.empty()) {
    return make_error(errc::protocol_error, "the engine's answer has no " + std::string(key));
  }
  return id;
}

std::string encoded(std::string_view segment) {
  // IDs and names are [a-zA-Z0-9_.-]; encode anything else so a path stays a path.
  std::string out;
  for (const char c : segment) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 || c == '-' || c == '_' || c == '.') {
      out += c;
    } else {
      constexpr std::string_view hex = "0123456789ABCDEF";
      out += '%';
      out += hex[u >> 4U];
      out += hex[u & 15U];
    }
  }
  return out;
}

// Appends a query to an already encoded path. Values are percent-encoded
// except for RFC 3986 unreserved characters: the engine's (Go) query parser
// reads a raw '+' as a space, so it must travel as %2B.
std::string with_query(std::string encoded_path,
                       std::initializer_list<std::pair<std::string_view, std::string>> params) {
  char separator = '?';
  for (const auto& [k, v] : params) {
    encoded_path += separator;
    encoded_path += boost::urls::encode(k, boost::urls::unreserved_chars);
    encoded_path += '=';
    encoded_path += boost::urls::encode(v, boost::urls::unreserved_chars);
    separator = '&';
  }
  return encoded_path;
}

std::string filters_json(const filters& f) {
  json::object o;
  for (const auto& [k, values] : f) {
    json::array a;
    for (const auto& v : values) {
      a.emplace_back(v);
    }
    o[k] = std::move(a);
  }
  return json::serialize(o);
}

// Compares "1.41" with "1.43" numerically, part by part.
int compare_versions(std::string_view a, std::string_view b) {
  auto next = [](std::string_view& s) {
    int n = 0;
    while (!s.empty() && s.front() != '.') {
      n = n * 10 + (s.front() - '0');
      s.remove_prefix(1);
    }
    if (!s.empty()) {
      s.remove_prefix(1);
    }
    return n;
  };
  while (!a.empty() || !b.empty()) {
    const int x = next(a);
    const int y = next(b);
    if (x != y) {
      return x < y ? -1 : 1;
    }
  }
  return 0;
}

}  // namespace

// --- event_stream

event_stream::event_stream(http::body_reader reader) : reader_(std::move(reader)) {}

void event_stream::cancel() { reader_.cancel(); }

result<event> event_stream::next() {
  constexpr std::size_t max_line = std::size_t{4} * 1024 * 1024;
  std::array<char, std::size_t{16} * 1024> chunk{};
  for (;;) {
    // Events already buffered are not delivered after cancel(): the caller
    // asked to stop.
    if (reader_.cancelled()) {
      return make_error(errc::cancelled, "events stream");
    }
    const auto newline = pending_.find('\n', scanned_);
    if (newline != std::string::npos) {
      const std::string line = pending_.substr(0, newline);
      pending_.erase(0, newline + 1);
      scanned_ = 0;
      if (line.find_first_not_of(" \r\t") == std::string::npos) {
        continue;
      }
      boost::system::error_code ec;
      const auto v = json::parse(line, ec);
      if (ec || !v.is_object()) {
        return make_error(errc::protocol_error, "malformed event from the engine: " + line);
      }
      return decode_event(v.get_object());
    }
    scanned_ = pending_.size();
    if (pending_.size() > max_line) {
      return make_error(errc::protocol_error, "an event line exceeds 4 MiB");
    }
    auto n = reader_.read(chunk);
    if (!n) {
      return n.error();
    }
    if (*n == 0) {
      return make_error(errc::unavailable, "the engine closed the events stream");
    }
    pending_.append(chunk.data(), *n);
  }
}

// --- client

result<client> client::connect(const client_options& options) {
  const char* host = options.host.empty() ? std::getenv("DOCKER_HOST") : options.host.c_str();
  auto socket = socket_path_from_docker_host(host);
  if (!socket) {
    return socket.error();
  }
  client probe(unix_socket_connector(*socket), std::string(client_api_version),
               options.request_timeout);
  auto server = probe.ping();
  if (!server) {
    return server.error();
  }
  if (server->empty()) {
    return make_error(errc::protocol_error, "the engine did not say its API version");
  }
  if (compare_versions(*server, minimum_api_version) < 0) {
    return make_error(errc::unsupported, "engine API " + *server + " is older than the " +
                                             std::string(minimum_api_version) +
                                             " lifeboat needs (Docker 20.10 or later)");
  }
  if (compare_versions(*server, client_api_version) < 0) {
    probe.api_version_ = *server;
  }
  return probe;
}

client::client(connector connect, std::string api_version, milliseconds request_timeout)
    : http_(std::move(connect), request_timeout), api_version_(std::move(api_version)) {}

std::string client::path(std::string_view endpoint) const {
  return "/v" + api_version_ + std::string(endpoint);
}

result<std::string> client::ping() const {
  auto res = http_.send({http::method::get, "/_ping"});
  if (!res) {
    return res.error();
  }
  return res->api_version;
}

result<version_info> client::version() const {
  auto o = parse_object(http_.send({http::method::get, path("/version")}));
  if (!o) {
    return o.error();
  }
  return decode_version(*o);
}

result<engine_info> client::info() const {
  auto o = parse_object(http_.send({http::method::get, path("/info")}));
  if (!o) {
    return o.error();
  }
  return decode_info(*o);
}

result<std::vector<node>> client::list_nodes(const filters& f) const {
  return parse_list<node>(
      http_.send({http::method::get, with_query(path("/nodes"), {{"filters", filters_json(f)}})}),
      decode_node);
}

result<std::vector<service>> client::list_services(const filters& f, bool with_status) const {
  return parse_list<service>(
      http_.send({http::method::get,
                  with_query(path("/services"), {{"filters", filters_json(f)},
                                                 {"status", with_status ? "true" : "false"}})}),
      decode_service);
}

result<service> client::inspect_service(std::string_view id_or_name) const {
  auto o = parse_object(http_.send({http::method::get, path("/services/" + encoded(id_or_name))}));
  if (!o) {
    return o.error();
  }
  return decode_service(*o);
}

result<std::string> client::create_service(const json::object& spec) const {
  return id_of(http_.send({http::method::post, path("/services/create"), json::serialize(spec)}),
               "ID");
}

result<void> client::update_service(std::string_view id, std::uint64_t version,
                                    const json::object& spec) const {
  return discard(http_.send({http::method::post,
                             with_query(path("/services/" + encoded(id) + "/update"),
                                        {{"version", std::to_string(version)}}),
                             json::serialize(spec)}));
}

result<void> client::remove_service(std::string_view id_or_name) const {
  return discard(http_.send({http::method::delete_, path("/services/" + encoded(id_or_name))}));
}

result<std::vector<task>> client::list_tasks(const filters& f) const {
  return parse_list<task>(
      http_.send({http::method::get, with_query(path("/tasks"), {{"filters", filters_json(f)}})}),
      decode_task);
}

result<std::vector<container_summary>> client::list_containers(const filters& f, bool all) const {
  return parse_list<container_summary>(
      http_.send({http::method::get,
                  with_query(path("/containers/json"),
                             {{"filters", filters_json(f)}, {"all", all ? "true" : "false"}})}),
      decode_container_summary);
}

result<container> client::inspect_container(std::string_view id_or_name) const {
  auto o = parse_object(
      http_.send({http::method::get, path("/containers/" + encoded(id_or_name) + "/json")}));
  if (!o) {
    return o.error();
  }
  return decode_container(*o);
}

result<std::string> client::create_container(const json::object& body,
                                             std::string_view name) const {
  std::string target = path("/containers/create");
  if (!name.empty()) {
    target = with_query(std::move(target), {{"name", std::string(name)}});
  }
  return id_of(http_.send({http::method::post, target, json::serialize(body)}), "Id");
}

result<void> client::start_container(std::string_view id) const {
  // 304 (already started) is a success: the container is running, as asked.
  return discard(http_.send({http::method::post, path("/containers/" + encoded(id) + "/start")}));
}

result<void> client::stop_container(std::string_view id, std::chrono::seconds grace) const {
  // The engine waits `grace` before killing, so the request needs that much more time.
  return discard(
      http_.send({http::method::post, with_query(path("/containers/" + encoded(id) + "/stop"),
                                                 {{"t", std::to_string(grace.count())}})},
                 std::chrono::duration_cast<milliseconds>(grace) + milliseconds{30'000}));
}

result<void> client::remove_container(std::string_view id, bool force, bool remove_volumes) const {
  return discard(
      http_.send({http::method::delete_, with_query(path("/containers/" + encoded(id)),
                                                    {{"force", force ? "true" : "false"},
                                                     {"v", remove_volumes ? "true" : "false"}})}));
}

result<int> client::wait_container(std::string_view id, milliseconds timeout) const {
  auto o = parse_object(http_.send(
      {http::method::post,
       with_query(path("/containers/" + encoded(id) + "/wait"), {{"condition", "not-running"}})},
      timeout));
  if (!o) {
    return o.error();
  }
  if (const auto* e = object_at(*o, "Error"); e != nullptr && !string_at(*e, "Message").empty()) {
    return make_error(errc::server_error, string_at(*e, "Message"));
  }
  return static_cast<int>(int_at(*o, "StatusCode").value_or(-1));
}

result<std::string> client::create_exec(std::string_view container_id,
                                        const std::vector<std::string>& cmd,
                                        const exec_options& options) const {
  json::array args;
  for (const auto& a : cmd) {
    args.emplace_back(a);
  }
  json::object body{
      {"AttachStdout", true}, {"AttachStderr", true}, {"Tty", false}, {"Cmd", std::move(args)}};
  if (!options.user.empty()) {
    body["User"] = options.user;
  }
  if (!options.env.empty()) {
    json::array env;
    for (const auto& e : options.env) {
      env.emplace_back(e);
    }
    body["Env"] = std::move(env);
  }
  return id_of(
      http_.send({http::method::post, path("/containers/" + encoded(container_id) + "/exec"),
                  json::serialize(body)}),
      "Id");
}

namespace {

// Reads a stream multiplexed as the engine does without a TTY (exec output,
// logs): frames of an 8-byte header (stream, 0, 0, 0, big-endian length)
// followed by the payload. Keeps up to `max_output` bytes of the payloads of
// the streams in `streams` (1 stdout, 2 stderr): the earliest ones, or with
// output_keep::last the latest ones.
result<std::string> read_multiplexed(http::body_reader& reader, std::size_t max_output,
                                     std::initializer_list<unsigned char> streams,
                                     output_keep keep = output_keep::first) {
  std::string raw;
  std::string output;
  std::array<char, std::size_t{16} * 1024> chunk{};
  for (;;) {
    auto n = reader.read(chunk);
    if (!n) {
      return n.error();
    }
    if (*n == 0) {
      break;
    }
    raw.append(chunk.data(), *n);
    std::size_t used = 0;
    while (raw.size() - used >= 8) {
      const auto* h = reinterpret_cast<const unsigned char*>(raw.data() + used);
      const std::size_t length = (std::size_t{h[4]} << 24U) | (std::size_t{h[5]} << 16U) |
                                 (std::size_t{h[6]} << 8U) | std::size_t{h[7]};
      if (raw.size() - used < 8 + length) {
        break;
      }
      if (std::find(streams.begin(), streams.end(), h[0]) == streams.end()) {
        // Not a stream we keep.
      } else if (keep == output_keep::first) {
        output.append(raw, used + 8,
                      std::min(length, max_output - std::min(max_output, output.size())));
      } else {
        // The tail: at most the last `max_output` bytes of this frame, and the
        // front dropped once twice the limit is reached (amortised, bounded).
        const std::size_t take = std::min(length, max_output);
        output.append(raw, used + 8 + (length - take), take);
        if (output.size() > 2 * max_output) {
          output.erase(0, output.size() - max_output);
        }
      }
      used += 8 + length;
    }
    raw.erase(0, used);
  }
  if (!raw.empty()) {
    return make_error(errc::unavailable, "the stream ended inside a frame");
  }
  if (output.size() > max_output) {
    output.erase(0, output.size() - max_output);
  }
  return output;
}

}  // namespace

result<std::string> read_exec_output(http::body_reader& reader, std::size_t max_output,
                                     output_keep keep) {
  return read_multiplexed(reader, max_output, {1, 2}, keep);
}

result<http::body_reader> client::open_exec(
    std::string_view exec_id, std::optional<std::chrono::milliseconds> idle_timeout) const {
  return http_.open({http::method::post, path("/exec/" + encoded(exec_id) + "/start"),
                     R"({"Detach":false,"Tty":false})"},
                    idle_timeout);
}

result<std::string> client::start_exec(std::string_view exec_id, std::size_t max_output,
                                       std::chrono::milliseconds idle_timeout) const {
  auto reader = open_exec(exec_id, idle_timeout);
  if (!reader) {
    return reader.error();
  }
  return read_multiplexed(*reader, max_output, {1, 2});
}

result<std::string> client::service_logs(std::string_view id, std::size_t max_output) const {
  auto reader = http_.open(
      {http::method::get,
       with_query(path("/services/" + encoded(id) + "/logs"), {{"stdout", "1"}, {"stderr", "0"}})},
      http_.timeout());
  if (!reader) {
    return reader.error();
  }
  return read_multiplexed(*reader, max_output, {1});
}

result<exec_status> client::inspect_exec(std::string_view exec_id) const {
  auto o =
      parse_object(http_.send({http::method::get, path("/exec/" + encoded(exec_id) + "/json")}));
  if (!o) {
    return o.error();
  }
  exec_status s;
  s.running = bool_at(*o, "Running");
  if (!s.running) {
    if (const auto code = int_at(*o, "ExitCode")) {
      s.exit_code = static_cast<int>(*code);
    }
  }
  return s;
}

result<std::vector<config>> client::list_configs(const filters& f) const {
  return parse_list<config>(
      http_.send({http::method::get, with_query(path("/configs"), {{"filters", filters_json(f)}})}),
      decode_config);
}

result<config> client::inspect_config(std::string_view id_or_name) const {
  auto o = parse_object(http_.send({http::method::get, path("/configs/" + encoded(id_or_name))}));
  if (!o) {
    return o.error();
  }
  return decode_config(*o);
}

result<std::string> client::create_config(std::string_view name, std::string_view data,
                                          const labels& config_labels) const {
  const json::object spec{
      {"Name", name}, {"Labels", labels_to_json(config_labels)}, {"Data", base64_encode(data)}};
  return id_of(http_.send({http::method::post, path("/configs/create"), json::serialize(spec)}),
               "ID");
}

result<void> client::update_config_labels(const config& current, const labels& new_labels) const {
  json::object spec = current.spec;
  spec["Labels"] = labels_to_json(new_labels);
  return update_config(current.id, current.version, spec);
}

result<void> client::update_config(std::string_view id, std::uint64_t version,
                                   const json::object& spec) const {
  return discard(http_.send({http::method::post,
                             with_query(path("/configs/" + encoded(id) + "/update"),
                                        {{"version", std::to_string(version)}}),
                             json::serialize(spec)}));
}

result<void> client::remove_config(std::string_view id_or_name) const {
  return discard(http_.send({http::method::delete_, path("/configs/" + encoded(id_or_name))}));
}

result<std::vector<volume>> client::list_volumes(const filters& f) const {
  auto o = parse_object(http_.send(
      {http::method::get, with_query(path("/volumes"), {{"filters", filters_json(f)}})}));
  if (!o) {
    return o.error();
  }
  std::vector<volume> out;
  if (const auto* list = o->if_contains("Volumes"); list != nullptr && list->is_array()) {
    for (const auto& v : list->get_array()) {
      if (v.is_object()) {
        out.push_back(decode_volume(v.get_object()));
      }
    }
  }
  return out;
}

result<volume> client::inspect_volume(std::string_view name) const {
  auto o = parse_object(http_.send({http::method::get, path("/volumes/" + encoded(name))}));
  if (!o) {
    return o.error();
  }
  return decode_volume(*o);
}

result<volume> client::create_volume(std::string_view name, std::string_view driver,
                                     const labels& volume_labels) const {
  const json::object body{
      {"Name", name}, {"Driver", driver}, {"Labels", labels_to_json(volume_labels)}};
  auto o = parse_object(
      http_.send({http::method::post, path("/volumes/create"), json::serialize(body)}));
  if (!o) {
    return o.error();
  }
  return decode_volume(*o);
}

result<void> client::remove_volume(std::string_view name, bool force) const {
  return discard(
      http_.send({http::method::delete_, with_query(path("/volumes/" + encoded(name)),
                                                    {{"force", force ? "true" : "false"}})}));
}

result<event_stream> client::events(const filters& f, std::optional<std::int64_t> since) const {
  std::string target = path("/events");
  if (since) {
    target = with_query(std::move(target),
                        {{"filters", filters_json(f)}, {"since", std::to_string(*since)}});
  } else {
    target = with_query(std::move(target), {{"filters", filters_json(f)}});
  }
  auto reader = http_.open({http::method::get, target}, std::nullopt);
  if (!reader) {
    return reader.error();
  }
  return event_stream(std::move(*reader));
}

result<http::body_reader> client::get_archive(std::string_view container_id,
                                              std::string_view in_path) const {
  return http_.open(
      {http::method::get, with_query(path("/containers/" + encoded(container_id) + "/archive"),
                                     {{"path", std::string(in_path)}})},
      http_.timeout());  // a stalled engine fails the read instead of hanging the run
}

result<void> client::put_archive(std::string_view container_id, std::string_view in_path,
                                 const http::body_source& source) const {
  return discard(http_.upload({http::method::put,
                               with_query(path("/containers/" + encoded(container_id) + "/archive"),
                                          {{"path", std::string(in_path)}}),
                               {},
                               "application/x-tar"},
                              source));
}

std::optional<std::string> own_image(const client& client) {
  std::array<char, 256> host{};
  if (::gethostname(host.data(), host.size() - 1) != 0) {
    return std::nullopt;
  }
  auto self = client.inspect_container(host.data());
  if (!self || !self->id.starts_with(host.data())) {
    return std::nullopt;
  }
  return self->image;
}

}  // namespace lifeboat::engine
