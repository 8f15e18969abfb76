// OpenPGP streams through gpgme. gpgme's operations are blocking calls that
// pull input and push output through data callbacks, so each stream runs its
// operation on a worker thread and talks to it through two bounded queues:
// the caller's write() fills the input queue and drains the output queue into
// the sink, on the caller's thread; the worker's callbacks block while the
// input is empty or the output is full. One mutex and one condition variable
// guard both queues.
#include "controller/crypto/openpgp.hpp"

#include <fmt/format.h>
#include <gpgme.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

extern char** environ;  // NOLINT(readability-redundant-declaration): POSIX, for posix_spawn

namespace lifeboat::crypto {

namespace {

namespace fs = std::filesystem;

/// Bytes each queue holds at most before its writer waits (plus one gpgme buffer).
constexpr std::size_t queue_limit = std::size_t{256} * 1024;

/// The caller wakes for output once this much waits (or the worker ended).
constexpr std::size_t wake_batch = std::size_t{64} * 1024;

std::string gpg_message(gpgme_error_t err) { return gpgme_strerror(err); }

/// gpgme must be initialised once per process before any context is made. gpgme writes
/// to gpg through pipes: a gpg that exits early on bad input must end the operation with
/// an error, not kill the process with SIGPIPE, so SIGPIPE is ignored unless the program
/// installed a handler of its own (lifeboat's commands ignore it already).
result<void> init_gpgme() {
  static const bool ready = [] {
    struct sigaction current {};
    if (sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
      struct sigaction ignore {};
      ignore.sa_handler = SIG_IGN;
      sigaction(SIGPIPE, &ignore, nullptr);
    }
    return gpgme_check_version(nullptr) != nullptr;
  }();
  if (!ready) {
    return make_error(errc::internal, "gpgme: version check failed");
  }
  if (auto err = gpgme_engine_check_version(GPGME_PROTOCOL_OpenPGP); err != 0) {
    return make_error(errc::internal, "gpg is not usable: " + gpg_message(err));
  }
  return {};
}

/// Runs `gpgconf --homedir DIR --kill all` so the agent gpg started for DIR ends with it.
void kill_agent(const fs::path& home) {
  const char* gpgconf = gpgme_get_dirinfo("gpgconf-name");
  if (gpgconf == nullptr) {
    return;
  }
  std::string program = gpgconf;
  std::string homedir_flag = "--homedir";
  std::string dir = home.string();
  std::string kill_flag = "--kill";
  std::string all = "all";
  std::vector<char*> argv{program.data(),   homedir_flag.data(), dir.data(),
                          kill_flag.data(), all.data(),          nullptr};
  pid_t pid = 0;
  if (posix_spawn(&pid, program.c_str(), nullptr, nullptr, argv.data(), environ) != 0) {
    return;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

/// A GNUPGHOME of the stream's own: created 0700, holding only what the stream imports,
/// removed (after its agent is stopped) when the stream ends.
class home_dir {
 public:
  static result<std::unique_ptr<home_dir>> make() {
    std::string pattern = (fs::temp_directory_path() / "lifeboat-gpg-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      return make_error(errc::internal,
                        fmt::format("cannot create a gpg home under {}: {}",
                                    fs::temp_directory_path().string(), std::strerror(errno)));
    }
    auto home = std::unique_ptr<home_dir>(new home_dir(pattern));
    // The agent must accept passphrases from gpgme (loopback) and keep none after use.
    std::ofstream agent_conf(home->path_ / "gpg-agent.conf");
    agent_conf << "allow-loopback-pinentry\ndefault-cache-ttl 0\nmax-cache-ttl 0\n";
    // No key server, no trust database questions: the keys given are the only ones.
    std::ofstream gpg_conf(home->path_ / "gpg.conf");
    gpg_conf << "no-auto-key-retrieve\nno-auto-key-locate\ntrust-model always\n";
    if (!agent_conf || !gpg_conf) {
      return make_error(errc::internal, "cannot write the gpg configuration in " + pattern);
    }
    return home;
  }

  home_dir(const home_dir&) = delete;
  home_dir& operator=(const home_dir&) = delete;
  home_dir(home_dir&&) = delete;
  home_dir& operator=(home_dir&&) = delete;

  ~home_dir() {
    kill_agent(path_);
    std::error_code ec;
    fs::remove_all(path_, ec);
  }

  const fs::path& path() const { return path_; }

 private:
  explicit home_dir(fs::path path) : path_(std::move(path)) {}
  fs::path path_;
};

struct context_deleter {
  void operator()(gpgme_context* ctx) const { gpgme_release(ctx); }
};
using context_ptr = std::unique_ptr<gpgme_context, context_deleter>;

struct data_deleter {
  void operator()(gpgme_data* data) const { gpgme_data_release(data); }
};
using data_ptr = std::unique_ptr<gpgme_data, data_deleter>;

struct key_deleter {
  void operator()(gpgme_key_t key) const { gpgme_key_unref(key); }
};
using key_ptr = std::unique_ptr<_gpgme_key, key_deleter>;

/// Answers gpg's passphrase questions (loopback pinentry) with the one passphrase given.
/// A second question means the first answer was wrong: it then refuses, so gpg fails
/// with "bad passphrase" instead of asking forever.
gpgme_error_t answer_passphrase(void* hook, const char* /*uid_hint*/,
                                const char* /*passphrase_info*/, int prev_was_bad, int fd) {
  const auto* passphrase = static_cast<const std::string*>(hook);
  if (prev_was_bad != 0) {
    return gpgme_error(GPG_ERR_BAD_PASSPHRASE);
  }
  if (passphrase->empty()) {
    return gpgme_error(GPG_ERR_NO_PASSPHRASE);
  }
  const std::string line = *passphrase + "\n";
  if (gpgme_io_writen(fd, line.data(), line.size()) != 0) {
    return gpgme_error_from_errno(errno);
  }
  return 0;
}

/// A home, a context in it with loopback pinentry, binary output, the passphrase hook.
struct session {
  std::unique_ptr<home_dir> home;
  context_ptr ctx;
  std::unique_ptr<std::string> passphrase;  // stable address for the callback
};

result<session> open_session(std::string passphrase) {
  if (auto r = init_gpgme(); !r) {
    return r.error();
  }
  auto home = home_dir::make();
  if (!home) {
    return home.error();
  }
  gpgme_ctx_t raw = nullptr;
  if (auto err = gpgme_new(&raw); err != 0) {
    return make_error(errc::internal, "gpgme_new: " + gpg_message(err));
  }
  session s{std::move(*home), context_ptr(raw),
            std::make_unique<std::string>(std::move(passphrase))};
  const std::string dir = s.home->path().string();
  if (auto err =
          gpgme_ctx_set_engine_info(s.ctx.get(), GPGME_PROTOCOL_OpenPGP, nullptr, dir.c_str());
      err != 0) {
    return make_error(errc::internal, "gpgme: cannot use home " + dir + ": " + gpg_message(err));
  }
  gpgme_set_armor(s.ctx.get(), 0);
  if (auto err = gpgme_set_pinentry_mode(s.ctx.get(), GPGME_PINENTRY_MODE_LOOPBACK); err != 0) {
    return make_error(errc::internal, "gpgme: loopback pinentry: " + gpg_message(err));
  }
  gpgme_set_passphrase_cb(s.ctx.get(), answer_passphrase, s.passphrase.get());
  return s;
}

/// Imports `keys` into the session's home; returns the fingerprints gpg took, each once.
/// invalid_key when it found no key in them.
result<std::vector<std::string>> import_keys(gpgme_ctx_t ctx, const std::string& keys,
                                             std::string_view what) {
  gpgme_data_t raw = nullptr;
  if (auto err = gpgme_data_new_from_mem(&raw, keys.data(), keys.size(), 0); err != 0) {
    return make_error(errc::internal, "gpgme_data_new_from_mem: " + gpg_message(err));
  }
  const data_ptr data(raw);
  if (auto err = gpgme_op_import(ctx, data.get()); err != 0) {
    return make_error(errc::invalid_key,
                      fmt::format("cannot import the {}: {}", what, gpg_message(err)));
  }
  gpgme_import_result_t imported = gpgme_op_import_result(ctx);
  std::vector<std::string> fingerprints;
  for (gpgme_import_status_t s = imported != nullptr ? imported->imports : nullptr; s != nullptr;
       s = s->next) {
    if (s->result == 0 && s->fpr != nullptr &&
        std::find(fingerprints.begin(), fingerprints.end(), s->fpr) == fingerprints.end()) {
      fingerprints.emplace_back(s->fpr);
    }
  }
  if (fingerprints.empty()) {
    return make_error(errc::invalid_key, fmt::format("no OpenPGP key found in the {}", what));
  }
  return fingerprints;
}

/// The queues between the caller and the worker, and the worker's outcome.
class channel {
 public:
  /// gpgme read callback (worker thread): waits for input, 0 at its end.
  static ssize_t read_cb(void* handle, void* buffer, std::size_t size) {
    return static_cast<channel*>(handle)->take_input(static_cast<char*>(buffer), size);
  }
  /// gpgme write callback (worker thread): waits while the output queue is full.
  static ssize_t write_cb(void* handle, const void* buffer, std::size_t size) {
    return static_cast<channel*>(handle)->put_output(static_cast<const char*>(buffer), size);
  }

  /// Worker: its operation returned `err`.
  void worker_done(gpgme_error_t err) {
    const std::lock_guard lock(mutex_);
    done_ = true;
    status_ = err;
    changed_.notify_all();
  }

  /// Caller: queues `bytes` for gpg, passing output on to `sink` while it waits for room.
  /// Returns early with the worker's status when the worker ended.
  result<void> feed(std::span<const char> bytes, const byte_sink& sink) {
    std::unique_lock lock(mutex_);
    while (!bytes.empty()) {
      if (auto r = drain(lock, sink); !r) {
        return r;
      }
      if (done_) {
        return {};  // the worker's status tells what happened; excess input is ignored
      }
      if (pending_input() < queue_limit) {
        compact_input();
        const std::size_t take = std::min(bytes.size(), queue_limit - pending_input());
        input_.append(bytes.data(), take);
        bytes = bytes.subspan(take);
        changed_.notify_all();
        continue;
      }
      // Woken for a batch, not for every 4 KiB gpgme moves: a thread switch per gpgme
      // buffer costs more than the encryption.
      changed_.wait(lock, [&] {
        return done_ || output_.size() >= wake_batch || pending_input() <= queue_limit / 2;
      });
    }
    return drain(lock, sink);
  }

  /// Caller: ends the input and passes all output on until the worker ended.
  result<gpgme_error_t> close(const byte_sink& sink) {
    std::unique_lock lock(mutex_);
    input_ended_ = true;
    changed_.notify_all();
    for (;;) {
      if (auto r = drain(lock, sink); !r) {
        return r.error();
      }
      if (done_ && output_.empty()) {
        return status_;
      }
      changed_.wait(lock, [&] { return done_ || output_.size() >= wake_batch; });
    }
  }

  /// Caller: gives up; the worker's callbacks fail from now on so its operation ends.
  void cancel() {
    const std::lock_guard lock(mutex_);
    cancelled_ = true;
    changed_.notify_all();
  }

  bool worker_finished() {
    const std::lock_guard lock(mutex_);
    return done_;
  }

  gpgme_error_t worker_status() {
    const std::lock_guard lock(mutex_);
    return status_;
  }

 private:
  ssize_t take_input(char* buffer, std::size_t size) {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return cancelled_ || input_ended_ || pending_input() > 0; });
    if (cancelled_) {
      errno = ECANCELED;
      return -1;
    }
    const std::size_t n = std::min(size, input_.size() - input_pos_);
    std::copy_n(input_.data() + input_pos_, n, buffer);
    input_pos_ += n;
    if (pending_input() <= queue_limit / 2) {
      changed_.notify_all();
    }
    return static_cast<ssize_t>(n);
  }

  ssize_t put_output(const char* buffer, std::size_t size) {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return cancelled_ || output_.size() < queue_limit; });
    if (cancelled_) {
      errno = EPIPE;
      return -1;
    }
    output_.append(buffer, size);
    if (output_.size() >= wake_batch) {
      changed_.notify_all();
    }
    return static_cast<ssize_t>(size);
  }

  std::size_t pending_input() const { return input_.size() - input_pos_; }

  /// Drops consumed input so the queue never holds more than queue_limit.
  void compact_input() {
    input_.erase(0, input_pos_);
    input_pos_ = 0;
  }

  /// Hands the queued output to `sink` without holding the lock while the sink runs.
  result<void> drain(std::unique_lock<std::mutex>& lock, const byte_sink& sink) {
    while (!output_.empty()) {
      std::string batch;
      batch.swap(output_);
      changed_.notify_all();
      lock.unlock();
      auto r = sink(std::span<const char>(batch.data(), batch.size()));
      lock.lock();
      if (!r) {
        return r;
      }
    }
    return {};
  }

  std::mutex mutex_;
  std::condition_variable changed_;
  std::string input_;
  std::size_t input_pos_ = 0;
  bool input_ended_ = false;
  std::string output_;
  bool cancelled_ = false;
  bool done_ = false;
  gpgme_error_t status_ = 0;
};

/// An operation running on its own thread between two callback data objects.
class running_op {
 public:
  using operation = std::function<gpgme_error_t(gpgme_ctx_t, gpgme_data_t, gpgme_data_t)>;

  static result<std::unique_ptr<running_op>> start(session s, operation op) {
    auto run = std::unique_ptr<running_op>(new running_op(std::move(s)));
    gpgme_data_t in = nullptr;
    gpgme_data_t out = nullptr;
    if (auto err = gpgme_data_new_from_cbs(&in, &run->input_cbs_, &run->channel_); err != 0) {
      return make_error(errc::internal, "gpgme_data_new_from_cbs: " + gpg_message(err));
    }
    run->in_.reset(in);
    if (auto err = gpgme_data_new_from_cbs(&out, &run->output_cbs_, &run->channel_); err != 0) {
      return make_error(errc::internal, "gpgme_data_new_from_cbs: " + gpg_message(err));
    }
    run->out_.reset(out);
    running_op* self = run.get();
    run->worker_ = std::thread([self, op = std::move(op)] {
      self->channel_.worker_done(op(self->session_.ctx.get(), self->in_.get(), self->out_.get()));
    });
    return run;
  }

  running_op(const running_op&) = delete;
  running_op& operator=(const running_op&) = delete;
  running_op(running_op&&) = delete;
  running_op& operator=(running_op&&) = delete;

  /// Stops the worker if it still runs; the home and its agent go with the session.
  ~running_op() {
    channel_.cancel();
    if (worker_.joinable()) {
      worker_.join();
    }
  }

  channel& io() { return channel_; }
  gpgme_ctx_t ctx() { return session_.ctx.get(); }

  /// Waits for the worker (after close() or cancel()).
  void join() {
    if (worker_.joinable()) {
      worker_.join();
    }
  }

 private:
  explicit running_op(session s) : session_(std::move(s)) {
    input_cbs_.read = &channel::read_cb;
    output_cbs_.write = &channel::write_cb;
  }

  session session_;
  channel channel_;
  gpgme_data_cbs input_cbs_{};
  gpgme_data_cbs output_cbs_{};
  data_ptr in_;
  data_ptr out_;
  std::thread worker_;
};

/// What failed, in the terms of errc. `decrypting` tells a wrong key from a bad one.
error classify(gpgme_error_t err, bool decrypting) {
  const std::string text = gpg_message(err);
  switch (gpgme_err_code(err)) {
    case GPG_ERR_NO_SECKEY:
      return make_error(errc::no_matching_identity,
                        "the message is encrypted to none of the secret keys given");
    case GPG_ERR_BAD_PASSPHRASE:
    case GPG_ERR_NO_PASSPHRASE:
      return make_error(decrypting ? errc::no_matching_identity : errc::invalid_key,
                        "wrong or missing passphrase (" + text + ")");
    case GPG_ERR_NO_DATA:
      return make_error(errc::corrupt, "not an OpenPGP message (" + text + ")");
    case GPG_ERR_TRUNCATED:
    case GPG_ERR_EOF:
      return make_error(errc::truncated, "the OpenPGP message ends early (" + text + ")");
    case GPG_ERR_BAD_DATA:
    case GPG_ERR_DECRYPT_FAILED:
    case GPG_ERR_INV_PACKET:
    case GPG_ERR_CHECKSUM:
    case GPG_ERR_BAD_SIGNATURE:
      return make_error(
          errc::corrupt,
          "the OpenPGP message does not decrypt or fails its integrity check (" + text + ")");
    default:
      return make_error(errc::internal, "gpg: " + text);
  }
}

/// The common part of both streams: write() feeds, finish() closes and checks.
template <class Interface>
class gpg_stream : public Interface {
 public:
  gpg_stream(std::unique_ptr<running_op> op, byte_sink sink, bool decrypting)
      : op_(std::move(op)), sink_(std::move(sink)), decrypting_(decrypting) {}

  result<void> write(std::span<const char> bytes) override {
    if (failed_) {
      return *failed_;
    }
    if (finished_) {
      return make_error(errc::internal, "openpgp: write after finish");
    }
    auto r = op_->io().feed(bytes, sink_);
    if (!r) {
      return fail(r.error());
    }
    if (op_->io().worker_finished()) {
      if (auto e = outcome(op_->io().worker_status())) {
        return fail(*e);
      }
    }
    return {};
  }

  result<void> finish() override {
    if (failed_) {
      return *failed_;
    }
    if (finished_) {
      return make_error(errc::internal, "openpgp: finish called twice");
    }
    finished_ = true;
    auto status = op_->io().close(sink_);
    if (!status) {
      return fail(status.error());
    }
    op_->join();
    if (auto e = outcome(*status)) {
      return fail(*e);
    }
    return {};
  }

 private:
  /// The error for a worker status, none for success, looking into the decrypt result
  /// where gpg reports what its return code does not.
  std::optional<error> outcome(gpgme_error_t status) {
    if (decrypting_) {
      op_->join();
      gpgme_decrypt_result_t d = gpgme_op_decrypt_result(op_->ctx());
      if (status == 0 && d != nullptr && d->unsupported_algorithm != nullptr) {
        return make_error(errc::corrupt,
                          fmt::format("unsupported algorithm {}", d->unsupported_algorithm));
      }
      if (status != 0 && d != nullptr && d->recipients != nullptr &&
          gpgme_err_code(status) == GPG_ERR_DECRYPT_FAILED) {
        bool any_key = false;
        for (gpgme_recipient_t r = d->recipients; r != nullptr; r = r->next) {
          any_key = any_key || gpgme_err_code(r->status) != GPG_ERR_NO_SECKEY;
        }
        if (!any_key) {
          return classify(gpgme_error(GPG_ERR_NO_SECKEY), true);
        }
      }
    }
    if (status == 0) {
      return std::nullopt;
    }
    return classify(status, decrypting_);
  }

  result<void> fail(error e) {
    op_->io().cancel();
    failed_ = e;
    return e;
  }

  std::unique_ptr<running_op> op_;
  byte_sink sink_;
  bool decrypting_;
  bool finished_ = false;
  std::optional<error> failed_;
};

}  // namespace

result<std::unique_ptr<encryptor>> make_openpgp_encryptor(const openpgp_recipients& recipients,
                                                          byte_sink sink) {
  if (recipients.public_keys.empty() && recipients.passphrase.empty()) {
    return make_error(errc::invalid_key, "neither public keys nor a passphrase to encrypt to");
  }
  auto s = open_session(recipients.passphrase);
  if (!s) {
    return s.error();
  }
  // Keys stay owned here until the worker ends: gpgme_op_encrypt reads the array.
  auto keys = std::make_shared<std::vector<key_ptr>>();
  if (!recipients.public_keys.empty()) {
    auto fingerprints = import_keys(s->ctx.get(), recipients.public_keys, "public keys");
    if (!fingerprints) {
      return fingerprints.error();
    }
    for (const auto& fpr : *fingerprints) {
      gpgme_key_t key = nullptr;
      if (gpgme_get_key(s->ctx.get(), fpr.c_str(), &key, 0) == 0 && key != nullptr) {
        key_ptr owned(key);
        if (key->can_encrypt != 0 && key->revoked == 0 && key->expired == 0 && key->disabled == 0) {
          keys->push_back(std::move(owned));
        }
      }
    }
    if (keys->empty()) {
      return make_error(errc::invalid_key,
                        "none of the public keys can encrypt (revoked, expired or sign-only)");
    }
  }
  const bool symmetric = keys->empty();
  auto op = running_op::start(
      std::move(*s), [keys, symmetric](gpgme_ctx_t ctx, gpgme_data_t in, gpgme_data_t out) {
        std::vector<gpgme_key_t> list;
        list.reserve(keys->size() + 1);
        for (const auto& k : *keys) {
          list.push_back(k.get());
        }
        list.push_back(nullptr);
        // Always trust: the operator chose these keys; no compression: the tar is
        // compressed already; no encrypt-to: only the keys given may read it.
        auto flags = static_cast<gpgme_encrypt_flags_t>(
            GPGME_ENCRYPT_ALWAYS_TRUST | GPGME_ENCRYPT_NO_ENCRYPT_TO | GPGME_ENCRYPT_NO_COMPRESS |
            (symmetric ? GPGME_ENCRYPT_SYMMETRIC : 0));
        return gpgme_op_encrypt(ctx, symmetric ? nullptr : list.data(), flags, in, out);
      });
  if (!op) {
    return op.error();
  }
  return std::unique_ptr<encryptor>(
      std::make_unique<gpg_stream<encryptor>>(std::move(*op), std::move(sink), false));
}

result<std::unique_ptr<decryptor>> make_openpgp_decryptor(const openpgp_identities& identities,
                                                          byte_sink sink) {
  auto s = open_session(identities.passphrase);
  if (!s) {
    return s.error();
  }
  if (!identities.secret_keys.empty()) {
    auto fingerprints = import_keys(s->ctx.get(), identities.secret_keys, "secret keys");
    if (!fingerprints) {
      return fingerprints.error();
    }
  }
  auto op =
      running_op::start(std::move(*s), [](gpgme_ctx_t ctx, gpgme_data_t in, gpgme_data_t out) {
        return gpgme_op_decrypt(ctx, in, out);
      });
  if (!op) {
    return op.error();
  }
  return std::unique_ptr<decryptor>(
      std::make_unique<gpg_stream<decryptor>>(std::move(*op), std::move(sink), true));
}

bool looks_like_openpgp(std::span<const char> head) {
  if (head.size() < 2) {
    return false;
  }
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(head[i]); };
  const unsigned char first = byte(0);
  if ((first & 0x80U) == 0) {
    return false;
  }
  unsigned tag = 0;
  std::size_t body = 0;
  if ((first & 0x40U) != 0) {
    // New format: the tag in the low six bits, then a one, two or five byte length.
    tag = first & 0x3fU;
    const unsigned char len = byte(1);
    body = len < 192 ? 2 : (len < 224 ? 3 : (len == 255 ? 6 : 0));
  } else {
    // Old format: the tag in bits 5..2, the length type in bits 1..0.
    tag = (first >> 2U) & 0x0fU;
    const unsigned length_type = first & 0x03U;
    body = length_type == 0 ? 2 : (length_type == 1 ? 3 : (length_type == 2 ? 5 : 0));
  }
  if (body == 0 || head.size() <= body) {
    return false;
  }
  const unsigned char version = byte(body);
  // Tag 1: public-key encrypted session key, version 3; tag 3: symmetric-key encrypted
  // session key, version 4 (5 with AEAD).
  return (tag == 1 && version == 3) || (tag == 3 && (version == 4 || version == 5));
}

}  // namespace lifeboat::crypto
