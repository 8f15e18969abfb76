#include "controller/engine/transport.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>

#include <atomic>
#include <string_view>

namespace lifeboat::engine {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

// A unix-socket connection whose blocking operations honour a deadline: each
// operation is started asynchronously on a private io_context, which then runs
// until the operation completes or the deadline passes. Asio tries the read or
// write at once before waiting, so a ready socket costs no extra system calls.
class unix_stream final : public byte_stream {
 public:
  unix_stream() : socket_(io_) {}

  error_code connect(const std::string& path, deadline by) {
    error_code result = asio::error::would_block;
    socket_.async_connect(asio::local::stream_protocol::endpoint(path),
                          [&](error_code ec) { result = ec; });
    run(by, result);
    return result;
  }

  std::size_t read_some(std::span<char> into, deadline by, error_code& ec) override {
    std::size_t n = 0;
    ec = asio::error::would_block;
    socket_.async_read_some(asio::buffer(into.data(), into.size()),
                            [&](error_code e, std::size_t got) {
                              ec = e;
                              n = got;
                            });
    run(by, ec);
    return n;
  }

  std::size_t write_some(std::span<const char> from, deadline by, error_code& ec) override {
    std::size_t n = 0;
    ec = asio::error::would_block;
    socket_.async_write_some(asio::buffer(from.data(), from.size()),
                             [&](error_code e, std::size_t put) {
                               ec = e;
                               n = put;
                             });
    run(by, ec);
    return n;
  }

  void cancel() override {
    cancelled_ = true;
    // The socket belongs to the thread running io_; close it from there.
    asio::post(io_, [this] {
      error_code ignored;
      socket_.close(ignored);
    });
  }

 private:
  // Runs io_ until the started operation sets `status`, the deadline passes or
  // cancel() is called; then makes sure its handler has run before returning,
  // since the handler refers to the caller's stack.
  void run(deadline by, error_code& status) {
    const bool was_cancelled = cancelled_;
    if (was_cancelled) {
      error_code ignored;
      socket_.close(ignored);
    }
    io_.restart();
    while (status == asio::error::would_block) {
      if (by) {
        if (io_.run_one_until(*by) == 0 && status == asio::error::would_block) {
          break;
        }
      } else if (io_.run_one() == 0) {
        break;
      }
    }
    if (status != asio::error::would_block) {
      if (cancelled_ && status) {
        status = make_error_code(errc::cancelled);
      }
      return;
    }
    // Deadline passed: abort the operation and let its handler run.
    error_code ignored;
    socket_.close(ignored);
    io_.restart();
    while (status == asio::error::would_block && io_.run_one() != 0) {
    }
    status = make_error_code(cancelled_ ? errc::cancelled : errc::timeout);
  }

  asio::io_context io_{1};
  asio::local::stream_protocol::socket socket_;
  std::atomic<bool> cancelled_{false};
};

}  // namespace

connector unix_socket_connector(std::string path) {
  return [path = std::move(path)](deadline by) -> result<std::unique_ptr<byte_stream>> {
    auto stream = std::make_unique<unix_stream>();
    if (const error_code ec = stream->connect(path, by)) {
      if (ec == make_error_code(errc::timeout)) {
        return make_error(errc::timeout, "connecting to " + path);
      }
      return make_error(errc::unavailable, "cannot connect to " + path + ": " + ec.message());
    }
    return std::unique_ptr<byte_stream>(std::move(stream));
  };
}

result<std::string> socket_path_from_docker_host(const char* docker_host) {
  constexpr std::string_view scheme = "unix://";
  if (docker_host == nullptr || *docker_host == '\0') {
    return std::string("/var/run/docker.sock");
  }
  const std::string_view host(docker_host);
  if (!host.starts_with(scheme) || host.size() == scheme.size()) {
    return make_error(errc::unsupported, "DOCKER_HOST=" + std::string(host) +
                                             ": only unix:///path/to/socket is supported");
  }
  return std::string(host.substr(scheme.size()));
}

}  // namespace lifeboat::engine
