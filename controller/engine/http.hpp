#pragma once

#include "controller/engine/error.hpp"
#include "controller/engine/transport.hpp"

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>

// HTTP/1.1 exchanges with the engine over a byte_stream, one connection per
// exchange. Beast does all parsing and serialising; this layer adds deadlines,
// streaming bodies and the mapping of engine error responses to engine::error.
namespace lifeboat::engine::http {

enum class method { get, post, put, delete_ };

struct request {
  request(method v, std::string t, std::string b = {}, std::string type = "application/json")
      : verb(v), target(std::move(t)), body(std::move(b)), content_type(std::move(type)) {}

  method verb = method::get;
  std::string target;  ///< path and query, e.g. "/v1.41/services?status=true"
  std::string body;    ///< sent when non-empty (or when the verb is POST/PUT)
  std::string content_type = "application/json";
};

struct response {
  int status = 0;
  std::string body;
  std::string api_version;  ///< the engine's "Api-Version" header, when present
  std::string content_type;
};

/// A response whose body is read piece by piece: an archive, an event stream,
/// exec output. Owns its connection; destroying it closes the connection.
class body_reader {
 public:
  body_reader(body_reader&&) noexcept;
  body_reader& operator=(body_reader&&) noexcept;
  ~body_reader();

  /// Reads up to into.size() bytes of body; returns 0 once the body is complete.
  /// Fails with errc::timeout when no byte arrives within the idle timeout given
  /// to open(), errc::cancelled after cancel(), errc::unavailable when the
  /// connection breaks before the body is complete.
  result<std::size_t> read(std::span<char> into);

  /// Makes a pending or later read() fail with errc::cancelled. Any thread.
  void cancel();

  /// Whether cancel() was called. Any thread.
  bool cancelled() const;

  int status() const;
  const std::string& content_type() const;

  struct impl;

 private:
  friend class client;
  explicit body_reader(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

/// Produces an upload body piece by piece: fills `into` and returns how many
/// bytes it wrote, 0 at the end; an error aborts the upload.
using body_source = std::function<result<std::size_t>(std::span<char> into)>;

class client {
 public:
  /// `timeout` bounds each whole buffered exchange, and each wait for progress
  /// on a streamed one.
  client(connector connect, std::chrono::milliseconds timeout);

  /// Sends `req` and reads the whole response (at most 64 MiB). An HTTP status
  /// of 400 or above becomes an error carrying the engine's message.
  result<response> send(const request& req) const;

  /// Like send(), with a deadline of its own (e.g. waiting for a container).
  result<response> send(const request& req, std::chrono::milliseconds timeout) const;

  /// Sends `req` and returns once the response headers arrived; the body is
  /// then read through the body_reader. `idle_timeout` bounds each read (nullopt:
  /// wait forever, for event streams, which cancel() ends).
  result<body_reader> open(const request& req,
                           std::optional<std::chrono::milliseconds> idle_timeout) const;

  /// Sends `req` with a chunked body pulled from `source` and reads the
  /// response. Memory stays bounded by one buffer whatever the body's size.
  result<response> upload(const request& req, const body_source& source) const;

  std::chrono::milliseconds timeout() const { return timeout_; }

 private:
  connector connect_;
  std::chrono::milliseconds timeout_;
};

/// The error for an engine response with status >= 400: kind from the status
/// (and "update out of sequence" as a conflict), message from its JSON body.
error error_from_response(int status, std::string_view body);

}  // namespace lifeboat::engine::http
