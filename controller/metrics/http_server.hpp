#pragma once

#include <functional>
#include <memory>
#include <string>

// The controller's HTTP endpoints: /metrics (Prometheus text format),
// /healthz (the process serves requests) and /readyz (caches synced and lease
// state known). Requests are answered one at a time on the server's own
// thread: scrapes and probes are rare and cheap.
namespace lifeboat::metrics {

struct endpoints {
  std::function<std::string()> metrics;  ///< the body of /metrics
  std::function<bool()> ready;           ///< /readyz answers 200 when true, else 503
};

class http_server {
 public:
  /// Listens on `address` ("host:port"; ":9090" means every interface; port 0
  /// picks a free one) and serves on a thread of its own until destroyed.
  /// Throws std::runtime_error when it cannot listen: a start-up error.
  http_server(const std::string& address, endpoints handlers);
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
