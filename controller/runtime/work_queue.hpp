#pragma once

#include "controller/runtime/clock.hpp"

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>

// The controller's work queue, with the semantics of client-go's rate-limited
// delaying queue: events only name a key; workers take keys, reconcile from
// the current state, and hand the key back.
namespace lifeboat::runtime {

/// Per-key exponential backoff for add_rate_limited().
struct backoff_options {
  std::chrono::milliseconds base{5};
  std::chrono::milliseconds max{std::chrono::minutes{5}};
};

/// The delay before retry number `failures + 1` of a key that failed
/// `failures` times in a row: base * 2^failures, never more than max (also
/// when the doubling would overflow).
clock::duration exponential_backoff(std::size_t failures, const backoff_options& options);

/// A thread-safe queue of keys.
///
/// - A key is queued at most once however often it is added before a worker
///   takes it (add() deduplicates).
/// - A key handed to a worker by get() is not handed out again until that
///   worker calls done(key). Added meanwhile, it is queued again by done().
/// - add_after() delays a key; add_rate_limited() delays it by the key's own
///   exponential backoff, which forget() resets.
///
/// Every member may be called from any thread. A worker that receives a key
/// from get() or try_get() must call done() with it exactly once.
///
/// Delays are measured with the injected clock. With fake_clock, a get()
/// blocked on a delayed key wakes when the clock is advanced past its time;
/// single-threaded tests can instead use try_get() and next_ready_time().
class work_queue {
 public:
  using key = std::string;

  /// `time` must outlive the queue.
  explicit work_queue(const clock& time, backoff_options backoff = {});
  ~work_queue();

  work_queue(const work_queue&) = delete;
  work_queue& operator=(const work_queue&) = delete;

  /// Queues `k` unless it is queued already; ignored after shutdown().
  void add(const key& k);

  /// Queues `k` once `delay` has passed (at once when it is not positive).
  /// A key already waiting keeps the earlier of its two times. Ignored after
  /// shutdown().
  void add_after(const key& k, clock::duration delay);

  /// add_after() with the key's next backoff delay, and counts a requeue.
  void add_rate_limited(const key& k);

  /// Resets the backoff of `k` (after it was processed successfully). Does not
  /// take `k` out of the queue or out of the delayed keys.
  void forget(const key& k);

  /// How many times add_rate_limited() was called for `k` since the last forget().
  std::size_t num_requeues(const key& k) const;

  /// Blocks until a key is ready, and returns it marked as being processed.
  /// Returns nullopt once shutdown() has been called, whatever is still queued.
  std::optional<key> get();

  /// Like get(), but returns nullopt at once when no key is ready now.
  std::optional<key> try_get();

  /// Ends the processing of `k` (which this worker received from get()),
  /// queuing it again if it was added meanwhile.
  void done(const key& k);

  /// The earliest time at which a delayed key becomes ready; nullopt when no
  /// key is delayed. Keys ready now are not reported here: try_get() them.
  std::optional<clock::steady_time> next_ready_time() const;

  /// Keys ready to be handed out (the `lifeboat_workqueue_depth` metric); keys
  /// being processed and keys whose delay has not passed are not counted.
  std::size_t len() const;

  /// Wakes every get(), which then returns nullopt; later adds are ignored.
  /// Keys still queued are dropped: the controller is level-triggered, and the
  /// next start re-lists everything.
  void shutdown();
  bool shutting_down() const;

 private:
  void add_locked(const key& k);
  void promote_due_locked(clock::steady_time now);
  std::optional<key> pop_locked();

  const clock& clock_;
  const backoff_options backoff_;

  mutable std::mutex mutex_;
  std::condition_variable ready_;
  bool shutting_down_ = false;
  std::deque<key> queue_;               // ready keys, in order, each at most once
  std::unordered_set<key> dirty_;       // keys to process: queued, or added while processing
  std::unordered_set<key> processing_;  // keys handed out and not yet done
  std::set<std::pair<clock::steady_time, key>> waiting_;  // delayed keys by ready time
  std::unordered_map<key, clock::steady_time> ready_at_;  // key -> its time in waiting_
  std::unordered_map<key, std::size_t> failures_;

  // Last member: cancelled first on destruction, before the mutex and the
  // condition variable that its callback uses are gone.
  clock::subscription advanced_;
};

}  // namespace lifeboat::runtime
