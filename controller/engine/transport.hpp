#pragma once

#include "controller/engine/error.hpp"

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>

namespace lifeboat::engine {

using clock = std::chrono::steady_clock;
/// When an operation must have completed; nullopt waits forever (until cancelled).
using deadline = std::optional<clock::time_point>;

/// One connection to the engine: a bidirectional byte stream with deadlines.
/// The HTTP layer runs Beast's parser and serializer over it; tests substitute a
/// scripted stream that fails on cue.
///
/// read_some/write_some are called from one thread at a time; cancel() may be
/// called from any thread, at any time, and makes the pending and every later
/// operation fail with errc::cancelled.
class byte_stream {
 public:
  virtual ~byte_stream() = default;

  /// Reads at least one byte into `into`. At the end of the stream returns 0 with
  /// `ec` = boost::asio::error::eof. On deadline: errc::timeout.
  virtual std::size_t read_some(std::span<char> into, deadline by,
                                boost::system::error_code& ec) = 0;

  /// Writes at least one byte of `from`; returns how many were written.
  virtual std::size_t write_some(std::span<const char> from, deadline by,
                                 boost::system::error_code& ec) = 0;

  virtual void cancel() = 0;
};

/// Opens a new connection. The client asks for one per request, so a connector
/// must be callable from several threads at once.
using connector = std::function<result<std::unique_ptr<byte_stream>>(deadline by)>;

/// A connector for the unix socket at `path`.
connector unix_socket_connector(std::string path);

/// The socket path from a DOCKER_HOST value: "unix:///run/docker.sock" ->
/// "/run/docker.sock"; empty -> the default /var/run/docker.sock. Any other
/// scheme (tcp://, ssh://) is refused with errc::unsupported.
result<std::string> socket_path_from_docker_host(const char* docker_host);

}  // namespace lifeboat::engine
