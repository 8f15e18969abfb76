// The leader lease against the real local swarm: two contenders, each with its
// own identity, over a config of a name unique to the test.
#include "controller/runtime/lease.hpp"

#include "tests/e2e/engine_fixture.hpp"

#include <atomic>
#include <chrono>
#include <latch>
#include <thread>

namespace lifeboat::e2e {
namespace {

using namespace std::chrono_literals;
using runtime::leader_lease;
using runtime::lease_action;
using runtime::lease_options;
using steady = std::chrono::steady_clock;

class lease_e2e : public engine_test {
 protected:
  void SetUp() override {
    engine_test::SetUp();
    name_ = unique("lease");
    on_teardown([this] { (void)engine().remove_config(name_); });
  }

  lease_options options(const std::string& identity, std::chrono::milliseconds duration = 1s,
                        std::chrono::milliseconds renew_deadline = 600ms) {
    lease_options o;
    o.name = name_;
    o.identity = identity;
    o.duration = duration;
    o.renew_deadline = renew_deadline;
    return o;
  }

  std::string holder() {
    auto c = engine().inspect_config(name_);
    if (!c) {
      return "<" + c.error().describe() + ">";
    }
    return runtime::lease_record_from_labels(c->config_labels).holder;
  }

  // Runs one round of each contender at the same instant, from two threads.
  void race(leader_lease& a, leader_lease& b) {
    std::latch start(2);
    auto round = [&](leader_lease& l) {
      start.arrive_and_wait();
      const auto r = l.try_acquire_or_renew();
      // Losing the race is a conflict or a wait, never another kind of failure.
      EXPECT_TRUE(!r.error || r.error->is(engine::errc::conflict)) << r.error->describe();
    };
    std::thread ta([&] { round(a); });
    std::thread tb([&] { round(b); });
    ta.join();
    tb.join();
  }

  runtime::real_clock clock_;
  std::string name_;
};

TEST_F(lease_e2e, of_two_contenders_racing_for_a_missing_lease_exactly_one_leads) {
  leader_lease a(engine(), options("node-a"), clock_);
  leader_lease b(engine(), options("node-b"), clock_);
  race(a, b);
  ASSERT_NE(a.is_leader(), b.is_leader());
  const std::string winner = a.is_leader() ? "node-a" : "node-b";
  EXPECT_EQ(holder(), winner);
}

TEST_F(lease_e2e, the_leader_renews_and_keeps_the_lease_past_its_duration) {
  leader_lease a(engine(), options("node-a"), clock_);
  leader_lease b(engine(), options("node-b"), clock_);
  ASSERT_TRUE(a.try_acquire_or_renew().leading);

  const auto start = steady::now();
  int renewals = 0;
  // Rounds about every 100 ms for three lease durations.
  eventually(
      [&] {
        const auto ra = a.try_acquire_or_renew();
        EXPECT_EQ(ra.action, lease_action::renew);
        EXPECT_FALSE(ra.error) << ra.error->describe();
        renewals += ra.leading ? 1 : 0;
        const auto rb = b.try_acquire_or_renew();
        EXPECT_EQ(rb.action, lease_action::wait);
        EXPECT_FALSE(rb.leading);
        return steady::now() - start > 3s;
      },
      10s);
  EXPECT_GE(renewals, 10);
  EXPECT_TRUE(a.is_leader());
  EXPECT_FALSE(b.is_leader());
  EXPECT_EQ(holder(), "node-a");
}

TEST_F(lease_e2e, when_the_leader_stops_renewing_the_other_takes_over_after_the_duration) {
  std::vector<bool> b_changes;
  auto b_options = options("node-b");
  b_options.on_change = [&](bool leading) { b_changes.push_back(leading); };
  leader_lease a(engine(), options("node-a"), clock_);
  leader_lease b(engine(), b_options, clock_);

  const auto last_renewal_started = steady::now();
  ASSERT_TRUE(a.try_acquire_or_renew().leading);
  // "node-a" dies: it is never called again.
  bool a_was_leader_alongside_b = false;
  const bool took_over = eventually(
      [&] {
        const bool b_leads = b.try_acquire_or_renew().leading;
        a_was_leader_alongside_b = a_was_leader_alongside_b || (b_leads && a.is_leader());
        return b_leads;
      },
      10s);
  const auto took_over_after = steady::now() - last_renewal_started;
  ASSERT_TRUE(took_over);
  EXPECT_GE(took_over_after, 1s);  // not before the lease could have expired
  EXPECT_LT(took_over_after, 5s);
  EXPECT_FALSE(a_was_leader_alongside_b);
  EXPECT_FALSE(a.is_leader());  // its renew deadline (600 ms) passed first
  EXPECT_EQ(holder(), "node-b");
  EXPECT_EQ(b_changes, (std::vector<bool>{true}));
}

TEST_F(lease_e2e, a_write_with_a_stale_version_is_refused) {
  leader_lease a(engine(), options("node-a"), clock_);
  ASSERT_TRUE(a.try_acquire_or_renew().leading);
  auto before = engine().inspect_config(name_);
  ASSERT_TRUE(before) << before.error().describe();

  ASSERT_TRUE(a.try_acquire_or_renew().leading);  // moves the version on
  auto labels = before->config_labels;
  labels[std::string(runtime::lease_holder_label)] = "intruder";
  const auto stale = engine().update_config_labels(*before, labels);
  ASSERT_FALSE(stale);
  EXPECT_TRUE(stale.error().is(engine::errc::conflict)) << stale.error().describe();
  EXPECT_EQ(holder(), "node-a");
  EXPECT_TRUE(a.is_leader());
}

TEST_F(lease_e2e, two_contenders_taking_a_released_lease_at_once_cannot_both_win) {
  leader_lease a(engine(), options("node-a"), clock_);
  leader_lease b(engine(), options("node-b"), clock_);
  leader_lease c(engine(), options("node-c"), clock_);
  ASSERT_TRUE(c.try_acquire_or_renew().leading);
  ASSERT_TRUE(c.release());
  // Both read the same released record and version; only one write can land.
  race(a, b);
  ASSERT_NE(a.is_leader(), b.is_leader());
  EXPECT_EQ(holder(), a.is_leader() ? "node-a" : "node-b");
}

TEST_F(lease_e2e, a_clean_release_lets_the_other_take_over_at_once) {
  // A long lease: taking over by expiry would take a minute.
  leader_lease a(engine(), options("node-a", 60s, 40s), clock_);
  leader_lease b(engine(), options("node-b", 60s, 40s), clock_);
  ASSERT_TRUE(a.try_acquire_or_renew().leading);
  EXPECT_EQ(b.try_acquire_or_renew().action, lease_action::wait);

  const auto released = a.release();
  ASSERT_TRUE(released) << released.error().describe();
  EXPECT_FALSE(a.is_leader());
  EXPECT_EQ(holder(), "");

  const auto round = b.try_acquire_or_renew();
  EXPECT_EQ(round.action, lease_action::take);
  EXPECT_TRUE(round.leading);
  EXPECT_EQ(holder(), "node-b");
  // And the one that released now waits like any other contender.
  EXPECT_EQ(a.try_acquire_or_renew().action, lease_action::wait);
  EXPECT_FALSE(a.is_leader());
}

}  // namespace
}  // namespace lifeboat::e2e
