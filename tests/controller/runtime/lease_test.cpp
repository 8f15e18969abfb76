#include "controller/runtime/lease.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "controller/runtime/clock.hpp"
#include "tests/controller/engine/scripted_stream.hpp"

namespace lifeboat::runtime {

// gtest finds these by argument-dependent lookup, so they live in the
// namespace of the types they print.
void PrintTo(lease_action action, std::ostream* os) { *os << to_string(action); }
void PrintTo(const lease_observation& o, std::ostream* os) {
  *os << "{holder=" << o.holder << " renewed=" << o.renewed
      << " observed_at=" << std::chrono::duration<double>(o.observed_at.time_since_epoch()).count()
      << "s}";
}

namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;
using testing::HasSubstr;
using testing::Not;

const clock::steady_time t0{1h};
constexpr std::string_view me = "node-a";

lease_record held_by(std::string holder, std::string renewed,
                     std::optional<milliseconds> duration = 10s) {
  return {std::move(holder), std::move(renewed), duration};
}

// ---------------------------------------------------------------------------
// The decision, as a table.

struct decide_case {
  std::string name;
  std::optional<lease_record> record;
  std::optional<lease_observation> last;
  clock::steady_time now;
  lease_action action;
  clock::steady_time observed_at;  // what the decision says to remember
};

TEST(lease_decide, table) {
  const std::vector<decide_case> cases = {
      {"no record: create it", std::nullopt, std::nullopt, t0, lease_action::create, t0},
      {"record deleted since last seen: create it again", std::nullopt,
       lease_observation{"node-b", "r1", t0 - 5s}, t0, lease_action::create, t0},
      {"released (no holder): take it at once", held_by("", "r2"),
       lease_observation{"node-b", "r1", t0 - 1s}, t0, lease_action::take, t0},
      {"released, first seen: take it at once", held_by("", "r1"), std::nullopt, t0,
       lease_action::take, t0},
      {"another holder, first seen: wait, counting from now", held_by("node-b", "r1"), std::nullopt,
       t0, lease_action::wait, t0},
      {"another holder, unchanged for less than its duration: wait", held_by("node-b", "r1"),
       lease_observation{"node-b", "r1", t0 - 9s}, t0, lease_action::wait, t0 - 9s},
      {"another holder, unchanged for exactly its duration: wait", held_by("node-b", "r1"),
       lease_observation{"node-b", "r1", t0 - 10s}, t0, lease_action::wait, t0 - 10s},
      {"another holder, unchanged for longer than its duration: take (expired)",
       held_by("node-b", "r1"), lease_observation{"node-b", "r1", t0 - 10s - 1ms}, t0,
       lease_action::take, t0 - 10s - 1ms},
      {"another holder renewed since last seen: wait, counting again from now",
       held_by("node-b", "r2"), lease_observation{"node-b", "r1", t0 - 1h}, t0, lease_action::wait,
       t0},
      {"the holder changed since last seen: wait, counting again from now", held_by("node-c", "r1"),
       lease_observation{"node-b", "r1", t0 - 1h}, t0, lease_action::wait, t0},
      {"its duration, not ours, decides: a 1 h lease unchanged for 30 s is not expired",
       held_by("node-b", "r1", 1h), lease_observation{"node-b", "r1", t0 - 30s}, t0,
       lease_action::wait, t0 - 30s},
      {"no duration on the record: ours (15 s) decides, not expired",
       held_by("node-b", "r1", std::nullopt), lease_observation{"node-b", "r1", t0 - 14s}, t0,
       lease_action::wait, t0 - 14s},
      {"no duration on the record: ours (15 s) decides, expired",
       held_by("node-b", "r1", std::nullopt), lease_observation{"node-b", "r1", t0 - 16s}, t0,
       lease_action::take, t0 - 16s},
      {"our own record: renew", held_by(std::string(me), "r1"),
       lease_observation{std::string(me), "r1", t0 - 2s}, t0, lease_action::renew, t0 - 2s},
      {"our own record, first seen (after a restart): renew", held_by(std::string(me), "r1"),
       std::nullopt, t0, lease_action::renew, t0},
      {"our own record, last written long past the renew deadline and the duration: renew "
       "(the versioned write fails if anyone else wrote)",
       held_by(std::string(me), "r1"), lease_observation{std::string(me), "r1", t0 - 1h}, t0,
       lease_action::renew, t0 - 1h},
      // Clock skew: the renewed stamp comes from the holder's wall clock and is
      // never compared with ours, only with what we saw before.
      {"skew: a stamp years in the past on a first sight does not make it expired",
       held_by("node-b", "2001-01-01T00:00:00.000Z"), std::nullopt, t0, lease_action::wait, t0},
      {"skew: a stamp years in the future does not keep it alive once unchanged past the "
       "duration",
       held_by("node-b", "2099-01-01T00:00:00.000Z"),
       lease_observation{"node-b", "2099-01-01T00:00:00.000Z", t0 - 11s}, t0, lease_action::take,
       t0 - 11s},
      {"skew: a stamp that went backwards is still a renewal",
       held_by("node-b", "2024-01-01T00:00:00.000Z"),
       lease_observation{"node-b", "2024-06-01T00:00:00.000Z", t0 - 11s}, t0, lease_action::wait,
       t0},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto d = decide({c.record, me, c.last, c.now, 15s});
    EXPECT_EQ(d.action, c.action);
    EXPECT_EQ(d.observation.observed_at, c.observed_at);
    if (c.record) {
      EXPECT_EQ(d.observation.holder, c.record->holder);
      EXPECT_EQ(d.observation.renewed, c.record->renewed);
    }
  }
}

TEST(lease_decide, waiting_out_a_dead_holder_takes_its_duration_from_the_first_sight) {
  // A contender polls every second; the holder died just before it started.
  std::optional<lease_observation> last;
  const auto record = held_by("node-b", "r1", 3s);
  std::vector<lease_action> actions;
  for (int second = 0; second <= 4; ++second) {
    const auto d = decide({record, me, last, t0 + std::chrono::seconds{second}, 15s});
    last = d.observation;
    actions.push_back(d.action);
  }
  EXPECT_THAT(actions,
              testing::ElementsAre(lease_action::wait, lease_action::wait, lease_action::wait,
                                   lease_action::wait, lease_action::take));
}

struct leading_case {
  std::string name;
  clock::duration since_renewal;
  bool leading;
};

TEST(lease_still_leading, table) {
  const std::vector<leading_case> cases = {
      {"just renewed", 0s, true},
      {"within the renew deadline", 9999ms, true},
      {"renew deadline passed: stop acting", 10s, false},
      {"long past", 1h, false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(still_leading(t0, t0 + c.since_renewal, 10s), c.leading);
  }
}

TEST(lease_labels, round_trip_and_other_labels_kept) {
  const engine::labels current{{"lifeboat.other", "x"}, {std::string(lease_holder_label), "old"}};
  const auto labels = lease_labels(current, held_by("node-b", "r9", 1500ms));
  EXPECT_EQ(labels, (engine::labels{{"lifeboat.other", "x"},
                                    {"lifeboat.lease.holder", "node-b"},
                                    {"lifeboat.lease.renewed", "r9"},
                                    {"lifeboat.lease.duration-ms", "1500"}}));
  EXPECT_EQ(lease_record_from_labels(labels), held_by("node-b", "r9", 1500ms));
}

TEST(lease_labels, a_missing_or_malformed_duration_reads_as_none) {
  for (const std::string bad : {"", "abc", "-5", "10s", "1.5"}) {
    SCOPED_TRACE(bad);
    const auto record = lease_record_from_labels({{"lifeboat.lease.duration-ms", bad}});
    EXPECT_EQ(record.duration, std::nullopt);
  }
  EXPECT_EQ(lease_record_from_labels({}), lease_record{});
}

// ---------------------------------------------------------------------------
// The I/O class against a scripted engine and the fake clock.

using engine::test::scripted_engine;

std::string status_line(int status) {
  static const std::map<int, std::string> reasons = {{200, "OK"},
                                                     {201, "Created"},
                                                     {404, "Not Found"},
                                                     {409, "Conflict"},
                                                     {500, "Internal Server Error"}};
  return "HTTP/1.1 " + std::to_string(status) + " " + reasons.at(status) + "\r\n";
}

std::string respond(int status, const std::string& body = "{}") {
  return status_line(status) + "Api-Version: 1.41\r\nContent-Type: application/json\r\n" +
         "Content-Length: " + std::to_string(body.size() + 1) + "\r\n\r\n" + body + "\n";
}

std::string error_body(const std::string& message) { return R"({"message":")" + message + R"("})"; }

std::string lease_config(const std::string& holder, int version) {
  return respond(200, R"({"ID":"lease1","Version":{"Index":)" + std::to_string(version) +
                          R"(},"Spec":{"Name":"lifeboat-lease","Data":"eAo=","Labels":{)" +
                          R"("lifeboat.lease.holder":")" + holder +
                          R"(","lifeboat.lease.renewed":"r)" + std::to_string(version) +
                          R"(","lifeboat.lease.duration-ms":"15000"}}})");
}

const std::string not_found = respond(404, error_body("config lifeboat-lease not found"));

class lease_io : public testing::Test {
 protected:
  lease_options options() {
    lease_options o;
    o.identity = std::string(me);
    o.duration = 15s;
    o.renew_deadline = 10s;
    o.on_change = [this](bool leading) { changes_.push_back(leading); };
    return o;
  }

  engine::client client() { return engine::client(engine_.connect(), "1.41", 5s); }

  fake_clock time_;
  scripted_engine engine_;
  std::vector<bool> changes_;
};

TEST_F(lease_io, creates_a_missing_lease_and_leads_until_the_renew_deadline) {
  engine_.respond(not_found).respond(respond(201, R"({"ID":"lease1"})"));
  const auto c = client();
  leader_lease lease(c, options(), time_);

  const auto round = lease.try_acquire_or_renew();
  EXPECT_EQ(round.action, lease_action::create);
  EXPECT_FALSE(round.error) << round.error->describe();
  EXPECT_TRUE(round.leading);
  EXPECT_TRUE(lease.is_leader());
  EXPECT_THAT(engine_.written(1), HasSubstr("POST /v1.41/configs/create"));
  EXPECT_THAT(engine_.written(1), HasSubstr(R"("lifeboat.lease.holder":"node-a")"));
  EXPECT_THAT(engine_.written(1), HasSubstr(R"("lifeboat.lease.duration-ms":"15000")"));
  EXPECT_THAT(engine_.written(1),
              HasSubstr(R"("lifeboat.lease.renewed":"2023-11-14T22:13:20.000Z")"));

  // No renewal: leadership ends at the deadline by itself, with no engine call.
  time_.advance(10s - 1ns);
  EXPECT_TRUE(lease.is_leader());
  time_.advance(1ns);
  EXPECT_FALSE(lease.is_leader());
  EXPECT_EQ(engine_.connections(), 2U);
  EXPECT_EQ(changes_, (std::vector<bool>{true}));

  // The next round reports the lapse before it renews (the record is still ours).
  engine_.respond(lease_config("node-a", 7)).respond(respond(200));
  const auto again = lease.try_acquire_or_renew();
  EXPECT_EQ(again.action, lease_action::renew);
  EXPECT_TRUE(again.leading);
  EXPECT_THAT(engine_.written(3), HasSubstr("/v1.41/configs/lease1/update?version=7"));
  EXPECT_EQ(changes_, (std::vector<bool>{true, false, true}));
}

TEST_F(lease_io, another_holder_makes_it_wait_and_write_nothing) {
  engine_.respond(lease_config("node-b", 3));
  const auto c = client();
  leader_lease lease(c, options(), time_);
  const auto round = lease.try_acquire_or_renew();
  EXPECT_EQ(round.action, lease_action::wait);
  EXPECT_FALSE(round.leading);
  EXPECT_FALSE(round.error);
  EXPECT_EQ(engine_.connections(), 1U);
  EXPECT_TRUE(changes_.empty());
}

TEST_F(lease_io, losing_the_race_to_create_rereads_and_waits) {
  engine_.respond(not_found)
      .respond(respond(409, error_body("config lifeboat-lease already exists")))
      .respond(lease_config("node-b", 1));
  const auto c = client();
  leader_lease lease(c, options(), time_);
  const auto round = lease.try_acquire_or_renew();
  EXPECT_EQ(round.action, lease_action::wait);
  EXPECT_FALSE(round.leading);
  EXPECT_FALSE(round.error);
  EXPECT_EQ(engine_.unused_scripts(), 0U);
}

TEST_F(lease_io, seeing_another_holder_ends_leadership_at_once) {
  engine_.respond(not_found).respond(respond(201, R"({"ID":"lease1"})"));
  const auto c = client();
  leader_lease lease(c, options(), time_);
  ASSERT_TRUE(lease.try_acquire_or_renew().leading);

  time_.advance(1s);
  engine_.respond(lease_config("node-b", 9));
  const auto round = lease.try_acquire_or_renew();
  EXPECT_EQ(round.action, lease_action::wait);
  EXPECT_FALSE(round.leading);
  EXPECT_FALSE(lease.is_leader());
  EXPECT_EQ(changes_, (std::vector<bool>{true, false}));
}

TEST_F(lease_io, a_refused_renewal_loses_the_round_but_leads_until_the_deadline) {
  engine_.respond(not_found).respond(respond(201, R"({"ID":"lease1"})"));
  const auto c = client();
  leader_lease lease(c, options(), time_);
  ASSERT_TRUE(lease.try_acquire_or_renew().leading);

  time_.advance(4s);
  engine_.respond(lease_config("node-a", 5))
      .respond(respond(500, error_body("rpc error: code = Unknown desc = update out of sequence")));
  const auto round = lease.try_acquire_or_renew();
  EXPECT_EQ(round.action, lease_action::renew);
  ASSERT_TRUE(round.error);
  EXPECT_TRUE(round.error->is(engine::errc::conflict));
  // Nobody can have taken it yet: they wait the whole duration after seeing
  // our last renewal, which started 4 s ago.
  EXPECT_TRUE(round.leading);
  time_.advance(6s);
  EXPECT_FALSE(lease.is_leader());
}

TEST_F(lease_io, an_unreachable_engine_is_an_error_and_no_leadership) {
  const engine::client c(engine::test::refusing_connector(), "1.41", 5s);
  leader_lease lease(c, options(), time_);
  const auto round = lease.try_acquire_or_renew();
  ASSERT_TRUE(round.error);
  EXPECT_TRUE(round.error->is(engine::errc::unavailable));
  EXPECT_FALSE(round.leading);
  EXPECT_FALSE(lease.is_leader());
}

TEST_F(lease_io, release_stops_leading_and_clears_the_holder) {
  engine_.respond(not_found).respond(respond(201, R"({"ID":"lease1"})"));
  const auto c = client();
  leader_lease lease(c, options(), time_);
  ASSERT_TRUE(lease.try_acquire_or_renew().leading);

  engine_.respond(lease_config("node-a", 2)).respond(respond(200));
  const auto released = lease.release();
  EXPECT_TRUE(released) << released.error().describe();
  EXPECT_FALSE(lease.is_leader());
  EXPECT_THAT(engine_.written(3), HasSubstr("/v1.41/configs/lease1/update?version=2"));
  EXPECT_THAT(engine_.written(3), HasSubstr(R"("lifeboat.lease.holder":"")"));
  EXPECT_EQ(changes_, (std::vector<bool>{true, false}));
}

TEST_F(lease_io, release_leaves_a_lease_held_by_another_alone) {
  engine_.respond(lease_config("node-b", 2));
  const auto c = client();
  leader_lease lease(c, options(), time_);
  EXPECT_TRUE(lease.release());
  EXPECT_EQ(engine_.connections(), 1U);
  EXPECT_THAT(engine_.written(0), Not(HasSubstr("update")));
}

TEST_F(lease_io, configurations_that_cannot_work_are_refused) {
  const auto c = client();
  auto with = [&](auto change) {
    auto o = options();
    change(o);
    return o;
  };
  EXPECT_THROW(leader_lease(c, with([](lease_options& o) { o.identity.clear(); }), time_),
               std::invalid_argument);
  EXPECT_THROW(leader_lease(c, with([](lease_options& o) { o.name.clear(); }), time_),
               std::invalid_argument);
  EXPECT_THROW(
      leader_lease(c, with([](lease_options& o) { o.renew_deadline = o.duration; }), time_),
      std::invalid_argument);
  EXPECT_THROW(leader_lease(c, with([](lease_options& o) { o.duration = 0s; }), time_),
               std::invalid_argument);
  EXPECT_NO_THROW(leader_lease(c, options(), time_));
}

}  // namespace
}  // namespace lifeboat::runtime
