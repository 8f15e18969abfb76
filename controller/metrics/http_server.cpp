#include "controller/metrics/http_server.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <atomic>
#include <stdexcept>
#include <thread>

namespace lifeboat::metrics {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

tcp::endpoint parse_address(const std::string& address) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) {
    throw std::runtime_error("metrics address \"" + address + "\": expected host:port");
  }
  const std::string host = address.substr(0, colon);
  unsigned long port = 0;
  try {
    port = std::stoul(address.substr(colon + 1));
  } catch (const std::exception&) {
    throw std::runtime_error("metrics address \"" + address + "\": bad port");
  }
  if (port > 65535) {
    throw std::runtime_error("metrics address \"" + address + "\": bad port");
  }
  boost::system::error_code ec;
  const auto ip = host.empty() ? asio::ip::address(asio::ip::address_v4::any())
                               : asio::ip::make_address(host, ec);
  if (ec) {
    throw std::runtime_error("metrics address \"" + address + "\": " + ec.message());
  }
  return {ip, static_cast<unsigned short>(port)};
}

http::response<http::string_body> answer(const http::request<http::string_body>& req,
                                         const endpoints& handlers) {
  http::response<http::string_body> res;
  res.version(req.version());
  res.keep_alive(false);
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  const auto target = req.target();
  const auto path = target.substr(0, target.find('?'));
  if (req.method() != http::verb::get && req.method() != http::verb::head) {
    res.result(http::status::method_not_allowed);
    res.body() = "only GET\n";
  } else if (path == "/metrics") {
    res.result(http::status::ok);
    res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.body() = handlers.metrics();
  } else if (path == "/healthz") {
    res.result(http::status::ok);
    res.body() = "ok\n";
  } else if (path == "/readyz") {
    const bool ready = handlers.ready();
    res.result(ready ? http::status::ok : http::status::service_unavailable);
    res.body() = ready ? "ready\n" : "not ready\n";
  } else {
    res.result(http::status::not_found);
    res.body() = "not found\n";
  }
  res.prepare_payload();
  return res;
}

}  // namespace

struct http_server::impl {
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  endpoints handlers;
  std::thread thread;

  void accept() {
    acceptor.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
      if (ec) {
        if (ec != asio::error::operation_aborted) {
          accept();
        }
        return;
      }
      serve(std::move(socket));
      accept();
    });
  }

  // One request per connection, with a short deadline so a stuck client
  // cannot hold the endpoint.
  void serve(tcp::socket socket) {
    auto state = std::make_shared<std::pair<tcp::socket, boost::beast::flat_buffer>>(
        std::move(socket), boost::beast::flat_buffer{});
    auto req = std::make_shared<http::request<http::string_body>>();
    auto timer = std::make_shared<asio::steady_timer>(io, std::chrono::seconds{10});
    timer->async_wait([state](boost::system::error_code ec) {
      if (!ec) {
        boost::system::error_code ignored;
        state->first.close(ignored);
      }
    });
    http::async_read(
        state->first, state->second, *req,
        [this, state, req, timer](boost::system::error_code ec, std::size_t) {
          if (ec) {
            timer->cancel();
            return;
          }
          auto res = std::make_shared<http::response<http::string_body>>(answer(*req, handlers));
          http::async_write(state->first, *res,
                            [state, res, timer](boost::system::error_code, std::size_t) {
                              boost::system::error_code ignored;
                              state->first.shutdown(tcp::socket::shutdown_both, ignored);
                              timer->cancel();
                            });
        });
  }
};

http_server::http_server(const std::string& address, endpoints handlers)
    : impl_(std::make_unique<impl>()) {
  impl_->handlers = std::move(handlers);
  const auto endpoint = parse_address(address);
  boost::system::error_code ec;
  impl_->acceptor.open(endpoint.protocol(), ec);
  if (!ec) {
    impl_->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  }
  if (!ec) {
    impl_->acceptor.bind(endpoint, ec);
  }
  if (!ec) {
    impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    throw std::runtime_error("cannot listen on " + address + ": " + ec.message());
  }
  impl_->accept();
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

http_server::~http_server() {
  asio::post(impl_->io, [this] {
    boost::system::error_code ignored;
    impl_->acceptor.close(ignored);
    impl_->io.stop();
  });
  impl_->thread.join();
}

unsigned short http_server::port() const { return impl_->acceptor.local_endpoint().port(); }

}  // namespace lifeboat::metrics
