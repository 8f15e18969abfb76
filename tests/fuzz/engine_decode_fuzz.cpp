// libFuzzer target: the engine client's decoders (controller/engine/client.cpp),
// which turn the engine's JSON answers into typed values, reached through the
// public client over an in-memory connection (tests/controller/engine), so the
// HTTP layer and the mapping of error answers run too.
//
// Input: the first byte chooses the call (low 5 bits) and the answer's HTTP
// status (high 3 bits); the rest is the answer's body, sent with a
// Content-Length. A first byte of 0xFF instead makes the second byte choose
// the call (low 5 bits) and sends the rest as the whole raw answer, status
// line and headers included.
//
// Beyond "no crash, no sanitizer report": every call returns either a value or
// an error with a message, and the data of a decoded config survives the
// client's own encoding (create_config) unchanged.
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "controller/engine/client.hpp"
#include "tests/controller/engine/scripted_stream.hpp"

namespace {

using namespace lifeboat::engine;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "engine_decode_fuzz: %s\n", what.c_str());
  std::abort();
}

constexpr std::array<int, 8> statuses = {200, 201, 204, 304, 400, 404, 409, 500};

std::string framed(int status, std::string_view body) {
  std::string out = "HTTP/1.1 " + std::to_string(status) +
                    " X\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\n";
  if (status == 204 || status == 304) {
    return out + "\r\n";
  }
  return out + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
}

template <class T>
void expect_described(const result<T>& r, const char* call) {
  if (!r && r.error().describe().empty()) {
    fail(std::string(call) + ": an error without a description");
  }
}

// The Data that create_config sends for `data`, decoded back by the engine's rules.
std::string sent_config_data(std::string_view data) {
  test::scripted_engine engine;
  engine.respond(framed(201, R"({"ID":"c1"})"));
  const client c(engine.connect(), "1.41", std::chrono::seconds{5});
  if (!c.create_config("roundtrip", data, {})) {
    fail("create_config failed against a canned answer");
  }
  // The request written is headers, a blank line and the JSON body.
  const std::string& written = engine.written();
  const auto body_at = written.find("\r\n\r\n");
  if (body_at == std::string::npos) {
    fail("create_config wrote no body");
  }
  const auto spec = boost::json::parse(std::string_view(written).substr(body_at + 4));
  // Reuse the client's decoder: inspect_config on an answer carrying this spec.
  test::scripted_engine back;
  boost::json::object answer;
  answer["ID"] = "c1";
  answer["Spec"] = spec;
  back.respond(framed(200, boost::json::serialize(answer)));
  const client c2(back.connect(), "1.41", std::chrono::seconds{5});
  auto decoded = c2.inspect_config("c1");
  if (!decoded) {
    fail("the client's own config encoding does not decode: " + decoded.error().describe());
  }
  return decoded->data;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) {
    return 0;
  }
  std::uint8_t selector = data[0];
  std::string_view rest{reinterpret_cast<const char*>(data) + 1, size - 1};
  test::scripted_engine engine;
  if (selector == 0xFF) {
    if (rest.empty()) {
      return 0;
    }
    selector = static_cast<std::uint8_t>(rest.front());
    rest.remove_prefix(1);
    engine.respond(std::string(rest));
  } else {
    engine.respond(framed(statuses[selector >> 5U], rest));
  }
  const client c(engine.connect(), "1.41", std::chrono::seconds{5});

  switch (selector & 0x1FU) {
    case 0:
      expect_described(c.ping(), "ping");
      break;
    case 1:
      expect_described(c.version(), "version");
      break;
    case 2:
      expect_described(c.info(), "info");
      break;
    case 3:
      expect_described(c.list_nodes(), "list_nodes");
      break;
    case 4:
      expect_described(c.list_services(), "list_services");
      break;
    case 5:
      expect_described(c.inspect_service("s"), "inspect_service");
      break;
    case 6:
      expect_described(c.list_tasks(), "list_tasks");
      break;
    case 7:
      expect_described(c.list_containers(), "list_containers");
      break;
    case 8:
      expect_described(c.inspect_container("c"), "inspect_container");
      break;
    case 9:
      expect_described(c.inspect_exec("e"), "inspect_exec");
      break;
    case 10: {
      auto configs = c.list_configs();
      expect_described(configs, "list_configs");
      if (configs) {
        for (const config& cfg : *configs) {
          if (sent_config_data(cfg.data) != cfg.data) {
            fail("config data changes through create_config and back");
          }
        }
      }
      break;
    }
    case 11:
      expect_described(c.inspect_config("c"), "inspect_config");
      break;
    case 12:
      expect_described(c.list_volumes(), "list_volumes");
      break;
    case 13:
      expect_described(c.inspect_volume("v"), "inspect_volume");
      break;
    case 14:
      expect_described(c.create_volume("v"), "create_volume");
      break;
    case 15:
      expect_described(c.create_service(boost::json::object{}), "create_service");
      break;
    case 16:
      expect_described(c.wait_container("c", std::chrono::seconds{5}), "wait_container");
      break;
    case 17:
      expect_described(c.create_exec("c", {"true"}), "create_exec");
      break;
    case 18: {
      auto events = c.events();
      expect_described(events, "events");
      if (events) {
        // Every line is an event or an error; the stream ends with an error.
        for (int i = 0; i < 1000; ++i) {
          auto e = events->next();
          expect_described(e, "events.next");
          if (!e) {
            break;
          }
        }
      }
      break;
    }
    case 19: {
      auto body = c.start_exec("e", 4096, std::chrono::seconds{5});
      expect_described(body, "start_exec");
      if (body && body->size() > 4096) {
        fail("start_exec returned more than max_output");
      }
      break;
    }
    case 20: {
      // The agents' reports arrive through service logs, demultiplexed the
      // same way.
      auto logs = c.service_logs("s", 4096);
      expect_described(logs, "service_logs");
      if (logs && logs->size() > 4096) {
        fail("service_logs returned more than max_output");
      }
      break;
    }
    default:
      expect_described(c.update_service("s", 1, boost::json::object{}), "update_service");
      break;
  }
  return 0;
}
