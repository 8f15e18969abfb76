#pragma once

#include "controller/engine/error.hpp"
#include "controller/engine/http.hpp"
#include "controller/engine/transport.hpp"
#include "controller/engine/types.hpp"

#include <boost/json/object.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lifeboat::engine {

/// The newest Engine API version this client is written against, and the oldest
/// engine it accepts (Docker 20.10).
inline constexpr std::string_view client_api_version = "1.41";
inline constexpr std::string_view minimum_api_version = "1.41";

struct client_options {
  /// Where the engine is: a DOCKER_HOST value ("unix:///path"); empty means the
  /// DOCKER_HOST environment variable, else /var/run/docker.sock.
  std::string host;
  /// Bounds every request except the events stream (which is cancelled instead);
  /// for streamed bodies it bounds each wait for progress, not the whole transfer.
  std::chrono::milliseconds request_timeout{std::chrono::seconds{30}};
};

/// A stream of engine events, delivered one at a time. Owns its connection.
class event_stream {
 public:
  explicit event_stream(http::body_reader reader);

  /// Blocks until the next event. Fails with errc::cancelled after cancel(),
  /// errc::unavailable when the engine closes the stream (it restarted, say);
  /// reconnecting — and re-listing, since events may have been missed — is the
  /// caller's decision.
  result<event> next();

  /// Ends a pending or later next() with errc::cancelled. Any thread.
  void cancel();

 private:
  http::body_reader reader_;
  std::string pending_;  // bytes received after the last complete line
  std::size_t scanned_ = 0;
};

/// Docker Engine API client over the unix socket.
///
/// Every call opens its own connection, so one client may be used from any
/// number of threads at once; it holds no mutable state. Errors are values:
/// each call returns result<T> with an engine::error whose kind tells not
/// found, conflict (including a stale version index), bad request, engine
/// unavailable and timeout apart, and whose message is the engine's own.
class client {
 public:
  /// Connects to the engine, pings it and settles the API version: the older of
  /// ours and the engine's; an engine older than 1.41 is refused (unsupported).
  static result<client> connect(const client_options& options = {});

  /// For tests: talks through `connect` with a fixed API version.
  client(connector connect, std::string api_version, std::chrono::milliseconds request_timeout);

  const std::string& api_version() const { return api_version_; }

  // System.
  /// GET /_ping; returns the engine's API version header.
  result<std::string> ping() const;
  result<version_info> version() const;
  result<engine_info> info() const;

  // Nodes.
  result<std::vector<node>> list_nodes(const filters& f = {}) const;

  // Services.
  /// With `with_status`, each service carries running and desired task counts.
  result<std::vector<service>> list_services(const filters& f = {}, bool with_status = true) const;
  result<service> inspect_service(std::string_view id_or_name) const;
  /// Returns the new service's ID.
  result<std::string> create_service(const boost::json::object& spec) const;
  /// Replaces the spec of the service at `version`. A stale version fails with
  /// errc::conflict ("update out of sequence"): re-inspect and retry.
  result<void> update_service(std::string_view id, std::uint64_t version,
                              const boost::json::object& spec) const;
  result<void> remove_service(std::string_view id_or_name) const;

  // Tasks.
  result<std::vector<task>> list_tasks(const filters& f = {}) const;

  // Containers.
  result<std::vector<container_summary>> list_containers(const filters& f = {},
                                                         bool all = true) const;
  result<container> inspect_container(std::string_view id_or_name) const;
  /// `body` is the create request (Image, Cmd, HostConfig, ...); `name` may be
  /// empty. Returns the new container's ID.
  result<std::string> create_container(const boost::json::object& body,
                                       std::string_view name = {}) const;
  /// Starting a running container, or stopping a stopped one, succeeds.
  result<void> start_container(std::string_view id) const;
  /// Waits up to `grace` for the process to exit before killing it.
  result<void> stop_container(std::string_view id, std::chrono::seconds grace) const;
  result<void> remove_container(std::string_view id, bool force = false,
                                bool remove_volumes = false) const;
  /// Waits until the container is not running; returns its exit code.
  /// Fails with errc::timeout after `timeout`.
  result<int> wait_container(std::string_view id, std::chrono::milliseconds timeout) const;

  // Exec.
  /// `options.user` ("" : the container's user) and `options.env`
  /// ("KEY=value") apply to this exec only.
  result<std::string> create_exec(std::string_view container_id,
                                  const std::vector<std::string>& cmd,
                                  const exec_options& options = {}) const;
  /// Starts the exec and returns once the engine runs it; its output (stdout
  /// and stderr, multiplexed) is then read with read_exec_output. Cancelling
  /// the reader ends the reading, not the command: the engine has no way to
  /// stop an exec. `idle_timeout` bounds each wait for output (nullopt: none).
  result<http::body_reader> open_exec(std::string_view exec_id,
                                      std::optional<std::chrono::milliseconds> idle_timeout) const;
  /// Runs the exec and returns its combined stdout and stderr, at most
  /// `max_output` bytes (the rest is read and dropped). A command that prints
  /// nothing for `idle_timeout` fails with errc::timeout.
  result<std::string> start_exec(std::string_view exec_id, std::size_t max_output = 1024 * 1024,
                                 std::chrono::milliseconds idle_timeout = std::chrono::minutes{
                                     10}) const;
  /// What the tasks of a service wrote to standard output, as far as the
  /// engine has it (not following), across nodes; the first `max_output`
  /// bytes. The engine interleaves the tasks' lines.
  result<std::string> service_logs(std::string_view id,
                                   std::size_t max_output = std::size_t{1} << 20) const;
  result<exec_status> inspect_exec(std::string_view exec_id) const;

  // Configs.
  result<std::vector<config>> list_configs(const filters& f = {}) const;
  result<config> inspect_config(std::string_view id_or_name) const;
  result<std::string> create_config(std::string_view name, std::string_view data,
                                    const labels& config_labels) const;
  /// Replaces the labels of `current` (as inspected: its version, name and data
  /// are sent back unchanged). A stale version fails with errc::conflict.
  result<void> update_config_labels(const config& current, const labels& new_labels) const;
  /// Sends `spec` as the new spec of config `id` at `version`. The engine
  /// refuses any change but labels with errc::bad_request.
  result<void> update_config(std::string_view id, std::uint64_t version,
                             const boost::json::object& spec) const;
  result<void> remove_config(std::string_view id_or_name) const;

  // Volumes.
  result<std::vector<volume>> list_volumes(const filters& f = {}) const;
  result<volume> inspect_volume(std::string_view name) const;
  result<volume> create_volume(std::string_view name, std::string_view driver = "local",
                               const labels& volume_labels = {}) const;
  result<void> remove_volume(std::string_view name, bool force = false) const;

  // Events.
  /// Follows GET /events from now (or from `since`, a Unix time the engine
  /// still has in its short backlog) with `f` applied by the engine.
  result<event_stream> events(const filters& f = {}, std::optional<std::int64_t> since = {}) const;

  // Archives.
  /// GET /containers/{id}/archive?path=...: the tar stream of `path` inside the
  /// container (works on a created, never-started one). Read it piece by piece.
  result<http::body_reader> get_archive(std::string_view container_id, std::string_view path) const;
  /// PUT /containers/{id}/archive?path=...: unpacks the tar stream produced by
  /// `source` into `path`, with memory bounded by one buffer.
  result<void> put_archive(std::string_view container_id, std::string_view path,
                           const http::body_source& source) const;

 private:
  std::string path(std::string_view endpoint) const;

  http::client http_;
  std::string api_version_;
};

/// Which part of an output longer than its limit is kept.
enum class output_keep { first, last };

/// Reads the multiplexed output of an exec opened with client::open_exec to
/// its end: stdout and stderr as they interleave, of which the first or last
/// `max_output` bytes are kept (the rest is read and dropped, so memory stays
/// bounded). Fails with errc::unavailable when the stream ends inside a
/// frame, and with the reader's errors (timeout, cancelled).
result<std::string> read_exec_output(http::body_reader& reader, std::size_t max_output,
                                     output_keep keep);

/// The image of the container this process runs in, if it runs in one (its
/// host name is its container ID, as Docker sets it): lifeboat's own image,
/// which is always present on the node. Volume containers and agents run it.
std::optional<std::string> own_image(const client& client);

}  // namespace lifeboat::engine
