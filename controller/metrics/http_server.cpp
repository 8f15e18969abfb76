#include "controller/metrics/http_server.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
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
  asio::steady_timer backoff{io};
  endpoints handlers;
  server_limits limits;
  std::size_t open = 0;  // connections being served; only the io thread touches it
  std::thread thread;

  void accept() {
    acceptor.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) {
        return;
      }
      if (ec) {
        // EMFILE and the like repeat at once: wait before trying again.
        backoff.expires_after(limits.accept_backoff);
        backoff.async_wait([this](boost::system::error_code wait_ec) {
          if (!wait_ec) {
            accept();
          }
        });
        return;
      }
      if (open >= limits.max_connections) {
        boost::system::error_code ignored;
        socket.close(ignored);
      } else {
        serve(std::move(socket));
      }
      accept();
    });
  }

  struct connection {
    explicit connection(tcp::socket s, asio::io_context& io, std::size_t max_bytes)
        : socket(std::move(s)), buffer(max_bytes), timer(io) {
      parser.header_limit(static_cast<std::uint32_t>(max_bytes));
      parser.body_limit(0);  // GET and HEAD only
    }
    tcp::socket socket;
    boost::beast::flat_buffer buffer;
    http::request_parser<http::string_body> parser;
    http::response<http::string_body> response;
    asio::steady_timer timer;
  };

  void finish(const std::shared_ptr<connection>& c) {
    boost::system::error_code ignored;
    c->socket.shutdown(tcp::socket::shutdown_both, ignored);
    c->socket.close(ignored);
    c->timer.cancel();
  }

  // One request per connection, with a deadline so a stuck client cannot
  // hold a slot.
  void serve(tcp::socket socket) {
    ++open;
    // The slot is freed when the last handler lets go of the connection.
    auto c = std::shared_ptr<connection>(
        new connection(std::move(socket), io, limits.max_request_bytes), [this](connection* p) {
          --open;
          delete p;
        });
    c->timer.expires_after(limits.deadline);
    c->timer.async_wait([c](boost::system::error_code ec) {
      if (!ec) {
        boost::system::error_code ignored;
        c->socket.close(ignored);
      }
    });
    http::async_read(
        c->socket, c->buffer, c->parser, [this, c](boost::system::error_code ec, std::size_t) {
          if (ec == http::error::header_limit || ec == http::error::buffer_overflow ||
              ec == http::error::body_limit) {
            c->response.result(http::status::request_header_fields_too_large);
            c->response.keep_alive(false);
            c->response.body() = "request too large\n";
            c->response.prepare_payload();
          } else if (ec) {
            finish(c);
            return;
          } else {
            c->response = answer(c->parser.get(), handlers);
          }
          http::async_write(c->socket, c->response,
                            [this, c](boost::system::error_code, std::size_t) { finish(c); });
        });
  }
};

http_server::http_server(const std::string& address, endpoints handlers, server_limits limits)
    : impl_(std::make_unique<impl>()) {
  impl_->handlers = std::move(handlers);
  impl_->limits = limits;
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
    impl_->backoff.cancel();
    impl_->io.stop();
  });
  impl_->thread.join();
}

unsigned short http_server::port() const { return impl_->acceptor.local_endpoint().port(); }

}  // namespace lifeboat::metrics
