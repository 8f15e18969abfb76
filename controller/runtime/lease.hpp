#pragma once

#include "api/labels.hpp"
#include "controller/engine/client.hpp"
#include "controller/runtime/clock.hpp"

#include <atomic>
#include <chrono>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

// Leader election over a Swarm config's labels, as client-go's leaderelection
// does over a Lease object: every write is a compare-and-swap on the config's
// version index, so of two contenders at most one wins a round, and expiry is
// judged by each observer's own monotonic clock, never by the holder's.
namespace lifeboat::runtime {

inline constexpr std::string_view lease_holder_label = api::label::lease_holder;
/// When the holder last renewed, by the holder's wall clock (RFC 3339, UTC,
/// milliseconds). For people to read, and a value that changes on every renewal
/// so that observers see the lease is alive; nobody compares it with a clock.
inline constexpr std::string_view lease_renewed_label = api::label::lease_renewed;
inline constexpr std::string_view lease_duration_label = api::label::lease_duration_ms;

/// The lease as its config's labels show it.
struct lease_record {
  std::string holder;                                 ///< empty: released, free to take
  std::string renewed;                                ///< opaque: only compared for change
  std::optional<std::chrono::milliseconds> duration;  ///< nullopt: absent or not a number

  bool operator==(const lease_record&) const = default;
};

/// Reads the lease labels (missing ones are empty).
lease_record lease_record_from_labels(const engine::labels& labels);

/// `current` with the lease labels set to `record` (other labels are kept).
engine::labels lease_labels(engine::labels current, const lease_record& record);

/// What an observer remembers of a lease between rounds: the record and, by
/// its own steady clock, when it last saw the holder or the renewal change.
struct lease_observation {
  std::string holder;
  std::string renewed;
  clock::steady_time observed_at{};

  bool operator==(const lease_observation&) const = default;
};

enum class lease_action {
  create,  ///< no lease config: create it holding the lease
  take,    ///< released, or expired in our eyes: write ourselves as holder
  renew,   ///< ours: write a new renewal time
  wait,    ///< held by someone else and not expired: write nothing
};

std::string_view to_string(lease_action action);

struct lease_input {
  /// nullopt when the lease config does not exist.
  std::optional<lease_record> record;
  std::string_view identity;
  /// What this observer remembered after its previous round; nullopt at first.
  std::optional<lease_observation> last;
  clock::steady_time now{};
  /// Used when the record does not say how long it lasts.
  std::chrono::milliseconds default_duration{};
};

struct lease_decision {
  lease_action action = lease_action::wait;
  /// What to remember for the next round (before any write of ours).
  lease_observation observation;
};

/// The whole leader-election policy, without I/O or a clock:
/// - no record: create it;
/// - released (no holder): take it;
/// - our own identity as holder: renew (the versioned write fails if anyone
///   wrote in between, so renewing a record that is still ours is safe however
///   long ago we wrote it);
/// - another holder: take it when the pair (holder, renewed) has not changed
///   for longer than the record's duration by this observer's clock, counted
///   from when this observer first saw that pair; otherwise wait. A pair seen
///   for the first time counts from `now`, so its timestamp, written by another
///   node's clock, never matters.
lease_decision decide(const lease_input& input);

/// Whether a holder whose last successful write started at `renewed_at` may
/// still act at `now`: only until `renew_deadline` has passed. Shorter than the
/// duration others wait, so a holder stops before anyone can take over.
bool still_leading(clock::steady_time renewed_at, clock::steady_time now,
                   std::chrono::milliseconds renew_deadline);

struct lease_options {
  std::string name = "lifeboat-lease";  ///< the config holding the lease
  std::string identity;                 ///< unique per contender (e.g. the task's hostname)
  /// How long others wait, after they last saw the lease change, before taking it.
  std::chrono::milliseconds duration{std::chrono::seconds{15}};
  /// How long the holder may act after the start of its last successful
  /// renewal; must be shorter than `duration`. Call try_acquire_or_renew()
  /// several times within it (client-go: every 2 s for 10 s and 15 s).
  std::chrono::milliseconds renew_deadline{std::chrono::seconds{10}};
  /// Called on each change of is_leader() that this object notices (in
  /// try_acquire_or_renew() and release(), on their thread, with no lock held).
  /// Losing the lease by the renew deadline passing is reported at the start
  /// of the next try_acquire_or_renew(), before it can renew, so a lapse always
  /// shows as false then true; is_leader() turns false at once regardless.
  std::function<void(bool leading)> on_change;
};

/// What one round did.
struct lease_round {
  lease_action action = lease_action::wait;  ///< what was decided (wait too when the read failed)
  bool leading = false;                      ///< is_leader() after the round
  std::optional<engine::error> error;        ///< a failed read or write; conflict = lost the round
};

/// One contender for the lease.
///
/// try_acquire_or_renew() and release() are called from one thread (the
/// elector's loop), never at once; is_leader() from any thread. Swarm offers
/// no fencing token, so whatever acts for the leader checks is_leader() right
/// before each write: that is what makes one that lost the lease stop at once.
class leader_lease {
 public:
  /// Throws std::invalid_argument for an empty identity or name, a
  /// non-positive duration or a renew deadline not shorter than the duration:
  /// a configuration that cannot work must stop the controller from starting.
  /// `engine` and `time` must outlive the lease.
  leader_lease(const engine::client& engine, lease_options options, const clock& time);

  /// One round: reads the lease config, decides (see decide()), and writes
  /// with the version it read. Creating a config someone else created first
  /// (409) re-reads and decides again; any other conflict loses the round.
  /// Seeing another holder ends our leadership at once; a failed write of ours
  /// leaves it to run out at the renew deadline.
  lease_round try_acquire_or_renew();

  /// Stops leading at once, then clears the holder if the lease is still ours,
  /// so another contender takes over without waiting for it to expire.
  /// Returns the engine's error when it could not be cleared (the lease then
  /// expires by itself).
  engine::result<void> release();

  /// True while we hold the lease and the renew deadline since our last
  /// successful write has not passed. Judged at each call by the clock.
  bool is_leader() const;

  const lease_options& options() const { return options_; }

 private:
  void stop_leading();
  void report_change();
  engine::result<std::optional<engine::config>> read() const;

  const engine::client& engine_;
  const lease_options options_;
  const clock& clock_;

  std::optional<lease_observation> last_;
  bool reported_leading_ = false;
  // The steady time (ticks since the clock's epoch) at which our last
  // successful write started; not_leading when we do not hold the lease.
  static constexpr clock::duration::rep not_leading =
      std::numeric_limits<clock::duration::rep>::min();
  std::atomic<clock::duration::rep> renewed_at_{not_leading};
};

}  // namespace lifeboat::runtime
