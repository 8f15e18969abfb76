#pragma once

#include "controller/engine/error.hpp"
#include "controller/engine/transport.hpp"

#include <boost/asio/error.hpp>

#include <algorithm>
#include <cstddef>
#include <deque>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

// An in-memory engine for client tests: each connection plays back canned
// response bytes in reads of bounded size, records every byte the client
// writes, and fails on cue at a chosen operation, in the manner of Beast's
// test::fail_count. Single-threaded: the tests drive the client from one thread.
namespace lifeboat::engine::test {

inline constexpr std::size_t unlimited = std::numeric_limits<std::size_t>::max();

/// What one connection does.
struct script {
  /// The bytes the engine sends back, status line to the end of the body.
  std::string response;
  /// The most bytes one read_some delivers (1 splits everything, headers too).
  std::size_t read_limit = unlimited;
  /// The most bytes one write_some accepts.
  std::size_t write_limit = unlimited;
  /// The 0-based number of the operation, reads and writes counted together,
  /// that fails with `fail_with`; from then on every operation fails the same way,
  /// as on a broken connection.
  std::optional<std::size_t> fail_at;
  boost::system::error_code fail_with = boost::asio::error::connection_reset;
  /// What a read past the end of `response` reports: eof (the engine closed the
  /// connection) or, say, errc::timeout (the engine stays silent past the deadline).
  boost::system::error_code at_end = boost::asio::error::eof;
};

/// What one connection saw; kept after its stream is gone.
struct connection_record {
  std::string written;  ///< every byte the client wrote, in order
  std::size_t operations = 0;
  bool failure_hit = false;
  std::size_t largest_read = 0;  ///< the largest buffer the client offered to read_some
  std::size_t largest_write = 0;
  std::vector<deadline> read_deadlines;
  std::vector<deadline> write_deadlines;
};

/// Shared by a scripted_engine, its connectors and every stream they opened.
struct engine_state {
  std::deque<script> scripts;  ///< for the next connections, in order
  std::vector<connection_record> connections;
  int live = 0;  ///< streams constructed and not yet destroyed
};

/// A byte_stream that plays back one script. cancel() makes every later
/// operation fail with errc::cancelled.
class scripted_stream final : public byte_stream {
 public:
  scripted_stream(std::shared_ptr<engine_state> state, script s)
      : state_(std::move(state)), script_(std::move(s)), index_(state_->connections.size()) {
    state_->connections.emplace_back();
    ++state_->live;
  }
  scripted_stream(const scripted_stream&) = delete;
  scripted_stream& operator=(const scripted_stream&) = delete;
  ~scripted_stream() override { --state_->live; }

  std::size_t read_some(std::span<char> into, deadline by, boost::system::error_code& ec) override {
    auto& rec = record();
    rec.read_deadlines.push_back(by);
    rec.largest_read = std::max(rec.largest_read, into.size());
    ec = next_operation();
    if (ec) {
      return 0;
    }
    if (position_ == script_.response.size()) {
      ec = script_.at_end;
      return 0;
    }
    const std::size_t n =
        std::min({into.size(), script_.read_limit, script_.response.size() - position_});
    std::copy_n(script_.response.data() + position_, n, into.data());
    position_ += n;
    return n;
  }

  std::size_t write_some(std::span<const char> from, deadline by,
                         boost::system::error_code& ec) override {
    auto& rec = record();
    rec.write_deadlines.push_back(by);
    ec = next_operation();
    if (ec) {
      return 0;
    }
    const std::size_t n = std::min(from.size(), script_.write_limit);
    rec.largest_write = std::max(rec.largest_write, n);
    rec.written.append(from.data(), n);
    return n;
  }

  void cancel() override { cancelled_ = true; }

 private:
  connection_record& record() { return state_->connections[index_]; }

  // Counts an operation and says how it fails, if it does.
  boost::system::error_code next_operation() {
    auto& rec = record();
    const std::size_t number = rec.operations++;
    if (cancelled_) {
      return make_error_code(errc::cancelled);
    }
    if (broken_) {
      return script_.fail_with;
    }
    if (script_.fail_at && *script_.fail_at == number) {
      rec.failure_hit = true;
      broken_ = true;
      return script_.fail_with;
    }
    return {};
  }

  std::shared_ptr<engine_state> state_;
  script script_;
  std::size_t index_;
  std::size_t position_ = 0;
  bool broken_ = false;
  bool cancelled_ = false;
};

/// The test's handle on a fake engine: queue one script per expected
/// connection, hand connect() to the client, then inspect what was written.
class scripted_engine {
 public:
  scripted_engine() : state_(std::make_shared<engine_state>()) {}

  /// Queues `s` for the next connection.
  scripted_engine& expect(script s) {
    state_->scripts.push_back(std::move(s));
    return *this;
  }

  /// Queues a connection answering `response` in reads of at most `read_limit` bytes.
  scripted_engine& respond(std::string response, std::size_t read_limit = unlimited) {
    script s;
    s.response = std::move(response);
    s.read_limit = read_limit;
    return expect(std::move(s));
  }

  /// A connector handing out the queued scripts in turn; once they are used up
  /// it refuses like a stopped engine.
  connector connect() const {
    return [state = state_](deadline) -> result<std::unique_ptr<byte_stream>> {
      if (state->scripts.empty()) {
        return make_error(errc::unavailable, "scripted engine: no connection expected");
      }
      auto s = std::move(state->scripts.front());
      state->scripts.pop_front();
      return std::unique_ptr<byte_stream>(std::make_unique<scripted_stream>(state, std::move(s)));
    };
  }

  /// Streams opened and not yet destroyed.
  int live() const { return state_->live; }
  std::size_t connections() const { return state_->connections.size(); }
  std::size_t unused_scripts() const { return state_->scripts.size(); }
  const connection_record& connection(std::size_t i = 0) const { return state_->connections.at(i); }
  const std::string& written(std::size_t i = 0) const { return connection(i).written; }

 private:
  std::shared_ptr<engine_state> state_;
};

/// A connector for an engine that is not running: every connect fails with
/// errc::unavailable, as unix_socket_connector does on ECONNREFUSED.
inline connector refusing_connector() {
  return [](deadline) -> result<std::unique_ptr<byte_stream>> {
    return make_error(errc::unavailable,
                      "cannot connect to /var/run/docker.sock: Connection refused");
  };
}

}  // namespace lifeboat::engine::test
