#include "controller/engine/client.hpp"

#include "controller/engine/error.hpp"
#include "controller/engine/http.hpp"
#include "tests/controller/engine/scripted_stream.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
// GCC 12 with -fsanitize=address reports a false -Wmaybe-uninitialized inside
// Beast's request parser (a boost::optional returned as boost::none).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#pragma GCC diagnostic pop
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

// The engine client against canned dockerd 20.10 (API 1.41) responses played
// back by an in-memory stream: the request each call writes, the typed result
// it decodes, the mapping of engine errors, streamed bodies both ways, and a
// failure injected at every read and write of representative exchanges.
namespace lifeboat::engine {
namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
namespace json = boost::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using test::script;
using test::scripted_engine;
using test::unlimited;

// Reads of one byte split every header and chunk line; the larger ones cut
// elsewhere; unlimited hands the client as much as it asks for.
constexpr std::array<std::size_t, 5> read_limits = {1, 2, 7, 64, unlimited};

constexpr seconds request_timeout{5};

std::string reads_of(std::size_t limit) {
  return limit == unlimited ? std::string("reads as large as asked")
                            : "reads of at most " + std::to_string(limit) + " bytes";
}

client make_client(const scripted_engine& engine) {
  return client(engine.connect(), "1.41", request_timeout);
}

template <class T>
std::string why(const result<T>& r) {
  return r.has_value() ? std::string("success") : r.error().describe();
}

// --- Canned responses, framed as dockerd frames them.

std::string status_line(int status) {
  static const std::map<int, std::string> reasons = {
      {101, "UPGRADED"},
      {200, "OK"},
      {201, "Created"},
      {204, "No Content"},
      {304, "Not Modified"},
      {400, "Bad Request"},
      {404, "Not Found"},
      {406, "Not Acceptable"},
      {409, "Conflict"},
      {500, "Internal Server Error"},
      {503, "Service Unavailable"},
  };
  return "HTTP/1.1 " + std::to_string(status) + " " + reasons.at(status) + "\r\n";
}

const std::string engine_headers =
    "Api-Version: 1.41\r\n"
    "Docker-Experimental: false\r\n"
    "Ostype: linux\r\n"
    "Server: Docker/20.10.24 (linux)\r\n"
    "Date: Mon, 03 Jun 2024 10:00:00 GMT\r\n";

/// A response whose body is delimited by Content-Length (none for 204 and 304).
std::string respond(int status, std::string_view body = {},
                    std::string_view content_type = "application/json") {
  std::string out = status_line(status) + engine_headers;
  if (status == 204 || status == 304) {
    return out + "\r\n";
  }
  out += "Content-Type: " + std::string(content_type) + "\r\n";
  out += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  out += body;
  return out;
}

/// A JSON response as dockerd's encoder writes it: the document and a newline.
std::string respond_json(int status, std::string_view document) {
  return respond(status, std::string(document) + "\n");
}

std::string chunk(std::string_view data) {
  constexpr std::string_view hex = "0123456789abcdef";
  std::string size;
  for (std::size_t n = data.size(); n != 0 || size.empty(); n /= 16) {
    size.insert(size.begin(), hex[n % 16]);
  }
  return size + "\r\n" + std::string(data) + "\r\n";
}

/// The headers of a chunked response; append chunk()s and, to end it, last_chunk.
std::string chunked_head(int status, std::string_view content_type = "application/json") {
  return status_line(status) + engine_headers + "Content-Type: " + std::string(content_type) +
         "\r\nTransfer-Encoding: chunked\r\n\r\n";
}

const std::string last_chunk = "0\r\n\r\n";

/// `body` cut into pieces of `size` bytes (the last one shorter).
std::vector<std::string> cut(std::string_view body, std::size_t size) {
  std::vector<std::string> out;
  for (std::size_t at = 0; at < body.size(); at += size) {
    out.emplace_back(body.substr(at, size));
  }
  return out;
}

/// A complete chunked response carrying `pieces`, one chunk each.
std::string respond_chunked(int status, const std::vector<std::string>& pieces,
                            std::string_view content_type = "application/json") {
  std::string out = chunked_head(status, content_type);
  for (const auto& p : pieces) {
    out += chunk(p);
  }
  return out + last_chunk;
}

/// Deterministic bytes that do not compress into a pattern a bug could hide in.
std::string generated_bytes(std::size_t n, std::uint64_t seed) {
  std::string out(n, '\0');
  std::uint64_t x = seed;
  for (auto& c : out) {
    x ^= x << 13U;
    x ^= x >> 7U;
    x ^= x << 17U;
    c = static_cast<char>(x & 0xFFU);
  }
  return out;
}

std::uint64_t fnv1a(std::uint64_t h, std::span<const char> bytes) {
  for (const char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

constexpr std::uint64_t fnv1a_basis = 14695981039346656037ULL;

// --- What the client wrote.

using written_request = bhttp::request<bhttp::string_body>;

/// Parses the bytes a connection received as one HTTP request (any framing).
written_request parse_request(std::string_view bytes) {
  bhttp::request_parser<bhttp::string_body> parser;
  parser.eager(true);
  parser.body_limit(boost::none);
  while (!bytes.empty() && !parser.is_done()) {
    boost::system::error_code ec;
    const std::size_t n = parser.put(asio::buffer(bytes.data(), bytes.size()), ec);
    if (ec) {
      ADD_FAILURE() << "the client wrote a malformed request: " << ec.message();
      break;
    }
    bytes.remove_prefix(n);
  }
  EXPECT_TRUE(parser.is_done()) << "the request is incomplete";
  EXPECT_TRUE(bytes.empty()) << "bytes after the request: " << bytes.size();
  return parser.release();
}

struct target_parts {
  std::string path;                          ///< as sent, percent-encoded
  std::map<std::string, std::string> query;  ///< decoded as Go's url.ParseQuery decodes it
};

target_parts split_target(std::string_view target) {
  target_parts parts;
  const auto u = boost::urls::parse_origin_form(target);
  if (!u) {
    ADD_FAILURE() << "not an origin-form target: " << target;
    return parts;
  }
  parts.path = std::string(u->encoded_path());
  for (const auto& p : u->params()) {
    parts.query[p.key] = p.value;
  }
  return parts;
}

json::value parse_json(std::string_view text) {
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  EXPECT_FALSE(ec) << "not JSON: " << text;
  return v;
}

// --- Engine documents (API 1.41), trimmed to realistic essentials.

const std::string version_json = R"json({
  "Platform": {"Name": "Docker Engine - Community"},
  "Components": [{"Name": "Engine", "Version": "20.10.24", "Details": {"ApiVersion": "1.41"}}],
  "Version": "20.10.24", "ApiVersion": "1.41", "MinAPIVersion": "1.12",
  "GitCommit": "5d6db84", "GoVersion": "go1.19.7", "Os": "linux", "Arch": "amd64",
  "KernelVersion": "6.1.0-18-amd64", "BuildTime": "2023-04-04T08:18:51.000000000+00:00"
})json";

const std::string info_json = R"json({
  "ID": "7TRN:IPZB:QYBB:VPBQ:UWYJ:KY3M:FBTW:EYUD:VQEZ:UAN2:A6RP:DCJ6",
  "Containers": 14, "ContainersRunning": 3, "Images": 12, "Driver": "overlay2",
  "Name": "node-1", "ServerVersion": "20.10.24", "NCPU": 4, "MemTotal": 8340000768,
  "OperatingSystem": "Debian GNU/Linux 12 (bookworm)",
  "Swarm": {
    "NodeID": "qmfz1d9ps8rdpyi8q9ymzupsa", "NodeAddr": "10.0.0.11",
    "LocalNodeState": "active", "ControlAvailable": true, "Error": "",
    "RemoteManagers": [{"NodeID": "qmfz1d9ps8rdpyi8q9ymzupsa", "Addr": "10.0.0.11:2377"}],
    "Nodes": 3, "Managers": 1,
    "Cluster": {"ID": "abajmipo7b4xz5ip2nrla6b11", "Version": {"Index": 373531},
                "CreatedAt": "2024-01-10T09:00:00.000000000Z"}
  }
})json";

const std::string services_json = R"json([
  {
    "ID": "9mnpnzenvg8p8tdbtq4wvbkcz", "Version": {"Index": 19},
    "CreatedAt": "2024-05-01T10:00:00.123456789Z", "UpdatedAt": "2024-05-02T11:00:00.5Z",
    "Spec": {
      "Name": "app_db",
      "Labels": {"com.docker.stack.namespace": "app", "lifeboat.enable": "true",
                 "lifeboat.schedule": "0 3 * * *"},
      "TaskTemplate": {
        "ContainerSpec": {"Image": "postgres:16@sha256:4aea012537edfad8",
                          "Labels": {"com.docker.stack.namespace": "app"},
                          "Env": ["POSTGRES_PASSWORD_FILE=/run/secrets/pg"]},
        "RestartPolicy": {"Condition": "on-failure", "MaxAttempts": 0},
        "ForceUpdate": 0, "Runtime": "container"
      },
      "Mode": {"Replicated": {"Replicas": 1}},
      "EndpointSpec": {"Mode": "vip"}
    },
    "Endpoint": {"Spec": {}},
    "ServiceStatus": {"RunningTasks": 1, "DesiredTasks": 1, "CompletedTasks": 0}
  },
  {
    "ID": "hyy1b3xr5h7q2c4v0bd7w6u2s", "Version": {"Index": 27},
    "CreatedAt": "2024-05-01T10:00:00Z", "UpdatedAt": "2024-05-01T10:00:00Z",
    "Spec": {"Name": "app_agent", "Labels": {"lifeboat.enable": "true"},
             "TaskTemplate": {"ContainerSpec": {"Image": "agent:1"}},
             "Mode": {"Global": {}}},
    "ServiceStatus": {"RunningTasks": 2, "DesiredTasks": 3, "CompletedTasks": 0}
  },
  {
    "ID": "s0x1cq0rbx9kd9e8b3jm2o5tz", "Version": {"Index": 31},
    "Spec": {"Name": "app_migrate",
             "TaskTemplate": {"ContainerSpec": {"Image": "app:2"}},
             "Mode": {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}}}
  }
])json";

const std::string service_json = R"json({
  "ID": "9mnpnzenvg8p8tdbtq4wvbkcz", "Version": {"Index": 20},
  "CreatedAt": "2024-05-01T10:00:00.123456789Z", "UpdatedAt": "2024-05-03T03:00:00Z",
  "Spec": {
    "Name": "app_db",
    "Labels": {"lifeboat.enable": "true", "lifeboat.stopped-by": "lifeboat"},
    "TaskTemplate": {"ContainerSpec": {"Image": "postgres:16"},
                     "RestartPolicy": {"Condition": "any"}},
    "Mode": {"Replicated": {"Replicas": 0}}
  },
  "PreviousSpec": {"Name": "app_db", "Mode": {"Replicated": {"Replicas": 1}}}
})json";

const std::string configs_json = R"json([
  {"ID": "ktnbjxoalbkvbvedmg1urrz8h", "Version": {"Index": 12},
   "CreatedAt": "2024-05-01T10:00:00Z", "UpdatedAt": "2024-05-02T10:00:00Z",
   "Spec": {"Name": "lifeboat.state.app", "Labels": {"lifeboat.kind": "state"},
            "Data": "aGVsbG8Kd29ybGQK"}},
  {"ID": "a1", "Version": {"Index": 13}, "Spec": {"Name": "one", "Data": "YQ=="}},
  {"ID": "a2", "Version": {"Index": 14}, "Spec": {"Name": "two", "Data": "YWI="}},
  {"ID": "a3", "Version": {"Index": 15}, "Spec": {"Name": "three", "Data": "YWJj"}},
  {"ID": "a4", "Version": {"Index": 16}, "Spec": {"Name": "binary", "Data": "AP8="}},
  {"ID": "a5", "Version": {"Index": 17}, "Spec": {"Name": "empty"}}
])json";

const std::string tasks_json = R"json([
  {"ID": "0kzzo1i0y4jz6027t0k7aezc7", "Version": {"Index": 71},
   "CreatedAt": "2024-05-01T10:00:01Z", "UpdatedAt": "2024-05-01T10:00:05Z",
   "Labels": {}, "Spec": {"ContainerSpec": {"Image": "postgres:16"}},
   "ServiceID": "9mnpnzenvg8p8tdbtq4wvbkcz", "Slot": 1, "NodeID": "60gvrl6tm78dmak4yl7srz94v",
   "Status": {"Timestamp": "2024-05-01T10:00:05Z", "State": "running", "Message": "started",
              "ContainerStatus": {
                "ContainerID": "e5d62702a1b48d01c3e02ca1e0212a250801fa8d67caca0b6f35919ebc12f035",
                "PID": 677, "ExitCode": 0},
              "PortStatus": {}},
   "DesiredState": "running"},
  {"ID": "1yljwbmlr8er2waf8orvqpwms", "Version": {"Index": 60},
   "ServiceID": "9mnpnzenvg8p8tdbtq4wvbkcz", "Slot": 1, "NodeID": "60gvrl6tm78dmak4yl7srz94v",
   "Status": {"State": "failed", "Message": "started", "Err": "task: non-zero exit (1)",
              "ContainerStatus": {"ContainerID": "8a1b", "ExitCode": 1}},
   "DesiredState": "shutdown"},
  {"ID": "2pndng", "ServiceID": "9mnpnzenvg8p8tdbtq4wvbkcz", "Slot": 2,
   "Status": {"State": "pending", "Message": "pending task scheduling",
              "Err": "no suitable node (insufficient resources on 3 nodes)"},
   "DesiredState": "running"}
])json";

const std::string container_list_json = R"json([
  {"Id": "e5d62702a1b48d01c3e02ca1e0212a250801fa8d67caca0b6f35919ebc12f035",
   "Names": ["/app_db.1.0kzzo1i0y4jz6027t0k7aezc7"],
   "Image": "postgres:16@sha256:4aea012537edfad8", "ImageID": "sha256:2b2f",
   "Command": "docker-entrypoint.sh postgres", "Created": 1714557601, "Ports": [],
   "Labels": {"com.docker.swarm.service.name": "app_db",
              "com.docker.swarm.task.id": "0kzzo1i0y4jz6027t0k7aezc7"},
   "State": "running", "Status": "Up 2 hours",
   "HostConfig": {"NetworkMode": "default"}, "NetworkSettings": {"Networks": {}},
   "Mounts": [
     {"Type": "volume", "Name": "app_pgdata",
      "Source": "/var/lib/docker/volumes/app_pgdata/_data",
      "Destination": "/var/lib/postgresql/data", "Driver": "local", "Mode": "z",
      "RW": true, "Propagation": ""},
     {"Type": "bind", "Source": "/etc/localtime", "Destination": "/etc/localtime",
      "Mode": "", "RW": false, "Propagation": "rprivate"}
   ]}
])json";

const std::string container_json = R"json({
  "Id": "e90e34656806", "Created": "2024-05-03T03:00:00.1Z",
  "Path": "sh", "Args": ["-c", "exit 3"],
  "State": {"Status": "exited", "Running": false, "Paused": false, "Restarting": false,
            "OOMKilled": false, "Dead": false, "Pid": 0, "ExitCode": 3, "Error": "",
            "StartedAt": "2024-05-03T03:00:01.2Z", "FinishedAt": "2024-05-03T03:00:02.3Z"},
  "Image": "sha256:05455a08881e", "Name": "/lifeboat-helper-1", "RestartCount": 0,
  "HostConfig": {"Binds": ["app_pgdata:/data:ro"],
                 "RestartPolicy": {"Name": "unless-stopped", "MaximumRetryCount": 0}},
  "Mounts": [{"Type": "volume", "Name": "app_pgdata",
              "Source": "/var/lib/docker/volumes/app_pgdata/_data", "Destination": "/data",
              "Driver": "local", "Mode": "ro", "RW": false, "Propagation": ""}],
  "Config": {"Hostname": "e90e34656806", "Image": "alpine:3.19",
             "Labels": {"lifeboat.helper": "true"}, "Cmd": ["sh", "-c", "exit 3"]}
})json";

const std::string volume_json = R"json({
  "CreatedAt": "2024-05-01T10:00:00Z", "Driver": "local",
  "Labels": {"com.docker.stack.namespace": "app", "lifeboat.backup": "true"},
  "Mountpoint": "/var/lib/docker/volumes/app_pgdata/_data", "Name": "app_pgdata",
  "Options": {"type": "nfs", "o": "addr=10.0.0.5,rw", "device": ":/exports/pg"},
  "Scope": "local"
})json";

const std::string nodes_json = R"json([
  {"ID": "qmfz1d9ps8rdpyi8q9ymzupsa", "Version": {"Index": 9},
   "Spec": {"Labels": {"lifeboat.storage": "true"}, "Role": "manager", "Availability": "active"},
   "Description": {"Hostname": "node-1", "Platform": {"Architecture": "x86_64", "OS": "linux"}},
   "Status": {"State": "ready", "Addr": "10.0.0.11"},
   "ManagerStatus": {"Leader": true, "Reachability": "reachable", "Addr": "10.0.0.11:2377"}}
])json";

// --- Calls: the request written and the result decoded.

struct call_case {
  std::string name;
  std::string response;
  std::string method;
  std::string path;  ///< percent-encoded, as on the wire
  std::map<std::string, std::string> query;
  std::string body;                         ///< the JSON the engine must receive; empty for none
  std::function<void(const client&)> call;  ///< makes the call and checks its result
};

std::vector<call_case> call_cases() {
  std::vector<call_case> cases;
  cases.push_back({"ping",
                   status_line(200) + engine_headers +
                       "Cache-Control: no-cache, no-store, must-revalidate\r\n"
                       "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\n\r\nOK",
                   "GET",
                   "/_ping",
                   {},
                   "",
                   [](const client& c) {
                     const auto r = c.ping();
                     ASSERT_TRUE(r.has_value()) << why(r);
                     EXPECT_EQ(*r, "1.41");
                   }});
  cases.push_back({"version",
                   respond_json(200, version_json),
                   "GET",
                   "/v1.41/version",
                   {},
                   "",
                   [](const client& c) {
                     const auto r = c.version();
                     ASSERT_TRUE(r.has_value()) << why(r);
                     EXPECT_EQ(r->version, "20.10.24");
                     EXPECT_EQ(r->api_version, "1.41");
                     EXPECT_EQ(r->min_api_version, "1.12");
                     EXPECT_EQ(r->os, "linux");
                     EXPECT_EQ(r->arch, "amd64");
                     EXPECT_EQ(r->kernel_version, "6.1.0-18-amd64");
                   }});
  cases.push_back(
      {"info", respond_json(200, info_json), "GET", "/v1.41/info", {}, "", [](const client& c) {
         const auto r = c.info();
         ASSERT_TRUE(r.has_value()) << why(r);
         EXPECT_EQ(r->id, "7TRN:IPZB:QYBB:VPBQ:UWYJ:KY3M:FBTW:EYUD:VQEZ:UAN2:A6RP:DCJ6");
         EXPECT_EQ(r->name, "node-1");
         EXPECT_EQ(r->server_version, "20.10.24");
         EXPECT_EQ(r->ncpu, 4);
         EXPECT_EQ(r->mem_total, 8340000768);
         EXPECT_EQ(r->swarm.node_id, "qmfz1d9ps8rdpyi8q9ymzupsa");
         EXPECT_EQ(r->swarm.node_addr, "10.0.0.11");
         EXPECT_EQ(r->swarm.local_node_state, "active");
         EXPECT_TRUE(r->swarm.control_available);
         EXPECT_EQ(r->swarm.cluster_id, "abajmipo7b4xz5ip2nrla6b11");
         EXPECT_EQ(r->swarm.managers, 1);
         EXPECT_EQ(r->swarm.nodes, 3);
       }});
  cases.push_back({"list_nodes",
                   respond_json(200, nodes_json),
                   "GET",
                   "/v1.41/nodes",
                   {{"filters", R"({"role":["manager"]})"}},
                   "",
                   [](const client& c) {
                     const auto r = c.list_nodes({{"role", {"manager"}}});
                     ASSERT_TRUE(r.has_value()) << why(r);
                     ASSERT_EQ(r->size(), 1U);
                     const auto& n = r->front();
                     EXPECT_EQ(n.id, "qmfz1d9ps8rdpyi8q9ymzupsa");
                     EXPECT_EQ(n.version, 9U);
                     EXPECT_EQ(n.hostname, "node-1");
                     EXPECT_EQ(n.role, "manager");
                     EXPECT_EQ(n.availability, "active");
                     EXPECT_EQ(n.state, "ready");
                     EXPECT_EQ(n.addr, "10.0.0.11");
                     EXPECT_EQ(n.node_labels, (labels{{"lifeboat.storage", "true"}}));
                   }});
  cases.push_back(
      {"list_services with filters",
       respond_json(200, services_json),
       "GET",
       "/v1.41/services",
       {{"filters", R"({"label":["lifeboat.enable=true"],"mode":["replicated","global"]})"},
        {"status", "true"}},
       "",
       [](const client& c) {
         const auto r = c.list_services(
             {{"label", {"lifeboat.enable=true"}}, {"mode", {"replicated", "global"}}});
         ASSERT_TRUE(r.has_value()) << why(r);
         ASSERT_EQ(r->size(), 3U);
         const auto& db = (*r)[0];
         EXPECT_EQ(db.id, "9mnpnzenvg8p8tdbtq4wvbkcz");
         EXPECT_EQ(db.version, 19U);
         EXPECT_EQ(db.name, "app_db");
         EXPECT_EQ(db.service_labels, (labels{{"com.docker.stack.namespace", "app"},
                                              {"lifeboat.enable", "true"},
                                              {"lifeboat.schedule", "0 3 * * *"}}));
         EXPECT_EQ(db.container_labels, (labels{{"com.docker.stack.namespace", "app"}}));
         EXPECT_EQ(db.mode, service_mode::replicated);
         EXPECT_EQ(db.replicas, 1U);
         EXPECT_EQ(db.restart_condition, "on-failure");
         EXPECT_EQ(db.created_at, "2024-05-01T10:00:00.123456789Z");
         EXPECT_EQ(db.updated_at, "2024-05-02T11:00:00.5Z");
         EXPECT_EQ(db.running_tasks, 1U);
         EXPECT_EQ(db.desired_tasks, 1U);
         // The whole spec is kept, fields this client does not model included.
         EXPECT_EQ(db.spec.at("EndpointSpec"), parse_json(R"({"Mode": "vip"})"));
         const auto& agent = (*r)[1];
         EXPECT_EQ(agent.mode, service_mode::global);
         EXPECT_EQ(agent.replicas, std::nullopt);
         EXPECT_EQ(agent.restart_condition, "any");
         EXPECT_EQ(agent.running_tasks, 2U);
         EXPECT_EQ(agent.desired_tasks, 3U);
         const auto& job = (*r)[2];
         EXPECT_EQ(job.mode, service_mode::replicated_job);
         EXPECT_EQ(job.running_tasks, std::nullopt);
         EXPECT_EQ(job.desired_tasks, std::nullopt);
         EXPECT_TRUE(job.service_labels.empty());
       }});
  cases.push_back({"list_services, engine answers null",
                   respond_json(200, "null"),
                   "GET",
                   "/v1.41/services",
                   {{"filters", "{}"}, {"status", "false"}},
                   "",
                   [](const client& c) {
                     const auto r = c.list_services({}, false);
                     ASSERT_TRUE(r.has_value()) << why(r);
                     EXPECT_TRUE(r->empty());
                   }});
  cases.push_back({"inspect_service",
                   respond_json(200, service_json),
                   "GET",
                   "/v1.41/services/app_db",
                   {},
                   "",
                   [](const client& c) {
                     const auto r = c.inspect_service("app_db");
                     ASSERT_TRUE(r.has_value()) << why(r);
                     EXPECT_EQ(r->id, "9mnpnzenvg8p8tdbtq4wvbkcz");
                     EXPECT_EQ(r->version, 20U);
                     EXPECT_EQ(r->mode, service_mode::replicated);
                     EXPECT_EQ(r->replicas, 0U);
                     EXPECT_EQ(r->restart_condition, "any");
                     EXPECT_EQ(r->service_labels.at("lifeboat.stopped-by"), "lifeboat");
                     EXPECT_EQ(r->running_tasks, std::nullopt);
                   }});
  cases.push_back(
      {"create_service",
       respond_json(201, R"({"ID":"ak7w3gjqoa3kuz8xcpnyy0pvl"})"),
       "POST",
       "/v1.41/services/create",
       {},
       R"({"Name":"lifeboat-agent","Mode":{"Global":{}}})",
       [](const client& c) {
         const auto r = c.create_service(
             parse_json(R"({"Name":"lifeboat-agent","Mode":{"Global":{}}})").as_object());
         ASSERT_TRUE(r.has_value()) << why(r);
         EXPECT_EQ(*r, "ak7w3gjqoa3kuz8xcpnyy0pvl");
       }});
  cases.push_back({"update_service with version",
                   respond_json(200, R"({"Warnings":null})"),
                   "POST",
                   "/v1.41/services/9mnpnzenvg8p8tdbtq4wvbkcz/update",
                   {{"version", "19"}},
                   R"({"Name":"app_db","Labels":{"lifeboat.stopped-by":"lifeboat"},
           "Mode":{"Replicated":{"Replicas":0}}})",
                   [](const client& c) {
                     const auto spec =
                         parse_json(R"({"Name":"app_db","Labels":{"lifeboat.stopped-by":"lifeboat"},
                                          "Mode":{"Replicated":{"Replicas":0}}})");
                     const auto r =
                         c.update_service("9mnpnzenvg8p8tdbtq4wvbkcz", 19, spec.as_object());
                     EXPECT_TRUE(r.has_value()) << why(r);
                   }});
  cases.push_back({"remove_service",
                   respond(200),
                   "DELETE",
                   "/v1.41/services/app_db",
                   {},
                   "",
                   [](const client& c) {
                     const auto r = c.remove_service("app_db");
                     EXPECT_TRUE(r.has_value()) << why(r);
                   }});
  cases.push_back(
      {"list_tasks with filters",
       respond_json(200, tasks_json),
       "GET",
       "/v1.41/tasks",
       {{"filters", R"({"desired-state":["running"],"service":["app_db"]})"}},
       "",
       [](const client& c) {
         const auto r = c.list_tasks({{"service", {"app_db"}}, {"desired-state", {"running"}}});
         ASSERT_TRUE(r.has_value()) << why(r);
         ASSERT_EQ(r->size(), 3U);
         const auto& running = (*r)[0];
         EXPECT_EQ(running.id, "0kzzo1i0y4jz6027t0k7aezc7");
         EXPECT_EQ(running.service_id, "9mnpnzenvg8p8tdbtq4wvbkcz");
         EXPECT_EQ(running.node_id, "60gvrl6tm78dmak4yl7srz94v");
         EXPECT_EQ(running.slot, 1U);
         EXPECT_EQ(running.desired_state, "running");
         EXPECT_EQ(running.state, "running");
         EXPECT_EQ(running.message, "started");
         EXPECT_EQ(running.err, "");
         EXPECT_EQ(running.container_id,
                   "e5d62702a1b48d01c3e02ca1e0212a250801fa8d67caca0b6f35919ebc12f035");
         EXPECT_EQ(running.exit_code, 0);
         EXPECT_EQ(running.created_at, "2024-05-01T10:00:01Z");
         EXPECT_EQ(running.updated_at, "2024-05-01T10:00:05Z");
         const auto& failed = (*r)[1];
         EXPECT_EQ(failed.state, "failed");
         EXPECT_EQ(failed.err, "task: non-zero exit (1)");
         EXPECT_EQ(failed.container_id, "8a1b");
         EXPECT_EQ(failed.exit_code, 1);
         EXPECT_EQ(failed.desired_state, "shutdown");
         const auto& pending = (*r)[2];
         EXPECT_EQ(pending.state, "pending");
         EXPECT_EQ(pending.node_id, "");
         EXPECT_EQ(pending.container_id, "");
         EXPECT_EQ(pending.exit_code, std::nullopt);
         EXPECT_EQ(pending.slot, 2U);
       }});
  cases.push_back(
      {"list_containers with filters",
       respond_json(200, container_list_json),
       "GET",
       "/v1.41/containers/json",
       {{"filters", R"({"label":["com.docker.swarm.service.name=app_db","note=a b&c"]})"},
        {"all", "true"}},
       "",
       [](const client& c) {
         const auto r =
             c.list_containers({{"label", {"com.docker.swarm.service.name=app_db", "note=a b&c"}}});
         ASSERT_TRUE(r.has_value()) << why(r);
         ASSERT_EQ(r->size(), 1U);
         const auto& s = r->front();
         EXPECT_EQ(s.id, "e5d62702a1b48d01c3e02ca1e0212a250801fa8d67caca0b6f35919ebc12f035");
         EXPECT_EQ(s.names, std::vector<std::string>{"/app_db.1.0kzzo1i0y4jz6027t0k7aezc7"});
         EXPECT_EQ(s.image, "postgres:16@sha256:4aea012537edfad8");
         EXPECT_EQ(s.state, "running");
         EXPECT_EQ(s.status, "Up 2 hours");
         EXPECT_EQ(s.container_labels.at("com.docker.swarm.service.name"), "app_db");
         ASSERT_EQ(s.mounts.size(), 2U);
         EXPECT_EQ(s.mounts[0].type, "volume");
         EXPECT_EQ(s.mounts[0].name, "app_pgdata");
         EXPECT_EQ(s.mounts[0].source, "/var/lib/docker/volumes/app_pgdata/_data");
         EXPECT_EQ(s.mounts[0].destination, "/var/lib/postgresql/data");
         EXPECT_TRUE(s.mounts[0].read_write);
         EXPECT_EQ(s.mounts[1].type, "bind");
         EXPECT_EQ(s.mounts[1].name, "");
         EXPECT_FALSE(s.mounts[1].read_write);
       }});
  cases.push_back({"inspect_container",
                   respond_json(200, container_json),
                   "GET",
                   "/v1.41/containers/e90e34656806/json",
                   {},
                   "",
                   [](const client& c) {
                     const auto r = c.inspect_container("e90e34656806");
                     ASSERT_TRUE(r.has_value()) << why(r);
                     EXPECT_EQ(r->id, "e90e34656806");
                     EXPECT_EQ(r->name, "lifeboat-helper-1");
                     EXPECT_EQ(r->image, "alpine:3.19");
                     EXPECT_EQ(r->status, "exited");
                     EXPECT_FALSE(r->running);
                     EXPECT_EQ(r->exit_code, 3);
                     EXPECT_EQ(r->started_at, "2024-05-03T03:00:01.2Z");
                     EXPECT_EQ(r->finished_at, "2024-05-03T03:00:02.3Z");
                     EXPECT_EQ(r->container_labels, (labels{{"lifeboat.helper", "true"}}));
                     EXPECT_EQ(r->restart_policy, "unless-stopped");
                     ASSERT_EQ(r->mounts.size(), 1U);
                     EXPECT_EQ(r->mounts[0].destination, "/data");
                     EXPECT_FALSE(r->mounts[0].read_write);
                   }});
  cases.push_back(
      {"create_container with a name",
       respond_json(201, R"({"Id":"e90e34656806","Warnings":[]})"),
       "POST",
       "/v1.41/containers/create",
       {{"name", "lifeboat-helper-1"}},
       R"({"Image":"alpine:3.19","Cmd":["sh","-c","exit 3"],"Labels":{"lifeboat.helper":"true"},
           "HostConfig":{"Binds":["app_pgdata:/data:ro"]}})",
       [](const client& c) {
         const auto body = parse_json(
             R"({"Image":"alpine:3.19","Cmd":["sh","-c","exit 3"],
                 "Labels":{"lifeboat.helper":"true"},
                 "HostConfig":{"Binds":["app_pgdata:/data:ro"]}})");
         const auto r = c.create_container(body.as_object(), "lifeboat-helper-1");
         ASSERT_TRUE(r.has_value()) << why(r);
         EXPECT_EQ(*r, "e90e34656806");
       }});
  cases.push_back({"create_container without a name",
                   respond_json(201, R"({"Id":"f00d"})"),
                   "POST",
                   "/v1.41/containers/create",
                   {},
                   R"({"Image":"alpine:3.19"})",
                   [](const client& c) {
                     const auto r =
                         c.create_container(parse_json(R"({"Image":"alpine:3.19"})").as_object());
                     ASSERT_TRUE(r.has_value()) << why(r);
                     EXPECT_EQ(*r, "f00d");
                   }});
  for (const int status : {204, 304}) {
    const std::string s = std::to_string(status);
    cases.push_back({"start_container " + s,
                     respond(status),
                     "POST",
                     "/v1.41/containers/e90e34656806/start",
                     {},
                     "",
                     [](const client& c) {
                       const auto r = c.start_container("e90e34656806");
                       EXPECT_TRUE(r.has_value()) << why(r);
                     }});
    cases.push_back({"stop_container " + s,
                     respond(status),
                     "POST",
                     "/v1.41/containers/e90e34656806/stop",
                     {{"t", "10"}},
                     "",
                     [](const client& c) {
                       const auto r = c.stop_container("e90e34656806", seconds{10});
                       EXPECT_TRUE(r.has_value()) << why(r);
                     }});
  }
  cases.push_back({"remove_container",
                   respond(204),
                   "DELETE",
                   "/v1.41/containers/e90e34656806",
                   {{"force", "true"}, {"v", "false"}},
                   "",
                   [](const client& c) {
                     const auto r = c.remove_container("e90e34656806", true);
                     EXPECT_TRUE(r.has_value()) << why(r);
                   }});
  cases.push_back({"wait_container",
                   respond_json(200, R"({"Error":null,"StatusCode":137})"),
                   "POST",
                   "/v1.41/containers/e90e34656806/wait",
                   {{"condition", "not-running"}},
                   "",
                   [](const client& c) {
                     const auto r = c.wait_container("e90e34656806", seconds{60});
                     ASSERT_TRUE(r.has_value()) << why(r);
                     EXPECT_EQ(*r, 137);
                   }});
  cases.push_back(
      {"wait_container, the engine reports an error",
       respond_json(200, R"({"Error":{"Message":"container removed"},"StatusCode":-1})"),
       "POST",
       "/v1.41/containers/e90e34656806/wait",
       {{"condition", "not-running"}},
       "",
       [](const client& c) {
         const auto r = c.wait_container("e90e34656806", seconds{60});
         ASSERT_FALSE(r.has_value());
         EXPECT_TRUE(r.error().is(errc::server_error)) << why(r);
         EXPECT_EQ(r.error().message, "container removed");
       }});
  cases.push_back({"inspect_exec, finished",
                   respond_json(200, R"({"CanRemove":false,"ContainerID":"e90e34656806",
                     "DetachKeys":"","ExitCode":2,"ID":"4b2f","OpenStderr":true,"OpenStdin":false,
                     "OpenStdout":true,"ProcessConfig":{"entrypoint":"pg_dump","arguments":[]},
                     "Running":false,"Pid":4242})"),
                   "GET",
                   "/v1.41/exec/4b2f/json",
                   {},
                   "",
                   [](const client& c) {
                     const auto r = c.inspect_exec("4b2f");
                     ASSERT_TRUE(r.has_value()) << why(r);
                     EXPECT_FALSE(r->running);
                     EXPECT_EQ(r->exit_code, 2);
                   }});
  cases.push_back({"inspect_exec, running",
                   respond_json(200, R"({"ID":"4b2f","Running":true,"ExitCode":null,"Pid":4242})"),
                   "GET",
                   "/v1.41/exec/4b2f/json",
                   {},
                   "",
                   [](const client& c) {
                     const auto r = c.inspect_exec("4b2f");
                     ASSERT_TRUE(r.has_value()) << why(r);
                     EXPECT_TRUE(r->running);
                     EXPECT_EQ(r->exit_code, std::nullopt);
                   }});
  cases.push_back({"create_config",
                   respond_json(201, R"({"ID":"ktnbjxoalbkvbvedmg1urrz8h"})"),
                   "POST",
                   "/v1.41/configs/create",
                   {},
                   R"({"Name":"lifeboat.state.app","Labels":{"lifeboat.kind":"state"},
           "Data":"aGVsbG8Kd29ybGQK"})",
                   [](const client& c) {
                     const auto r = c.create_config("lifeboat.state.app", "hello\nworld\n",
                                                    {{"lifeboat.kind", "state"}});
                     ASSERT_TRUE(r.has_value()) << why(r);
                     EXPECT_EQ(*r, "ktnbjxoalbkvbvedmg1urrz8h");
                   }});
  cases.push_back({"create_config, binary data and padding",
                   respond_json(201, R"({"ID":"b1"})"),
                   "POST",
                   "/v1.41/configs/create",
                   {},
                   R"({"Name":"bin","Labels":{},"Data":"AP9h"})",
                   [](const client& c) {
                     const auto r = c.create_config("bin",
                                                    std::string_view("\x00\xff"
                                                                     "a",
                                                                     3),
                                                    {});
                     ASSERT_TRUE(r.has_value()) << why(r);
                   }});
  cases.push_back({"update_config_labels",
                   respond(200),
                   "POST",
                   "/v1.41/configs/ktnbjxoalbkvbvedmg1urrz8h/update",
                   {{"version", "12"}},
                   R"({"Name":"lifeboat.state.app","Data":"aGVsbG8Kd29ybGQK",
           "Templating":{"Name":"golang"},
           "Labels":{"lifeboat.kind":"state","lifeboat.generation":"2"}})",
                   [](const client& c) {
                     config current;
                     current.id = "ktnbjxoalbkvbvedmg1urrz8h";
                     current.version = 12;
                     current.spec =
                         parse_json(R"({"Name":"lifeboat.state.app","Data":"aGVsbG8Kd29ybGQK",
                                       "Templating":{"Name":"golang"},
                                       "Labels":{"lifeboat.kind":"state"}})")
                             .as_object();
                     const auto r = c.update_config_labels(
                         current, {{"lifeboat.kind", "state"}, {"lifeboat.generation", "2"}});
                     EXPECT_TRUE(r.has_value()) << why(r);
                   }});
  cases.push_back({"list_configs decodes base64 data",
                   respond_json(200, configs_json),
                   "GET",
                   "/v1.41/configs",
                   {{"filters", R"({"label":["lifeboat.kind=state"]})"}},
                   "",
                   [](const client& c) {
                     const auto r = c.list_configs({{"label", {"lifeboat.kind=state"}}});
                     ASSERT_TRUE(r.has_value()) << why(r);
                     ASSERT_EQ(r->size(), 6U);
                     const auto& state = (*r)[0];
                     EXPECT_EQ(state.id, "ktnbjxoalbkvbvedmg1urrz8h");
                     EXPECT_EQ(state.version, 12U);
                     EXPECT_EQ(state.name, "lifeboat.state.app");
                     EXPECT_EQ(state.config_labels, (labels{{"lifeboat.kind", "state"}}));
                     EXPECT_EQ(state.data, "hello\nworld\n");
                     EXPECT_EQ(state.created_at, "2024-05-01T10:00:00Z");
                     EXPECT_EQ(state.updated_at, "2024-05-02T10:00:00Z");
                     EXPECT_EQ(state.spec.at("Data").as_string(), "aGVsbG8Kd29ybGQK");
                     EXPECT_EQ((*r)[1].data, "a");
                     EXPECT_EQ((*r)[2].data, "ab");
                     EXPECT_EQ((*r)[3].data, "abc");
                     EXPECT_EQ((*r)[4].data, std::string("\x00\xff", 2));
                     EXPECT_EQ((*r)[5].data, "");
                   }});
  cases.push_back({"inspect_config",
                   respond_json(200, R"({"ID":"a1","Version":{"Index":13},
                     "Spec":{"Name":"one","Labels":{"k":"v"},"Data":"YQ=="}})"),
                   "GET",
                   "/v1.41/configs/one",
                   {},
                   "",
                   [](const client& c) {
                     const auto r = c.inspect_config("one");
                     ASSERT_TRUE(r.has_value()) << why(r);
                     EXPECT_EQ(r->id, "a1");
                     EXPECT_EQ(r->data, "a");
                     EXPECT_EQ(r->config_labels, (labels{{"k", "v"}}));
                   }});
  cases.push_back(
      {"remove_config", respond(204), "DELETE", "/v1.41/configs/a1", {}, "", [](const client& c) {
         const auto r = c.remove_config("a1");
         EXPECT_TRUE(r.has_value()) << why(r);
       }});
  cases.push_back(
      {"list_volumes with filters",
       respond_json(200, R"({"Volumes":[)" + volume_json + R"(],"Warnings":null})"),
       "GET",
       "/v1.41/volumes",
       {{"filters", R"({"label":["lifeboat.backup=true"]})"}},
       "",
       [](const client& c) {
         const auto r = c.list_volumes({{"label", {"lifeboat.backup=true"}}});
         ASSERT_TRUE(r.has_value()) << why(r);
         ASSERT_EQ(r->size(), 1U);
         const auto& v = r->front();
         EXPECT_EQ(v.name, "app_pgdata");
         EXPECT_EQ(v.driver, "local");
         EXPECT_EQ(v.mountpoint, "/var/lib/docker/volumes/app_pgdata/_data");
         EXPECT_EQ(v.scope, "local");
         EXPECT_EQ(v.created_at, "2024-05-01T10:00:00Z");
         EXPECT_EQ(v.volume_labels,
                   (labels{{"com.docker.stack.namespace", "app"}, {"lifeboat.backup", "true"}}));
         EXPECT_EQ(
             v.options,
             (labels{{"device", ":/exports/pg"}, {"o", "addr=10.0.0.5,rw"}, {"type", "nfs"}}));
       }});
  cases.push_back({"list_volumes, none",
                   respond_json(200, R"({"Volumes":null,"Warnings":null})"),
                   "GET",
                   "/v1.41/volumes",
                   {{"filters", "{}"}},
                   "",
                   [](const client& c) {
                     const auto r = c.list_volumes();
                     ASSERT_TRUE(r.has_value()) << why(r);
                     EXPECT_TRUE(r->empty());
                   }});
  cases.push_back({"inspect_volume",
                   respond_json(200, volume_json),
                   "GET",
                   "/v1.41/volumes/app_pgdata",
                   {},
                   "",
                   [](const client& c) {
                     const auto r = c.inspect_volume("app_pgdata");
                     ASSERT_TRUE(r.has_value()) << why(r);
                     EXPECT_EQ(r->name, "app_pgdata");
                   }});
  cases.push_back({"create_volume",
                   respond_json(201, R"({"CreatedAt":"2024-06-03T10:00:00Z","Driver":"local",
         "Labels":{"lifeboat.restore":"true"},"Mountpoint":"/var/lib/docker/volumes/r1/_data",
         "Name":"r1","Options":null,"Scope":"local"})"),
                   "POST",
                   "/v1.41/volumes/create",
                   {},
                   R"({"Name":"r1","Driver":"local","Labels":{"lifeboat.restore":"true"}})",
                   [](const client& c) {
                     const auto r = c.create_volume("r1", "local", {{"lifeboat.restore", "true"}});
                     ASSERT_TRUE(r.has_value()) << why(r);
                     EXPECT_EQ(r->name, "r1");
                     EXPECT_EQ(r->mountpoint, "/var/lib/docker/volumes/r1/_data");
                     EXPECT_EQ(r->volume_labels, (labels{{"lifeboat.restore", "true"}}));
                     EXPECT_TRUE(r->options.empty());
                   }});
  cases.push_back({"remove_volume",
                   respond(204),
                   "DELETE",
                   "/v1.41/volumes/app_pgdata",
                   {{"force", "true"}},
                   "",
                   [](const client& c) {
                     const auto r = c.remove_volume("app_pgdata", true);
                     EXPECT_TRUE(r.has_value()) << why(r);
                   }});
  cases.push_back({"create_exec",
                   respond_json(201, R"({"Id":"4b2f"})"),
                   "POST",
                   "/v1.41/containers/e5d62702a1b4/exec",
                   {},
                   R"({"AttachStdout":true,"AttachStderr":true,"Tty":false,
                       "Cmd":["pg_dumpall","-U","postgres"]})",
                   [](const client& c) {
                     const auto r = c.create_exec("e5d62702a1b4", {"pg_dumpall", "-U", "postgres"});
                     ASSERT_TRUE(r.has_value()) << why(r);
                     EXPECT_EQ(*r, "4b2f");
                   }});
  cases.push_back({"create_exec with a user and environment",
                   respond_json(201, R"({"Id":"4b2f"})"),
                   "POST",
                   "/v1.41/containers/db/exec",
                   {},
                   R"({"AttachStdout":true,"AttachStderr":true,"Tty":false,
                       "Cmd":["sh","-c","pg_dump > /data/dump.sql"],"User":"postgres:postgres",
                       "Env":["COMMAND_RUNTIME_ARCHIVE_FILEPATH=/archive/a.tar.gz"]})",
                   [](const client& c) {
                     const auto r =
                         c.create_exec("db", {"sh", "-c", "pg_dump > /data/dump.sql"},
                                       {"postgres:postgres",
                                        {"COMMAND_RUNTIME_ARCHIVE_FILEPATH=/archive/a.tar.gz"}});
                     ASSERT_TRUE(r.has_value()) << why(r);
                     EXPECT_EQ(*r, "4b2f");
                   }});
  return cases;
}

TEST(client_calls, write_the_request_and_decode_the_answer) {
  for (const auto& c : call_cases()) {
    for (const std::size_t limit : read_limits) {
      SCOPED_TRACE(c.name + ", " + reads_of(limit));
      scripted_engine engine;
      engine.respond(c.response, limit);
      c.call(make_client(engine));

      ASSERT_EQ(engine.connections(), 1U);
      EXPECT_EQ(engine.live(), 0);
      const auto req = parse_request(engine.written());
      EXPECT_EQ(req.method_string(), c.method);
      EXPECT_EQ(req.version(), 11U);
      EXPECT_EQ(req[bhttp::field::host], "docker");
      const auto target = split_target(req.target());
      EXPECT_EQ(target.path, c.path);
      EXPECT_EQ(target.query, c.query);
      // The filters JSON travels percent-encoded, not raw.
      EXPECT_EQ(req.target().find_first_of("{}[]\" "), std::string_view::npos) << req.target();
      if (c.body.empty()) {
        EXPECT_EQ(req.body(), "");
      } else {
        EXPECT_EQ(req[bhttp::field::content_type], "application/json");
        EXPECT_EQ(parse_json(req.body()), parse_json(c.body)) << req.body();
      }
    }
  }
}

TEST(client_calls, filters_travel_percent_encoded) {
  scripted_engine engine;
  engine.respond(respond_json(200, "[]"));
  const auto r = make_client(engine).list_tasks({{"label", {"a=b c&d=e"}}});
  ASSERT_TRUE(r.has_value()) << why(r);
  const std::string target(parse_request(engine.written()).target());
  EXPECT_TRUE(target.starts_with("/v1.41/tasks?filters=%7B%22label%22")) << target;
  auto query = split_target(target).query;
  EXPECT_EQ(query["filters"], R"({"label":["a=b c&d=e"]})") << target;
}

// BUG: client.cpp with_query() appends parameters with
// boost::urls::url::params().append(), which in Boost 1.81 encodes a space as
// %20 but leaves a '+' raw. dockerd reads the query with Go's url.ParseQuery,
// which decodes '+' as a space, so a filter like label=build=1.0+45 reaches the
// engine as "build=1.0 45" and matches nothing. Encoding values with
// boost::urls::encode(v, boost::urls::unreserved_chars) into encoded_params()
// would fix it.
TEST(client_calls, a_plus_in_a_filter_reaches_the_engine_as_a_plus) {
  scripted_engine engine;
  engine.respond(respond_json(200, "[]"));
  const auto r = make_client(engine).list_containers({{"label", {"build=1.0+45"}}});
  ASSERT_TRUE(r.has_value()) << why(r);
  const std::string target(parse_request(engine.written()).target());
  auto query = split_target(target).query;
  EXPECT_EQ(query["filters"], R"({"label":["build=1.0+45"]})") << target;
}

TEST(client_calls, names_are_percent_encoded_in_paths) {
  scripted_engine engine;
  engine.respond(respond_json(200, volume_json));
  const auto r = make_client(engine).inspect_volume("a b/c");
  ASSERT_TRUE(r.has_value()) << why(r);
  EXPECT_EQ(std::string(parse_request(engine.written()).target()), "/v1.41/volumes/a%20b%2Fc");
}

// BUG: client.cpp with_query() passes the already percent-encoded path from
// encoded() to boost::urls::url::set_path(), which encodes it again: "a b"
// goes out as "a%2520b" on every call that also has a query string
// (remove_volume, remove_container, update_service, update_config, stop, wait,
// get/put_archive). IDs and engine-valid names never need encoding, so it
// bites only on odd input; set_encoded_path() would fix it.
TEST(client_calls, names_are_encoded_once_in_paths_with_a_query) {
  scripted_engine engine;
  engine.respond(respond(204));
  const auto r = make_client(engine).remove_volume("a b", false);
  ASSERT_TRUE(r.has_value()) << why(r);
  EXPECT_EQ(std::string(parse_request(engine.written()).target()),
            "/v1.41/volumes/a%20b?force=false");
}

TEST(client_calls, requests_are_written_whatever_the_write_size) {
  for (const std::size_t limit : {std::size_t{1}, std::size_t{3}, std::size_t{100}}) {
    SCOPED_TRACE("writes of at most " + std::to_string(limit) + " bytes");
    scripted_engine engine;
    script s;
    s.response = respond_json(201, R"({"ID":"x1"})");
    s.write_limit = limit;
    engine.expect(s);
    const auto r = make_client(engine).create_config("n", std::string(500, 'z'), {{"k", "v"}});
    ASSERT_TRUE(r.has_value()) << why(r);
    EXPECT_LE(engine.connection().largest_write, limit);
    const auto req = parse_request(engine.written());
    EXPECT_EQ(req[bhttp::field::content_length], std::to_string(req.body().size()));
    EXPECT_EQ(parse_json(req.body()).at("Name"), "n");
  }
}

// --- Exec: three exchanges, the middle one a multiplexed raw stream.

std::string frame(std::uint8_t stream, std::string_view payload) {
  const auto n = static_cast<std::uint32_t>(payload.size());
  std::string out = {static_cast<char>(stream),
                     0,
                     0,
                     0,
                     static_cast<char>((n >> 24U) & 0xFFU),
                     static_cast<char>((n >> 16U) & 0xFFU),
                     static_cast<char>((n >> 8U) & 0xFFU),
                     static_cast<char>(n & 0xFFU)};
  return out + std::string(payload);
}

/// dockerd's answer to a non-upgraded exec start: headers, then raw frames until it closes.
std::string raw_stream_head() {
  return status_line(200) + "Content-Type: application/vnd.docker.raw-stream\r\n" + engine_headers +
         "\r\n";
}

TEST(client_exec, create_start_inspect_with_output_split_across_reads) {
  const std::string big = generated_bytes(40'000, 7);  // spans the client's 16 KiB reads
  const std::string frames = frame(1, "-- PostgreSQL database cluster dump\n") + frame(2, "") +
                             frame(1, big) + frame(2, "pg_dumpall: warning: skipping\n") +
                             frame(1, "-- done\n");
  for (const std::size_t limit : {std::size_t{1}, std::size_t{3}, std::size_t{5}, std::size_t{9},
                                  std::size_t{1000}, unlimited}) {
    SCOPED_TRACE(reads_of(limit));
    scripted_engine engine;
    engine.respond(respond_json(201, R"({"Id":"4b2f"})"), limit)
        .respond(raw_stream_head() + frames, limit)
        .respond(respond_json(200, R"({"ID":"4b2f","Running":false,"ExitCode":0,"Pid":17})"),
                 limit);
    const auto c = make_client(engine);

    const auto id = c.create_exec("e5d62702a1b4", {"pg_dumpall", "-U", "postgres"});
    ASSERT_TRUE(id.has_value()) << why(id);
    const auto out = c.start_exec(*id);
    ASSERT_TRUE(out.has_value()) << why(out);
    EXPECT_EQ(*out, "-- PostgreSQL database cluster dump\n" + big +
                        "pg_dumpall: warning: skipping\n-- done\n");
    const auto status = c.inspect_exec(*id);
    ASSERT_TRUE(status.has_value()) << why(status);
    EXPECT_FALSE(status->running);
    EXPECT_EQ(status->exit_code, 0);

    ASSERT_EQ(engine.connections(), 3U);
    EXPECT_EQ(engine.live(), 0);
    const auto start = parse_request(engine.written(1));
    EXPECT_EQ(start.method_string(), "POST");
    EXPECT_EQ(std::string(start.target()), "/v1.41/exec/4b2f/start");
    EXPECT_EQ(parse_json(start.body()), parse_json(R"({"Detach":false,"Tty":false})"));
    EXPECT_EQ(std::string(parse_request(engine.written(2)).target()), "/v1.41/exec/4b2f/json");
  }
}

TEST(client_exec, output_beyond_the_limit_is_read_and_dropped) {
  scripted_engine engine;
  engine.respond(raw_stream_head() + frame(1, "0123456789") + frame(2, "abcdef"), 4);
  const auto out = make_client(engine).start_exec("4b2f", 12);
  ASSERT_TRUE(out.has_value()) << why(out);
  EXPECT_EQ(*out, "0123456789ab");
  EXPECT_EQ(engine.live(), 0);
}

// Exec hooks keep the end of a long output: that is where the error is.
TEST(client_exec, the_tail_of_the_output_is_kept_across_frames) {
  const std::string big = generated_bytes(40'000, 3);
  struct tail_case {
    std::string name;
    std::string frames;
    std::size_t limit;
    std::string expected;
  };
  const std::vector<tail_case> cases{
      {"shorter than the limit", frame(1, "abc") + frame(2, "de"), 12, "abcde"},
      {"the last frame alone is longer", frame(1, "0123456789") + frame(2, "abcdef"), 4, "cdef"},
      {"across two frames", frame(1, "0123456789") + frame(2, "abcdef"), 8, "89abcdef"},
      {"many frames past twice the limit", frame(1, big) + frame(2, "x") + frame(1, "the end\n"), 9,
       "xthe end\n"},
      {"a frame of another stream is not kept", frame(3, "zzz") + frame(1, "ok"), 4, "ok"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    scripted_engine engine;
    engine.respond(raw_stream_head() + c.frames, 5);
    auto reader = make_client(engine).open_exec("4b2f", std::chrono::seconds{5});
    ASSERT_TRUE(reader.has_value()) << why(reader);
    const auto out = read_exec_output(*reader, c.limit, output_keep::last);
    ASSERT_TRUE(out.has_value()) << why(out);
    EXPECT_EQ(*out, c.expected);
  }
}

// BUG: client.cpp start_exec() returns success when the stream ends inside a
// frame (a header promising more bytes than arrive, or half a header): the
// leftover bytes in `raw` are dropped silently, so a connection that broke
// mid-output (dockerd killed) reads as a complete, shorter output. Expected:
// an error (errc::unavailable, the connection broke).
TEST(client_exec, a_stream_ending_inside_a_frame_is_an_error) {
  for (const std::string& truncated :
       {frame(1, "complete\n") + frame(1, "promised twenty bytes").substr(0, 15),
        frame(1, "complete\n") + frame(1, "x").substr(0, 5)}) {
    scripted_engine engine;
    engine.respond(raw_stream_head() + truncated);
    const auto out = make_client(engine).start_exec("4b2f");
    ASSERT_FALSE(out.has_value()) << "returned " << out->size() << " bytes as if complete";
    EXPECT_TRUE(out.error().is(errc::unavailable)) << why(out);
  }
}

// --- Error mapping.

struct error_case {
  std::string name;
  int status;
  std::string body;
  errc kind;
  std::string message;
};

TEST(client_errors, engine_statuses_map_to_kinds_with_the_engine_message) {
  const error_case cases[] = {
      {"404", 404, R"({"message":"service app_db not found"})", errc::not_found,
       "service app_db not found"},
      {"409", 409,
       R"({"message":"rpc error: code = AlreadyExists desc = config lifeboat.state.app already exists"})",
       errc::conflict,
       "rpc error: code = AlreadyExists desc = config lifeboat.state.app already exists"},
      {"500 out of sequence", 500,
       R"({"message":"rpc error: code = Unknown desc = update out of sequence"})", errc::conflict,
       "rpc error: code = Unknown desc = update out of sequence"},
      {"400", 400,
       R"({"message":"rpc error: code = InvalidArgument desc = only updates to Labels are allowed"})",
       errc::bad_request,
       "rpc error: code = InvalidArgument desc = only updates to Labels are allowed"},
      {"500", 500,
       R"({"message":"rpc error: code = Unknown desc = raft: no elected cluster leader"})",
       errc::server_error, "rpc error: code = Unknown desc = raft: no elected cluster leader"},
      {"503 not a manager", 503,
       R"({"message":"This node is not a swarm manager. Use \"docker swarm init\" to make it one."})",
       errc::server_error,
       R"(This node is not a swarm manager. Use "docker swarm init" to make it one.)"},
      {"500 with a text body", 500, "page not found\r\n", errc::server_error, "page not found"},
      {"406, other 4xx", 406, R"({"message":"not acceptable"})", errc::bad_request,
       "not acceptable"},
  };
  for (const auto& c : cases) {
    const std::string document = c.body + "\n";
    const std::string framings[] = {respond(c.status, document),
                                    respond_chunked(c.status, cut(document, 10))};
    for (const auto& response : framings) {
      for (const std::size_t limit : {std::size_t{1}, std::size_t{7}, unlimited}) {
        SCOPED_TRACE(c.name + (&response == &framings[0] ? ", Content-Length" : ", chunked") +
                     ", " + reads_of(limit));
        // A buffered exchange and a streamed one read error bodies differently.
        scripted_engine engine;
        engine.respond(response, limit).respond(response, limit);
        const auto c1 = make_client(engine);
        const auto updated = c1.update_service("9mnp", 19, {});
        const auto archive = c1.get_archive("e90e", "/data");
        ASSERT_FALSE(updated.has_value());
        ASSERT_FALSE(archive.has_value());
        for (const error& e : {updated.error(), archive.error()}) {
          EXPECT_EQ(e.code, make_error_code(c.kind)) << e.describe();
          EXPECT_EQ(e.http_status, c.status);
          EXPECT_EQ(e.message, c.message);
        }
        EXPECT_EQ(engine.live(), 0);
      }
    }
  }
}

TEST(client_errors, describe_names_kind_message_and_status) {
  scripted_engine engine;
  engine.respond(respond_json(500, R"({"message":"update out of sequence"})"));
  const auto r = make_client(engine).update_config("a1", 3, {});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().describe(), "conflict: update out of sequence (HTTP 500)");
}

struct malformed_case {
  std::string name;
  std::string response;
  std::function<std::optional<error>(const client&)> call;
};

template <class T>
std::optional<error> error_of(const result<T>& r) {
  return r.has_value() ? std::nullopt : std::optional<error>(r.error());
}

TEST(client_errors, malformed_answers_are_protocol_errors) {
  const auto version = [](const client& c) { return error_of(c.version()); };
  const auto services = [](const client& c) { return error_of(c.list_services()); };
  const malformed_case cases[] = {
      {"truncated JSON", respond_json(200, R"({"Version":"20.10)"), version},
      {"JSON array for an object", respond_json(200, "[]"), version},
      {"not JSON at all", respond(200, "<html>hello</html>", "text/html"), version},
      {"JSON object for a list", respond_json(200, R"({"message":"x"})"), services},
      {"list of numbers", respond_json(200, "[1,2]"), services},
      {"created without an ID", respond_json(201, "{}"),
       [](const client& c) { return error_of(c.create_config("n", "d", {})); }},
      {"config data not base64",
       respond_json(200, R"([{"ID":"a1","Spec":{"Name":"x","Data":"!!!!"}}])"),
       [](const client& c) { return error_of(c.list_configs()); }},
      {"bad status line", "HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n", version},
      {"bad Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n{}", version},
      {"bad chunk size", chunked_head(200) + "zz\r\n{}\r\n" + last_chunk, version},
      {"malformed event", chunked_head(200) + chunk("not an event\n"),
       [](const client& c) -> std::optional<error> {
         auto events = c.events();
         if (!events) {
           return events.error();
         }
         return error_of(events->next());
       }},
  };
  for (const auto& c : cases) {
    for (const std::size_t limit : {std::size_t{1}, unlimited}) {
      SCOPED_TRACE(c.name + ", " + reads_of(limit));
      scripted_engine engine;
      engine.respond(c.response, limit);
      const auto e = c.call(make_client(engine));
      ASSERT_TRUE(e.has_value()) << "the call succeeded";
      EXPECT_EQ(e->code, make_error_code(errc::protocol_error)) << e->describe();
      EXPECT_EQ(engine.live(), 0);
    }
  }
}

TEST(client_errors, a_refused_connection_is_unavailable) {
  const client c(test::refusing_connector(), "1.41", request_timeout);
  const std::vector<std::pair<std::string, std::optional<error>>> calls = {
      {"ping", error_of(c.ping())},
      {"version", error_of(c.version())},
      {"list_services", error_of(c.list_services())},
      {"update_service", error_of(c.update_service("x", 1, {}))},
      {"start_exec", error_of(c.start_exec("x"))},
      {"events", error_of(c.events())},
      {"get_archive", error_of(c.get_archive("x", "/data"))},
      {"put_archive",
       error_of(c.put_archive(
           "x", "/data", [](std::span<char>) { return result<std::size_t>(std::size_t{0}); }))},
  };
  for (const auto& [name, e] : calls) {
    ASSERT_TRUE(e.has_value()) << name;
    EXPECT_EQ(e->code, make_error_code(errc::unavailable)) << name << ": " << e->describe();
    EXPECT_NE(e->message.find("Connection refused"), std::string::npos) << e->message;
  }
}

TEST(client_errors, an_engine_that_hangs_up_before_answering_is_unavailable) {
  for (const std::string& response : {std::string(), std::string("HTTP/1.1 200 OK\r\nContent-Le"),
                                      respond_json(200, version_json).substr(0, 300)}) {
    SCOPED_TRACE("after " + std::to_string(response.size()) + " bytes");
    scripted_engine engine;
    engine.respond(response);
    const auto r = make_client(engine).version();
    ASSERT_FALSE(r.has_value());
    EXPECT_TRUE(r.error().is(errc::unavailable)) << why(r);
    EXPECT_EQ(engine.live(), 0);
  }
}

// --- Body framing: Content-Length and chunked, cut anywhere.

TEST(client_bodies, content_length_and_chunked_bodies_arrive_whole) {
  const std::string document = version_json + "\n";
  const std::vector<std::pair<std::string, std::string>> framings = {
      {"Content-Length", respond(200, document)},
      {"one chunk", respond_chunked(200, {document})},
      {"7-byte chunks", respond_chunked(200, cut(document, 7))},
      {"1-byte chunks", respond_chunked(200, cut(document, 1))},
      {"chunk extensions and a trailer",
       chunked_head(200) + "10;name=value\r\n" + document.substr(0, 16) + "\r\n" +
           chunk(document.substr(16)) + "0\r\nX-Trailer: yes\r\n\r\n"},
  };
  for (const auto& [name, response] : framings) {
    for (const std::size_t limit : {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{13},
                                    std::size_t{4096}, unlimited}) {
      SCOPED_TRACE(name + ", " + reads_of(limit));
      scripted_engine engine;
      engine.respond(response, limit);
      const auto r = make_client(engine).version();
      ASSERT_TRUE(r.has_value()) << why(r);
      EXPECT_EQ(r->version, "20.10.24");
      EXPECT_EQ(r->kernel_version, "6.1.0-18-amd64");
      EXPECT_EQ(engine.live(), 0);
    }
  }
}

// --- Events.

const std::string event_service_update =
    R"({"Type":"service","Action":"update","Actor":{"ID":"9mnpnzenvg8p8tdbtq4wvbkcz",)"
    R"("Attributes":{"name":"app_db","updatestate.new":"updating"}},"scope":"swarm",)"
    R"("time":1714557601,"timeNano":1714557601123456789})";
const std::string event_container_start =
    R"({"status":"start","id":"e5d62702a1b4","from":"postgres:16","Type":"container",)"
    R"("Action":"start","Actor":{"ID":"e5d62702a1b4","Attributes":{)"
    R"("com.docker.swarm.service.name":"app_db","image":"postgres:16","name":"app_db.1.0kzz"}},)"
    R"("scope":"local","time":1714557602,"timeNano":1714557602000000001})";
const std::string event_config_create =
    R"({"Type":"config","Action":"create","Actor":{"ID":"ktnbjxoalbkvbvedmg1urrz8h",)"
    R"("Attributes":{"name":"lifeboat.state.app"}},"scope":"swarm","time":1714557603,)"
    R"("timeNano":1714557603999999999})";

void expect_first_events(event_stream& events, std::size_t how_many) {
  auto e1 = events.next();
  ASSERT_TRUE(e1.has_value()) << why(e1);
  EXPECT_EQ(e1->type, "service");
  EXPECT_EQ(e1->action, "update");
  EXPECT_EQ(e1->actor_id, "9mnpnzenvg8p8tdbtq4wvbkcz");
  EXPECT_EQ(e1->attributes, (labels{{"name", "app_db"}, {"updatestate.new", "updating"}}));
  EXPECT_EQ(e1->scope, "swarm");
  EXPECT_EQ(e1->time_nano, 1714557601123456789);
  if (how_many < 2) {
    return;
  }
  auto e2 = events.next();
  ASSERT_TRUE(e2.has_value()) << why(e2);
  EXPECT_EQ(e2->type, "container");
  EXPECT_EQ(e2->action, "start");
  EXPECT_EQ(e2->actor_id, "e5d62702a1b4");
  EXPECT_EQ(e2->attributes.at("com.docker.swarm.service.name"), "app_db");
  EXPECT_EQ(e2->scope, "local");
  EXPECT_EQ(e2->time_nano, 1714557602000000001);
  if (how_many < 3) {
    return;
  }
  auto e3 = events.next();
  ASSERT_TRUE(e3.has_value()) << why(e3);
  EXPECT_EQ(e3->type, "config");
  EXPECT_EQ(e3->action, "create");
  EXPECT_EQ(e3->attributes, (labels{{"name", "lifeboat.state.app"}}));
  EXPECT_EQ(e3->time_nano, 1714557603999999999);
}

/// The three events as lines, cut into chunks of cycling odd sizes, so lines
/// and chunks never line up.
std::string events_body_chunks() {
  const std::string lines =
      event_service_update + "\n" + event_container_start + "\n" + event_config_create + "\n";
  std::string out;
  const std::size_t sizes[] = {17, 1, 203, 3, 58};
  std::size_t at = 0;
  for (std::size_t i = 0; at < lines.size(); ++i) {
    const std::size_t n = std::min(sizes[i % std::size(sizes)], lines.size() - at);
    out += chunk(lines.substr(at, n));
    at += n;
  }
  return out;
}

TEST(client_events, lines_split_across_chunks_and_reads_arrive_one_by_one) {
  const std::string response = chunked_head(200) + events_body_chunks();
  for (const bool engine_ends_cleanly : {true, false}) {
    for (const std::size_t limit : read_limits) {
      SCOPED_TRACE(std::string(engine_ends_cleanly ? "last chunk" : "connection dropped") + ", " +
                   reads_of(limit));
      scripted_engine engine;
      engine.respond(response + (engine_ends_cleanly ? last_chunk : ""), limit);
      {
        auto events = make_client(engine).events({{"type", {"service", "config", "container"}}});
        ASSERT_TRUE(events.has_value()) << why(events);
        expect_first_events(*events, 3);
        // The engine closing the stream (a restart, say) ends it as unavailable.
        const auto end = events->next();
        ASSERT_FALSE(end.has_value());
        EXPECT_TRUE(end.error().is(errc::unavailable)) << why(end);
        EXPECT_EQ(engine.live(), 1);  // the stream owns its connection until destroyed
      }
      EXPECT_EQ(engine.live(), 0);
      const auto req = parse_request(engine.written());
      EXPECT_EQ(req.method_string(), "GET");
      const auto target = split_target(req.target());
      EXPECT_EQ(target.path, "/v1.41/events");
      EXPECT_EQ(target.query, (std::map<std::string, std::string>{
                                  {"filters", R"({"type":["service","config","container"]})"}}));
    }
  }
}

TEST(client_events, since_is_sent) {
  scripted_engine engine;
  engine.respond(chunked_head(200) + chunk(event_service_update + "\n"));
  auto events = make_client(engine).events({}, 1714557600);
  ASSERT_TRUE(events.has_value()) << why(events);
  expect_first_events(*events, 1);
  const auto target = split_target(parse_request(engine.written()).target());
  EXPECT_EQ(target.query,
            (std::map<std::string, std::string>{{"filters", "{}"}, {"since", "1714557600"}}));
}

TEST(client_events, cancel_ends_next_with_cancelled) {
  scripted_engine engine;
  // One event, then the engine stays quiet; were the stream not cancelled, the
  // next read would fail otherwise than cancelled.
  script s;
  s.response = chunked_head(200) + chunk(event_service_update + "\n");
  s.at_end = make_error_code(errc::timeout);
  engine.expect(s);
  auto events = make_client(engine).events();
  ASSERT_TRUE(events.has_value()) << why(events);
  expect_first_events(*events, 1);
  events->cancel();
  const auto next = events->next();
  ASSERT_FALSE(next.has_value());
  EXPECT_TRUE(next.error().is(errc::cancelled)) << why(next);
}

// BUG (minor): client.hpp documents that cancel() ends "a pending or later
// next()" with errc::cancelled, but client.cpp event_stream::next() first
// returns any complete line already buffered in pending_, so a consumer gets
// more events after cancelling. A cancelled flag checked at the top of next()
// (or in body_reader::read) would honour the contract.
TEST(client_events, cancel_ends_next_even_with_events_buffered) {
  scripted_engine engine;
  engine.respond(chunked_head(200) +
                 chunk(event_service_update + "\n" + event_container_start + "\n"));
  auto events = make_client(engine).events();
  ASSERT_TRUE(events.has_value()) << why(events);
  expect_first_events(*events, 1);
  events->cancel();
  const auto next = events->next();
  ASSERT_FALSE(next.has_value()) << "got a " << next->type << " event after cancel()";
  EXPECT_TRUE(next.error().is(errc::cancelled)) << why(next);
}

TEST(client_events, not_found_before_the_stream_is_an_error) {
  scripted_engine engine;
  engine.respond(respond_chunked(404, {R"({"message":"page not found"})", "\n"}), 3);
  const auto events = make_client(engine).events();
  ASSERT_FALSE(events.has_value());
  EXPECT_TRUE(events.error().is(errc::not_found)) << why(events);
  EXPECT_EQ(events.error().message, "page not found");
  EXPECT_EQ(engine.live(), 0);
}

// --- Archives.

TEST(client_archive, get_archive_streams_a_large_body_in_bounded_reads) {
  const std::string tar = generated_bytes(8 * 1024 * 1024 + 4321, 42);
  const std::uint64_t expected_sum = fnv1a(fnv1a_basis, tar);
  const std::vector<std::pair<std::string, std::string>> framings = {
      {"chunked", respond_chunked(200, cut(tar, 100'003), "application/x-tar")},
      {"Content-Length", respond(200, tar, "application/x-tar")},
  };
  for (const auto& [name, response] : framings) {
    SCOPED_TRACE(name);
    scripted_engine engine;
    engine.respond(response, 32 * 1024);
    {
      auto reader = make_client(engine).get_archive("e90e34656806", "/var/lib/postgresql/data");
      ASSERT_TRUE(reader.has_value()) << why(reader);
      EXPECT_EQ(reader->status(), 200);
      EXPECT_EQ(reader->content_type(), "application/x-tar");
      std::array<char, 4096> buffer{};
      std::size_t total = 0;
      std::uint64_t sum = fnv1a_basis;
      for (;;) {
        const auto n = reader->read(buffer);
        ASSERT_TRUE(n.has_value()) << why(n) << " after " << total << " bytes";
        if (*n == 0) {
          break;
        }
        ASSERT_LE(*n, buffer.size());
        total += *n;
        sum = fnv1a(sum, std::span<const char>(buffer.data(), *n));
      }
      EXPECT_EQ(total, tar.size());
      EXPECT_EQ(sum, expected_sum);
      const auto after_end = reader->read(buffer);
      ASSERT_TRUE(after_end.has_value()) << why(after_end);
      EXPECT_EQ(*after_end, 0U);
    }
    EXPECT_EQ(engine.live(), 0);
    // The client never asked for the body at once: its reads are bounded far
    // below the body's size.
    EXPECT_LE(engine.connection().largest_read, 1024U * 1024);
    const auto req = parse_request(engine.written());
    EXPECT_EQ(req.method_string(), "GET");
    const auto target = split_target(req.target());
    EXPECT_EQ(target.path, "/v1.41/containers/e90e34656806/archive");
    EXPECT_EQ(target.query,
              (std::map<std::string, std::string>{{"path", "/var/lib/postgresql/data"}}));
  }
}

TEST(client_archive, get_archive_not_found) {
  scripted_engine engine;
  engine.respond(respond_json(
      404, R"({"message":"Could not find the file /data in container e90e34656806"})"));
  const auto reader = make_client(engine).get_archive("e90e34656806", "/data");
  ASSERT_FALSE(reader.has_value());
  EXPECT_TRUE(reader.error().is(errc::not_found)) << why(reader);
  EXPECT_EQ(reader.error().message, "Could not find the file /data in container e90e34656806");
  EXPECT_EQ(engine.live(), 0);
}

/// A body_source handing out `data` in pieces of at most `piece` bytes, and
/// noting the largest buffer it was given.
struct piecewise_source {
  piecewise_source(const std::string& d, std::size_t p) : data(&d), piece(p) {}

  const std::string* data;
  std::size_t piece;
  std::size_t position = 0;
  std::size_t calls = 0;
  std::size_t largest_buffer = 0;

  http::body_source source() {
    return [this](std::span<char> into) -> result<std::size_t> {
      ++calls;
      largest_buffer = std::max(largest_buffer, into.size());
      const std::size_t n = std::min({into.size(), piece, data->size() - position});
      std::copy_n(data->data() + position, n, into.data());
      position += n;
      return n;
    };
  }
};

TEST(client_archive, put_archive_uploads_chunked_from_a_source) {
  const std::string tar = generated_bytes(6 * 1024 * 1024 + 123, 9);
  for (const std::size_t piece : {std::size_t{100'000}, std::size_t{1} << 20U}) {
    SCOPED_TRACE("pieces of " + std::to_string(piece));
    scripted_engine engine;
    engine.respond(respond(200, "", "text/plain"), 5);
    piecewise_source src(tar, piece);
    const auto r = make_client(engine).put_archive("e90e34656806", "/restore", src.source());
    ASSERT_TRUE(r.has_value()) << why(r);
    EXPECT_EQ(engine.live(), 0);
    EXPECT_EQ(src.position, tar.size());
    EXPECT_GT(src.calls, 20U);
    // Memory stays bounded by one buffer, whatever the body's size.
    EXPECT_LE(src.largest_buffer, 256U * 1024);
    EXPECT_LE(engine.connection().largest_write, 256U * 1024);

    const auto req = parse_request(engine.written());
    EXPECT_EQ(req.method_string(), "PUT");
    EXPECT_TRUE(req.chunked());
    EXPECT_EQ(req[bhttp::field::content_type], "application/x-tar");
    const auto target = split_target(req.target());
    EXPECT_EQ(target.path, "/v1.41/containers/e90e34656806/archive");
    EXPECT_EQ(target.query, (std::map<std::string, std::string>{{"path", "/restore"}}));
    EXPECT_EQ(req.body().size(), tar.size());
    EXPECT_TRUE(req.body() == tar) << "the reassembled body differs";
  }
}

TEST(client_archive, put_archive_source_error_aborts_with_that_error) {
  const std::string tar = generated_bytes(1024 * 1024, 3);
  for (const std::size_t fail_on_call : {0U, 1U, 3U}) {
    SCOPED_TRACE("source fails on call " + std::to_string(fail_on_call));
    scripted_engine engine;
    engine.respond(respond(200));
    std::size_t calls = 0;
    std::size_t position = 0;
    const http::body_source source = [&](std::span<char> into) -> result<std::size_t> {
      if (calls++ == fail_on_call) {
        return make_error(errc::protocol_error,
                          "tar: data/base/1/1259: file changed as we read it");
      }
      const std::size_t n = std::min(into.size(), tar.size() - position);
      std::copy_n(tar.data() + position, n, into.data());
      position += n;
      return n;
    };
    const auto r = make_client(engine).put_archive("e90e34656806", "/restore", source);
    ASSERT_FALSE(r.has_value());
    EXPECT_TRUE(r.error().is(errc::protocol_error)) << why(r);
    EXPECT_EQ(r.error().message, "tar: data/base/1/1259: file changed as we read it");
    EXPECT_EQ(calls, fail_on_call + 1);
    EXPECT_EQ(engine.live(), 0);
    // The upload stopped short: no final chunk was sent, so the engine cannot
    // mistake the partial body for a complete archive.
    EXPECT_FALSE(engine.written().ends_with("0\r\n\r\n"));
  }
}

TEST(client_archive, put_archive_refused_by_the_engine) {
  const std::string tar = generated_bytes(1000, 5);
  scripted_engine engine;
  engine.respond(respond_json(
      404, R"({"message":"Could not find the file /restore in container e90e34656806"})"));
  piecewise_source src(tar, 1000);
  const auto r = make_client(engine).put_archive("e90e34656806", "/restore", src.source());
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(r.error().is(errc::not_found)) << why(r);
  EXPECT_EQ(r.error().http_status, 404);
}

// --- Deadlines.

bool within(const deadline& d, clock::time_point from, clock::time_point to) {
  return d.has_value() && *d >= from && *d <= to;
}

TEST(client_deadlines, a_read_past_the_deadline_is_a_timeout) {
  // The engine sends part of the answer, then nothing until the deadline.
  for (const std::size_t cut_at : {0U, 40U, 300U}) {
    SCOPED_TRACE("silent after " + std::to_string(cut_at) + " bytes");
    scripted_engine engine;
    script s;
    s.response = respond_json(200, version_json).substr(0, cut_at);
    s.at_end = make_error_code(errc::timeout);
    engine.expect(s);
    const auto r = make_client(engine).version();
    ASSERT_FALSE(r.has_value());
    EXPECT_TRUE(r.error().is(errc::timeout)) << why(r);
    EXPECT_EQ(engine.live(), 0);
  }
}

TEST(client_deadlines, a_stalled_archive_read_is_a_timeout) {
  scripted_engine engine;
  script s;
  s.response = chunked_head(200, "application/x-tar") + chunk(std::string(1000, 't'));
  s.at_end = make_error_code(errc::timeout);
  engine.expect(s);
  {
    auto reader = make_client(engine).get_archive("e90e", "/data");
    ASSERT_TRUE(reader.has_value()) << why(reader);
    std::array<char, 4096> buffer{};
    const auto first = reader->read(buffer);
    ASSERT_TRUE(first.has_value()) << why(first);
    EXPECT_EQ(*first, 1000U);
    const auto second = reader->read(buffer);
    ASSERT_FALSE(second.has_value());
    EXPECT_TRUE(second.error().is(errc::timeout)) << why(second);
  }
  EXPECT_EQ(engine.live(), 0);
}

TEST(client_deadlines, every_operation_of_an_exchange_carries_its_deadline) {
  struct deadline_case {
    std::string name;
    std::string response;
    std::function<void(const client&)> call;
    milliseconds timeout;
  };
  const deadline_case cases[] = {
      {"a buffered call: the request timeout", respond_json(200, version_json),
       [](const client& c) { EXPECT_TRUE(c.version().has_value()); }, request_timeout},
      {"wait_container: its own timeout", respond_json(200, R"({"StatusCode":0})"),
       [](const client& c) { EXPECT_TRUE(c.wait_container("x", seconds{600}).has_value()); },
       seconds{600}},
      {"stop_container: the grace period and 30 s", respond(204),
       [](const client& c) { EXPECT_TRUE(c.stop_container("x", seconds{10}).has_value()); },
       seconds{40}},
      {"put_archive: the request timeout for each operation", respond(200),
       [](const client& c) {
         const std::string data(300'000, 'd');
         piecewise_source src(data, 100'000);
         EXPECT_TRUE(c.put_archive("x", "/", src.source()).has_value());
       },
       request_timeout},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    scripted_engine engine;
    engine.respond(c.response, 16);
    const auto before = clock::now();
    c.call(make_client(engine));
    const auto after = clock::now();
    const auto& rec = engine.connection();
    ASSERT_FALSE(rec.read_deadlines.empty());
    ASSERT_FALSE(rec.write_deadlines.empty());
    for (const auto& d : rec.write_deadlines) {
      EXPECT_TRUE(within(d, before + c.timeout, after + c.timeout));
    }
    for (const auto& d : rec.read_deadlines) {
      EXPECT_TRUE(within(d, before + c.timeout, after + c.timeout));
    }
  }
}

TEST(client_deadlines, events_wait_without_a_deadline_once_the_headers_are_in) {
  scripted_engine engine;
  engine.respond(chunked_head(200) + chunk(event_service_update + "\n"), 8);
  const auto before = clock::now();
  auto events = make_client(engine).events();
  const auto after = clock::now();
  ASSERT_TRUE(events.has_value()) << why(events);
  const std::size_t header_reads = engine.connection().read_deadlines.size();
  for (const auto& d : engine.connection().read_deadlines) {
    EXPECT_TRUE(within(d, before + request_timeout, after + request_timeout));
  }
  expect_first_events(*events, 1);
  const auto& reads = engine.connection().read_deadlines;
  ASSERT_GT(reads.size(), header_reads);
  for (std::size_t i = header_reads; i < reads.size(); ++i) {
    EXPECT_EQ(reads[i], std::nullopt) << "read " << i;
  }
}

// BUG: client.cpp get_archive() opens the body with idle_timeout = std::nullopt,
// so once the headers are in, every read of the archive waits forever: an
// engine that stalls mid-archive hangs the backup. client.hpp says
// request_timeout "bounds every request except the events stream ... for
// streamed bodies it bounds each wait for progress", and body_reader::read
// promises errc::timeout "when no byte arrives within the idle timeout".
// Expected: get_archive passes the request timeout as idle timeout. (start_exec
// does the same; there a silent command may legitimately outlast it, so it may
// deserve a timeout of its own rather than none.)
TEST(client_deadlines, archive_reads_wait_at_most_the_request_timeout) {
  scripted_engine engine;
  engine.respond(respond_chunked(200, cut(std::string(5000, 't'), 700), "application/x-tar"), 64);
  const auto before = clock::now();
  {
    auto reader = make_client(engine).get_archive("e90e", "/data");
    ASSERT_TRUE(reader.has_value()) << why(reader);
    std::array<char, 512> buffer{};
    for (auto n = reader->read(buffer); n.has_value() && *n != 0; n = reader->read(buffer)) {
    }
  }
  const auto after = clock::now();
  const auto& reads = engine.connection().read_deadlines;
  const auto unbounded = std::count_if(reads.begin(), reads.end(), [&](const deadline& d) {
    return !within(d, before + request_timeout, after + request_timeout);
  });
  EXPECT_EQ(unbounded, 0) << "of " << reads.size() << " reads";
}

// --- Failure injection: operation N of an exchange fails, for every N.

struct exchange_case {
  std::string name;
  script base;  ///< the response and how it is cut
  /// Runs the exchange; on success, checks that everything arrived whole.
  std::function<result<void>(const client&)> run;
  bool eof_ends_the_body = false;  ///< an EOF-delimited body: EOF is no failure there
};

const std::string& injection_tar() {
  static const std::string tar = generated_bytes(64 * 1024 + 17, 11);
  return tar;
}

const std::string& injection_upload() {
  static const std::string data = generated_bytes(600 * 1024 + 5, 13);
  return data;
}

std::vector<exchange_case> exchange_cases() {
  std::vector<exchange_case> cases;
  {
    script s;
    s.response = respond_json(200, services_json);
    s.read_limit = 64;
    cases.push_back({"buffered_get", s, [](const client& c) -> result<void> {
                       auto r = c.list_services();
                       if (!r) {
                         return r.error();
                       }
                       EXPECT_EQ(r->size(), 3U);
                       EXPECT_EQ(r->back().name, "app_migrate");
                       return {};
                     }});
  }
  {
    script s;
    s.response = respond_json(201, R"({"ID":"ktnbjxoalbkvbvedmg1urrz8h"})");
    s.read_limit = 32;
    s.write_limit = 16;
    cases.push_back({"post_with_body", s, [](const client& c) -> result<void> {
                       auto r = c.create_config("lifeboat.state.app", "hello\nworld\n",
                                                {{"lifeboat.kind", "state"}});
                       if (!r) {
                         return r.error();
                       }
                       EXPECT_EQ(*r, "ktnbjxoalbkvbvedmg1urrz8h");
                       return {};
                     }});
  }
  {
    script s;
    s.response = respond_chunked(200, cut(container_json + "\n", 50));
    s.read_limit = 40;
    cases.push_back({"chunked_get", s, [](const client& c) -> result<void> {
                       auto r = c.inspect_container("e90e34656806");
                       if (!r) {
                         return r.error();
                       }
                       EXPECT_EQ(r->restart_policy, "unless-stopped");
                       EXPECT_EQ(r->mounts.size(), 1U);
                       return {};
                     }});
  }
  {
    script s;
    s.response = chunked_head(200) + events_body_chunks();
    s.read_limit = 30;
    cases.push_back({"events_two", s, [](const client& c) -> result<void> {
                       auto events = c.events({{"type", {"service"}}});
                       if (!events) {
                         return events.error();
                       }
                       for (int i = 0; i < 2; ++i) {
                         auto e = events->next();
                         if (!e) {
                           return e.error();
                         }
                         EXPECT_EQ(e->time_nano,
                                   i == 0 ? 1714557601123456789 : 1714557602000000001);
                       }
                       return {};
                     }});
  }
  {
    script s;
    s.response = respond_chunked(200, cut(injection_tar(), 10'000), "application/x-tar");
    s.read_limit = 4096;
    cases.push_back({"get_archive", s, [](const client& c) -> result<void> {
                       auto reader = c.get_archive("e90e34656806", "/data");
                       if (!reader) {
                         return reader.error();
                       }
                       std::array<char, 1000> buffer{};
                       std::string got;
                       for (;;) {
                         auto n = reader->read(buffer);
                         if (!n) {
                           return n.error();
                         }
                         if (*n == 0) {
                           break;
                         }
                         got.append(buffer.data(), *n);
                       }
                       EXPECT_TRUE(got == injection_tar()) << "received " << got.size() << " bytes";
                       return {};
                     }});
  }
  {
    script s;
    s.response = respond(200);
    s.read_limit = 8;
    s.write_limit = 64 * 1024;
    cases.push_back({"put_archive", s, [](const client& c) -> result<void> {
                       piecewise_source src(injection_upload(), 200'000);
                       auto r = c.put_archive("e90e34656806", "/restore", src.source());
                       if (!r) {
                         return r.error();
                       }
                       EXPECT_EQ(src.position, injection_upload().size());
                       return {};
                     }});
  }
  {
    script s;
    s.response = raw_stream_head() + frame(1, "first\n") + frame(2, std::string(5000, 'e')) +
                 frame(1, "last\n");
    s.read_limit = 512;
    cases.push_back({"exec_output", s,
                     [](const client& c) -> result<void> {
                       auto r = c.start_exec("4b2f");
                       if (!r) {
                         return r.error();
                       }
                       EXPECT_EQ(*r, "first\n" + std::string(5000, 'e') + "last\n");
                       return {};
                     },
                     true});
  }
  return cases;
}

struct failure_kind {
  std::string name;
  boost::system::error_code injected;
  errc expected;
};

const std::vector<failure_kind>& failure_kinds() {
  static const std::vector<failure_kind> kinds = {
      {"connection_reset", boost::asio::error::connection_reset, errc::unavailable},
      {"eof", boost::asio::error::eof, errc::unavailable},
      {"timeout", make_error_code(errc::timeout), errc::timeout},
  };
  return kinds;
}

struct injection_param {
  std::size_t exchange;
  std::size_t kind;

  std::string name() const {
    return exchange_cases().at(exchange).name + "_" + failure_kinds().at(kind).name;
  }
  friend std::ostream& operator<<(std::ostream& out, const injection_param& p) {
    return out << p.name();
  }
};

/// Every exchange with every kind of failure, but EOF where EOF ends the body.
std::vector<injection_param> injection_params() {
  std::vector<injection_param> out;
  const auto exchanges = exchange_cases();
  for (std::size_t x = 0; x < exchanges.size(); ++x) {
    for (std::size_t k = 0; k < failure_kinds().size(); ++k) {
      if (!(exchanges[x].eof_ends_the_body &&
            failure_kinds()[k].injected == boost::asio::error::eof)) {
        out.push_back({x, k});
      }
    }
  }
  return out;
}

class failure_injection : public ::testing::TestWithParam<injection_param> {};

TEST_P(failure_injection, every_operation_fails_once) {
  const auto x = exchange_cases().at(GetParam().exchange);
  const auto& kind = failure_kinds().at(GetParam().kind);

  // A clean run first: how many operations the exchange takes.
  std::size_t clean_operations = 0;
  {
    scripted_engine engine;
    engine.expect(x.base);
    const auto r = x.run(make_client(engine));
    ASSERT_TRUE(r.has_value()) << why(r);
    clean_operations = engine.connection().operations;
    EXPECT_EQ(engine.live(), 0);
  }

  std::size_t iterations = 0;
  for (std::size_t n = 0;; ++n) {
    ASSERT_LE(n, clean_operations) << "the failure was never reached";
    SCOPED_TRACE("operation " + std::to_string(n) + " fails");
    scripted_engine engine;
    script s = x.base;
    s.fail_at = n;
    s.fail_with = kind.injected;
    engine.expect(s);
    const auto r = x.run(make_client(engine));
    ++iterations;
    EXPECT_EQ(engine.live(), 0) << "a stream outlived the call";
    if (!engine.connection().failure_hit) {
      EXPECT_TRUE(r.has_value()) << why(r);
      break;
    }
    ASSERT_FALSE(r.has_value()) << "succeeded although operation " << n << " failed";
    EXPECT_EQ(r.error().code, make_error_code(kind.expected)) << r.error().describe();
  }
  EXPECT_EQ(iterations, clean_operations + 1);
  EXPECT_GT(iterations, 10U);
  RecordProperty("iterations", static_cast<int>(iterations));
}

INSTANTIATE_TEST_SUITE_P(client, failure_injection, ::testing::ValuesIn(injection_params()),
                         [](const ::testing::TestParamInfo<injection_param>& param_info) {
                           return param_info.param.name();
                         });

}  // namespace
}  // namespace lifeboat::engine
