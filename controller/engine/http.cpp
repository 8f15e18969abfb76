#include "controller/engine/http.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/system/system_error.hpp>

#include <array>
#include <atomic>

namespace lifeboat::engine::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using boost::system::error_code;
using std::chrono::milliseconds;

namespace {

constexpr std::size_t max_buffered_body = std::size_t{64} * 1024 * 1024;
constexpr std::size_t max_error_body = std::size_t{64} * 1024;
constexpr std::size_t upload_chunk = std::size_t{256} * 1024;
// Beast reads at most the free capacity of its buffer (and at least 512 bytes),
// so the capacity set here is the size of each read from the socket.
constexpr std::size_t stream_read_size = std::size_t{256} * 1024;
constexpr std::size_t buffered_read_size = std::size_t{16} * 1024;

// Presents a byte_stream as Beast's SyncReadStream and SyncWriteStream. Every
// operation gets either the exchange's fixed deadline or, for streamed bodies,
// a fresh idle deadline, so a slow but moving transfer never times out.
class sync_stream {
 public:
  sync_stream(byte_stream& stream, deadline fixed, std::optional<milliseconds> idle)
      : stream_(stream), fixed_(fixed), idle_(idle) {}

  void set_idle(std::optional<milliseconds> idle) {
    fixed_.reset();
    idle_ = idle;
  }

  template <class MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers, error_code& ec) {
    for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers);
         ++it) {
      const asio::mutable_buffer b = *it;
      if (b.size() != 0) {
        return stream_.read_some({static_cast<char*>(b.data()), b.size()}, next_deadline(), ec);
      }
    }
    ec = {};
    return 0;
  }

  template <class MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers) {
    error_code ec;
    const std::size_t n = read_some(buffers, ec);
    if (ec) {
      throw boost::system::system_error(ec);
    }
    return n;
  }

  template <class ConstBufferSequence>
  std::size_t write_some(const ConstBufferSequence& buffers, error_code& ec) {
    for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers);
         ++it) {
      const asio::const_buffer b = *it;
      if (b.size() != 0) {
        return stream_.write_some({static_cast<const char*>(b.data()), b.size()}, next_deadline(),
                                  ec);
      }
    }
    ec = {};
    return 0;
  }

  template <class ConstBufferSequence>
  std::size_t write_some(const ConstBufferSequence& buffers) {
    error_code ec;
    const std::size_t n = write_some(buffers, ec);
    if (ec) {
      throw boost::system::system_error(ec);
    }
    return n;
  }

 private:
  deadline next_deadline() const {
    if (fixed_) {
      return fixed_;
    }
    if (idle_) {
      return clock::now() + *idle_;
    }
    return std::nullopt;
  }

  byte_stream& stream_;
  deadline fixed_;
  std::optional<milliseconds> idle_;
};

bhttp::verb to_beast(method m) {
  switch (m) {
    case method::get:
      return bhttp::verb::get;
    case method::post:
      return bhttp::verb::post;
    case method::put:
      return bhttp::verb::put;
    case method::delete_:
      return bhttp::verb::delete_;
  }
  return bhttp::verb::get;
}

template <class Body>
void prepare_headers(bhttp::request<Body>& req, const request& r) {
  req.method(to_beast(r.verb));
  req.target(r.target);
  req.version(11);
  // The engine ignores Host on its unix socket, but HTTP/1.1 requires one.
  req.set(bhttp::field::host, "docker");
  req.set(bhttp::field::user_agent, "lifeboat");
  if (!r.body.empty() || r.verb == method::post || r.verb == method::put) {
    req.set(bhttp::field::content_type, r.content_type);
  }
}

// Turns an I/O or parse failure into an engine error. A connection that ends
// before or in the middle of a response means the engine went away.
error from_io(const error_code& ec, std::string_view during) {
  const std::string where(during);
  if (ec == make_error_code(errc::timeout)) {
    return make_error(errc::timeout, where + ": no answer before the deadline");
  }
  if (ec == make_error_code(errc::cancelled)) {
    return make_error(errc::cancelled, where);
  }
  if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message ||
      ec == asio::error::eof ||
      ec.category() != bhttp::make_error_code(bhttp::error::end_of_stream).category()) {
    return make_error(errc::unavailable, where + ": " + ec.message());
  }
  return make_error(errc::protocol_error, where + ": " + ec.message());
}

std::string header_or_empty(const bhttp::fields& fields, std::string_view name) {
  const auto it = fields.find(name);
  return it == fields.end() ? std::string() : std::string(it->value());
}

// Reads a (bounded) error body after the headers of a failed streamed response.
template <class Parser>
std::string read_error_body(sync_stream& s, beast::flat_buffer& buf, Parser& parser) {
  std::string body;
  std::array<char, 4096> chunk{};
  while (!parser.is_done() && body.size() < max_error_body) {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    error_code ec;
    bhttp::read_some(s, buf, parser, ec);
    if (ec && ec != bhttp::error::need_buffer) {
      break;
    }
    body.append(chunk.data(), chunk.size() - parser.get().body().size);
  }
  return body;
}

// Reads a whole (bounded) response; a status of 400 or more becomes the
// engine's error.
result<response> read_response(sync_stream& s, const std::string& target) {
  beast::flat_buffer buf;
  buf.reserve(buffered_read_size);
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(max_buffered_body);
  error_code ec;
  bhttp::read(s, buf, parser, ec);
  if (ec) {
    return from_io(ec, "reading the response to " + target);
  }
  auto& res = parser.get();
  const int status = static_cast<int>(res.result_int());
  if (status >= 400) {
    return error_from_response(status, res.body());
  }
  return response{status, std::move(res.body()), header_or_empty(res, "Api-Version"),
                  header_or_empty(res, "Content-Type")};
}

}  // namespace

struct body_reader::impl {
  impl(std::unique_ptr<byte_stream> s, std::optional<milliseconds> idle)
      : stream(std::move(s)), sync(*stream, std::nullopt, idle) {
    buffer.reserve(stream_read_size);
  }

  std::unique_ptr<byte_stream> stream;
  sync_stream sync;
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::buffer_body> parser;
  int status = 0;
  std::string content_type;
  std::atomic<bool> cancelled{false};
};

body_reader::body_reader(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
body_reader::body_reader(body_reader&&) noexcept = default;
body_reader& body_reader::operator=(body_reader&&) noexcept = default;
body_reader::~body_reader() = default;

int body_reader::status() const { return impl_->status; }
const std::string& body_reader::content_type() const { return impl_->content_type; }

void body_reader::cancel() {
  impl_->cancelled = true;
  impl_->stream->cancel();
}

bool body_reader::cancelled() const { return impl_->cancelled; }

result<std::size_t> body_reader::read(std::span<char> into) {
  auto& p = impl_->parser;
  while (!p.is_done()) {
    p.get().body().data = into.data();
    p.get().body().size = into.size();
    error_code ec;
    bhttp::read_some(impl_->sync, impl_->buffer, p, ec);
    if (ec && ec != bhttp::error::need_buffer) {
      return from_io(ec, "reading response body");
    }
    const std::size_t got = into.size() - p.get().body().size;
    if (got != 0) {
      return got;
    }
  }
  return std::size_t{0};
}

client::client(connector connect, milliseconds timeout)
    : connect_(std::move(connect)), timeout_(timeout) {}

result<response> client::send(const request& req) const { return send(req, timeout_); }

result<response> client::send(const request& r, milliseconds timeout) const {
  const deadline by = clock::now() + timeout;
  auto stream = connect_(by);
  if (!stream) {
    return stream.error();
  }
  sync_stream s(**stream, by, std::nullopt);

  bhttp::request<bhttp::string_body> req;
  prepare_headers(req, r);
  req.body() = r.body;
  req.prepare_payload();
  error_code ec;
  bhttp::write(s, req, ec);
  if (ec) {
    return from_io(ec, "sending " + r.target);
  }

  return read_response(s, r.target);
}

result<body_reader> client::open(const request& r, std::optional<milliseconds> idle_timeout) const {
  const deadline by = clock::now() + timeout_;
  auto stream = connect_(by);
  if (!stream) {
    return stream.error();
  }
  auto state = std::make_unique<body_reader::impl>(std::move(*stream), idle_timeout);
  // Until the headers are in, the request's own timeout applies.
  sync_stream head(*state->stream, by, std::nullopt);

  bhttp::request<bhttp::string_body> req;
  prepare_headers(req, r);
  req.body() = r.body;
  req.prepare_payload();
  error_code ec;
  bhttp::write(head, req, ec);
  if (ec) {
    return from_io(ec, "sending " + r.target);
  }
  state->parser.body_limit(boost::none);
  bhttp::read_header(head, state->buffer, state->parser, ec);
  if (ec) {
    return from_io(ec, "reading the response to " + r.target);
  }
  const auto& res = state->parser.get();
  state->status = static_cast<int>(res.result_int());
  state->content_type = header_or_empty(res, "Content-Type");
  if (state->status >= 400) {
    return error_from_response(state->status, read_error_body(head, state->buffer, state->parser));
  }
  return body_reader(std::move(state));
}

result<response> client::upload(const request& r, const body_source& source) const {
  auto stream = connect_(clock::now() + timeout_);
  if (!stream) {
    return stream.error();
  }
  // Uploads can take long; only a stall (no progress within the timeout) fails.
  sync_stream s(**stream, std::nullopt, timeout_);

  bhttp::request<bhttp::buffer_body> req;
  prepare_headers(req, r);
  req.chunked(true);
  req.body().data = nullptr;
  req.body().more = true;
  bhttp::request_serializer<bhttp::buffer_body> serializer(req);
  error_code ec;
  bhttp::write_header(s, serializer, ec);
  if (ec) {
    return from_io(ec, "sending " + r.target);
  }
  std::vector<char> chunk(upload_chunk);
  for (;;) {
    auto n = source(chunk);
    if (!n) {
      return n.error();
    }
    req.body().data = *n != 0 ? chunk.data() : nullptr;
    req.body().size = *n;
    req.body().more = *n != 0;
    bhttp::write(s, serializer, ec);
    if (ec == bhttp::error::need_buffer) {
      ec = {};
    }
    if (ec) {
      return from_io(ec, "sending the body of " + r.target);
    }
    if (*n == 0) {
      break;
    }
  }

  return read_response(s, r.target);
}

error error_from_response(int status, std::string_view body) {
  std::string message(body);
  error_code ec;
  const auto parsed = boost::json::parse(body, ec);
  if (!ec && parsed.is_object()) {
    if (const auto* m = parsed.as_object().if_contains("message"); m && m->is_string()) {
      message = std::string(m->as_string());
    }
  }
  while (!message.empty() && (message.back() == '\n' || message.back() == '\r')) {
    message.pop_back();
  }
  switch (status) {
    case 400:
      return make_error(errc::bad_request, std::move(message), status);
    case 404:
      return make_error(errc::not_found, std::move(message), status);
    case 409:
      return make_error(errc::conflict, std::move(message), status);
    default:
      break;
  }
  // Swarm reports a stale version index as a plain 500.
  if (message.find("update out of sequence") != std::string::npos) {
    return make_error(errc::conflict, std::move(message), status);
  }
  if (status >= 500) {
    return make_error(errc::server_error, std::move(message), status);
  }
  return make_error(errc::bad_request, std::move(message), status);
}

}  // namespace lifeboat::engine::http
