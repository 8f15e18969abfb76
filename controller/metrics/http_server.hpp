#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

// The controller's HTTP endpoints: /metrics (Prometheus text format),
// /healthz (the process serves requests) and /readyz (caches synced and lease
// state known). Requests are answered one at a time on the server's own
// thread: scrapes and probes are rare and cheap. Everything a client can make
// it hold is bounded (connections, request bytes, time), so many slow or
// large requests cannot exhaust the controller's memory or descriptors.
namespace lifeboat::metrics {

struct endpoints {
  std::function<std::string()> metrics;  ///< the body of /metrics
  std::function<bool()> ready;           ///< /readyz answers 200 when true, else 503
};

struct server_limits {
  /// Connections open at once; one more is closed as soon as it is accepted.
  std::size_t max_connections = 16;
  /// A request's line and headers; a larger one is answered 431 and closed.
  std::size_t max_request_bytes = 8 * 1024;
  /// From accepting a connection to having written its answer.
  std::chrono::milliseconds deadline{10'000};
  /// The pause after a failed accept (out of descriptors): no busy loop.
  std::chrono::milliseconds accept_backoff{200};
};

class http_server {
 public:
  /// Listens on `address` ("host:port"; ":9090" means every interface; port 0
  /// picks a free one) and serves on a thread of its own until destroyed.
  /// Throws std::runtime_error when it cannot listen: a start-up error.
  http_server(const std::string& address, endpoints handlers, server_limits limits = {});
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  /// The port actually bound.
  unsigned short port() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace lifeboat::metrics
