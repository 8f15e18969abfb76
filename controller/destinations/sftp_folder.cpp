#include "controller/destinations/sftp_folder.hpp"

#include "controller/destinations/transfer.hpp"

// Only for libcurl's error codes: which failures are the host key, the
// login, a missing file or a failed rename.
#include <curl/curl.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fstream>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

namespace lifeboat::destinations {

namespace {

using archive::errc;
using detail::request;
using detail::response;

constexpr std::string_view partial_suffix = ".partial";
constexpr std::string_view checksum_suffix = ".sha256";

// Tries of a whole request that failed in a way worth retrying (the
// connection refused, reset or timed out), with a pause doubling from
// `first_pause`.
constexpr int attempts = 3;
constexpr std::chrono::milliseconds first_pause{500};

bool is_plain_name(const std::string& name) {
  return !name.empty() && name.find('/') == std::string::npos;
}

// An argument of a quote command ("rename a b"), in double quotes: libcurl
// reads `\"` and `\\` inside them.
std::string quoted(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
    }
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

// The time of an "ls -l" line, "Dec  2 13:27" (this year, or last year when
// that would be more than a day ahead of `now`) or "Dec  2  2025", as UTC.
std::optional<std::chrono::system_clock::time_point> listing_time(
    const std::string& month, const std::string& day, const std::string& time_or_year,
    std::chrono::system_clock::time_point now) {
  static constexpr std::string_view months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::tm tm{};
  tm.tm_mon = -1;
  for (int i = 0; i < 12; ++i) {
    if (month == months[i]) {
      tm.tm_mon = i;
    }
  }
  if (tm.tm_mon < 0) {
    return std::nullopt;
  }
  tm.tm_mday = std::stoi(day);
  const auto colon = time_or_year.find(':');
  if (colon == std::string::npos) {
    tm.tm_year = std::stoi(time_or_year) - 1900;
    return std::chrono::system_clock::from_time_t(::timegm(&tm));
  }
  tm.tm_hour = std::stoi(time_or_year.substr(0, colon));
  tm.tm_min = std::stoi(time_or_year.substr(colon + 1));
  const std::time_t now_t = std::chrono::system_clock::to_time_t(now);
  std::tm now_tm{};
  ::gmtime_r(&now_t, &now_tm);
  tm.tm_year = now_tm.tm_year;
  auto t = std::chrono::system_clock::from_time_t(::timegm(&tm));
  if (t > now + std::chrono::hours(24)) {
    --tm.tm_year;
    t = std::chrono::system_clock::from_time_t(::timegm(&tm));
  }
  return t;
}

}  // namespace

struct sftp_folder::impl {
  api::sftp_destination spec;
  std::string what;      // "sftp backup@host:22/srv/backups"
  std::string base_url;  // "sftp://host:22"
  std::string user_url;  // "sftp://backup@host:22": where archives are, for people

  mutable std::mutex options_mutex;
  mutable std::optional<detail::transfer_options> options;

  explicit impl(api::sftp_destination s) : spec(std::move(s)) {
    const bool ipv6 = spec.host.find(':') != std::string::npos && !spec.host.starts_with('[');
    const std::string host_port =
        (ipv6 ? "[" + spec.host + "]" : spec.host) + ":" + std::to_string(spec.port);
    what = "sftp " + spec.user + "@" + host_port + spec.path;
    base_url = "sftp://" + host_port;
    user_url = "sftp://" + spec.user + "@" + host_port;
  }

  archive::error failure(errc code, const std::string& message) const {
    return archive::make_error(code, what + ": " + message);
  }

  // The files are read when first needed, so that a schedule can be decoded
  // and planned on a machine without its secrets.
  archive::result<detail::transfer_options> transfer_options() const {
    std::lock_guard lock(options_mutex);
    if (!options) {
      detail::transfer_options o;
      // libssh2 takes an unreadable known_hosts file for an empty one and
      // then refuses every key: say which file instead.
      if (!std::ifstream(spec.known_hosts_file)) {
        return failure(errc::refused, "cannot read knownHostsFile " + spec.known_hosts_file + ": " +
                                          std::strerror(errno));
      }
      o.ssh_known_hosts_file = spec.known_hosts_file;
      if (spec.password_file) {
        auto password = detail::read_secret_file(what, "passwordFile", *spec.password_file);
        if (!password) {
          return password.error();
        }
        o.user_password = spec.user + ":" + *password;
      } else if (!spec.identity_file) {
        return failure(errc::refused, "set identityFile or passwordFile");
      } else {
        if (!std::ifstream(*spec.identity_file)) {
          return failure(errc::refused, "cannot read identityFile " + *spec.identity_file + ": " +
                                            std::strerror(errno));
        }
        o.user_password = spec.user + ":";
        o.ssh_private_key_file = *spec.identity_file;
      }
      options = std::move(o);
    }
    return *options;
  }

  std::string path_of(const std::string& name) const {
    return spec.path == "/" ? "/" + name : spec.path + "/" + name;
  }
  std::string url_of(const std::string& name) const {
    return base_url + detail::uri_encode(path_of(name), true);
  }
  std::string folder_url() const {
    return base_url + detail::uri_encode(spec.path == "/" ? "/" : spec.path + "/", true);
  }

  archive::error failure_of(const std::string& doing, const response& r) const {
    switch (r.curl_code) {
      case CURLE_PEER_FAILED_VERIFICATION:
        // Missing from knownHostsFile or not the key there (curl's message
        // says no more).
        return failure(errc::refused,
                       "host key not accepted (check knownHostsFile) while " + doing);
      case CURLE_LOGIN_DENIED:
        return failure(errc::refused, std::string("login denied (check user and ") +
                                          (spec.password_file ? "passwordFile" : "identityFile") +
                                          ") while " + doing + ": " + r.curl_message);
      case CURLE_REMOTE_DISK_FULL:
        return failure(errc::no_space, doing + ": the server has no space left");
      default:
        return failure(r.unreachable() ? errc::refused : errc::io_error,
                       doing + ": " + r.curl_message);
    }
  }

  // Performs `req`, again after a pause when the connection failed in a way
  // worth retrying; the last answer otherwise (an error for unreadable
  // credential files).
  archive::result<response> perform(const request& req) const {
    auto o = transfer_options();
    if (!o) {
      return o.error();
    }
    auto pause = first_pause;
    for (int attempt = 1;; ++attempt) {
      response r = detail::perform(*o, req);
      if (r.curl_code == 0 || !r.transient_transport_failure() || attempt >= attempts) {
        return r;
      }
      std::this_thread::sleep_for(pause);
      pause *= 2;
    }
  }

  // Runs SFTP commands ("rm ...", "rename ..."), nothing transferred.
  archive::result<response> commands(std::vector<std::string> quote) const {
    request req;
    req.method = "HEAD";  // no body: only the commands
    req.url = folder_url();
    req.post_quote = std::move(quote);
    return perform(req);
  }

  archive::result<void> remove_name(const std::string& name) const {
    auto r = commands({"rm " + quoted(path_of(name))});
    if (!r) {
      return r.error();
    }
    if (r->curl_code == CURLE_QUOTE_ERROR &&
        r->curl_message.find("No such file") != std::string::npos) {
      return {};  // gone already
    }
    if (r->curl_code != 0) {
      return failure_of("removing " + name, *r);
    }
    return {};
  }

  // The regular files of the folder (no folders, no links), from the
  // server's long listing.
  archive::result<std::vector<archive::archive_file>> list_files() const {
    request req;
    req.url = folder_url();
    auto r = perform(req);
    if (!r) {
      return r.error();
    }
    if (r->curl_code == CURLE_REMOTE_FILE_NOT_FOUND) {
      return failure(errc::refused, "the folder does not exist");
    }
    if (r->curl_code != 0) {
      return failure_of("listing the folder", *r);
    }
    // type+mode, links, owner, group, size, month, day, time or year, name.
    static const std::regex line_format(
        R"(^(\S)\S*\s+\d+\s+\S+\s+\S+\s+(\d+)\s+([A-Z][a-z]{2})\s+(\d{1,2})\s+(\d{1,2}:\d{2}|\d{4}) (.+)$)");
    const auto now = std::chrono::system_clock::now();
    std::vector<archive::archive_file> out;
    std::size_t start = 0;
    while (start < r->body.size()) {
      auto end = r->body.find('\n', start);
      if (end == std::string::npos) {
        end = r->body.size();
      }
      std::string line = r->body.substr(start, end - start);
      start = end + 1;
      if (!line.empty() && line.back() == '\r') {
        line.pop_back();
      }
      if (line.empty()) {
        continue;
      }
      std::smatch m;
      if (!std::regex_match(line, m, line_format)) {
        return failure(errc::io_error,
                       "listing the folder: cannot read the server's line \"" + line + "\"");
      }
      if (m[1] != "-") {
        continue;  // a folder, a link, anything but a file
      }
      archive::archive_file f;
      f.name = m[6];
      f.size = std::stoull(m[2]);
      const auto t = listing_time(m[3], m[4], m[5], now);
      if (!t) {
        return failure(errc::io_error,
                       "listing the folder: cannot read the time of \"" + line + "\"");
      }
      f.mtime = *t;
      if (is_plain_name(f.name)) {
        out.push_back(std::move(f));
      }
    }
    return out;
  }
};

namespace {

// A streaming upload to "<name>.partial", hashed on the way; commit writes
// the checksum beside it and, in the same connection, renames the archive.
class sftp_upload final : public upload {
 public:
  sftp_upload(std::shared_ptr<const sftp_folder::impl> folder, std::string name,
              std::unique_ptr<detail::stream> stream)
      : folder_(std::move(folder)), name_(std::move(name)), stream_(std::move(stream)) {}
  sftp_upload(const sftp_upload&) = delete;
  sftp_upload& operator=(const sftp_upload&) = delete;
  ~sftp_upload() override {
    if (!committed_) {
      abandon();
    }
  }

  archive::result<void> write(std::span<const char> bytes) override {
    if (stream_ == nullptr) {
      return folder_->failure(errc::io_error, "writing " + partial() + ": the upload has ended");
    }
    hash_.update(bytes);
    total_ += bytes.size();
    if (!stream_->write(bytes)) {
      return folder_->failure_of("writing " + partial(), stream_->outcome());
    }
    return {};
  }

  archive::result<published_archive> commit() override {
    if (stream_ == nullptr) {
      return folder_->failure(errc::io_error, "writing " + partial() + ": the upload has ended");
    }
    const auto& r = stream_->finish();
    if (r.curl_code != 0) {
      auto e = folder_->failure_of("writing " + partial(), r);
      abandon();
      return e;
    }
    stream_.reset();
    const std::string sha256 = hash_.finish();
    const std::string checksum = sha256 + "  " + name_ + "\n";
    request put;
    put.method = "PUT";
    put.url = folder_->url_of(name_ + std::string(checksum_suffix));
    put.body = std::span<const char>(checksum.data(), checksum.size());
    put.post_quote = {rename_command()};
    auto sent = folder_->perform(put);
    if (!sent) {
      abandon();
      return sent.error();
    }
    if (sent->curl_code == CURLE_QUOTE_ERROR) {
      // The checksum is written; the rename failed. OpenSSH's server renames
      // with SFTP version 3's rule: never over an existing name.
      if (auto replaced = replace_existing(); !replaced) {
        abandon();
        (void)folder_->remove_name(name_ + std::string(checksum_suffix));
        return replaced.error();
      }
    } else if (sent->curl_code != 0) {
      abandon();
      (void)folder_->remove_name(name_ + std::string(checksum_suffix));
      return folder_->failure_of("writing " + name_ + std::string(checksum_suffix), *sent);
    }
    committed_ = true;
    return published_archive{folder_->user_url + detail::uri_encode(folder_->path_of(name_), true),
                             sha256, total_};
  }

  void abandon() override {
    if (abandoned_) {
      return;
    }
    abandoned_ = true;
    stream_.reset();  // closes the connection: the write ends unfinished
    (void)folder_->remove_name(partial());
  }

  std::uint64_t bytes_written() const override { return total_; }

 private:
  std::string partial() const { return name_ + std::string(partial_suffix); }

  std::string rename_command() const {
    return "rename " + quoted(folder_->path_of(partial())) + " " + quoted(folder_->path_of(name_));
  }

  // After a failed rename: an archive already under the name is replaced
  // (as a local folder's rename or WebDAV's MOVE would); an archive already
  // renamed, by an attempt whose answer was lost, is done.
  archive::result<void> replace_existing() const {
    auto files = folder_->list_files();
    if (!files) {
      return files.error();
    }
    const archive::archive_file* partial_file = nullptr;
    const archive::archive_file* final_file = nullptr;
    for (const auto& f : *files) {
      if (f.name == partial()) {
        partial_file = &f;
      } else if (f.name == name_) {
        final_file = &f;
      }
    }
    if (partial_file == nullptr && final_file != nullptr && final_file->size == total_) {
      return {};
    }
    const std::string doing = "renaming " + partial() + " to " + name_;
    if (partial_file == nullptr || final_file == nullptr) {
      return folder_->failure(errc::io_error, doing + ": the server refused");
    }
    auto r = folder_->commands({"rm " + quoted(folder_->path_of(name_)), rename_command()});
    if (!r) {
      return r.error();
    }
    if (r->curl_code != 0) {
      return folder_->failure_of(doing, *r);
    }
    return {};
  }

  std::shared_ptr<const sftp_folder::impl> folder_;
  std::string name_;
  std::unique_ptr<detail::stream> stream_;
  detail::sha256_hasher hash_;
  std::uint64_t total_ = 0;
  bool committed_ = false;
  bool abandoned_ = false;
};

class sftp_download final : public download {
 public:
  sftp_download(std::unique_ptr<detail::stream> stream,
                std::shared_ptr<const sftp_folder::impl> folder, std::string name)
      : stream_(std::move(stream)), folder_(std::move(folder)), name_(std::move(name)) {}

  archive::result<std::size_t> read(std::span<char> into) override {
    const std::size_t n = stream_->read(into);
    if (n > 0) {
      return n;
    }
    const auto& r = stream_->outcome();
    if (r.curl_code == CURLE_REMOTE_FILE_NOT_FOUND) {
      return folder_->failure(errc::io_error, name_ + " does not exist");
    }
    if (r.curl_code != 0) {
      return folder_->failure_of("reading " + name_, r);
    }
    return std::size_t{0};
  }

 private:
  std::unique_ptr<detail::stream> stream_;
  std::shared_ptr<const sftp_folder::impl> folder_;
  std::string name_;
};

}  // namespace

sftp_folder::sftp_folder(api::sftp_destination spec)
    : impl_(std::make_shared<impl>(std::move(spec))) {}

sftp_folder::~sftp_folder() = default;

std::string sftp_folder::describe() const { return impl_->what; }

archive::result<void> sftp_folder::check() const {
  auto listed = impl_->list_files();
  if (!listed) {
    return listed.error();
  }
  return {};
}

archive::result<std::unique_ptr<upload>> sftp_folder::begin(const std::string& file_name) {
  if (!is_plain_name(file_name)) {
    return impl_->failure(errc::invalid_argument, "\"" + file_name + "\" is not a file name");
  }
  auto o = impl_->transfer_options();
  if (!o) {
    return o.error();
  }
  request req;
  req.method = "PUT";
  req.url = impl_->url_of(file_name + std::string(partial_suffix));
  return std::unique_ptr<upload>(
      std::make_unique<sftp_upload>(impl_, file_name, detail::stream::upload(*o, std::move(req))));
}

archive::result<std::vector<archive::archive_file>> sftp_folder::list() const {
  return impl_->list_files();
}

archive::result<void> sftp_folder::remove(const std::string& file_name) {
  if (!is_plain_name(file_name)) {
    return impl_->failure(errc::invalid_argument, "\"" + file_name + "\" is not a file name");
  }
  if (auto removed = impl_->remove_name(file_name); !removed) {
    return removed;
  }
  return impl_->remove_name(file_name + std::string(checksum_suffix));
}

archive::result<std::unique_ptr<download>> sftp_folder::open(const std::string& file_name) const {
  if (!is_plain_name(file_name)) {
    return impl_->failure(errc::invalid_argument, "\"" + file_name + "\" is not a file name");
  }
  auto o = impl_->transfer_options();
  if (!o) {
    return o.error();
  }
  request req;
  req.url = impl_->url_of(file_name);
  return std::unique_ptr<download>(std::make_unique<sftp_download>(
      detail::stream::download(*o, std::move(req)), impl_, file_name));
}

archive::result<std::vector<std::string>> sftp_folder::remove_leftovers(
    const archive::archive_name_pattern& pattern) {
  auto files = impl_->list_files();
  if (!files) {
    return files.error();
  }
  std::set<std::string> names;
  for (const auto& f : *files) {
    names.insert(f.name);
  }
  std::vector<std::string> removed;
  for (const auto& name : names) {
    bool leftover = false;
    if (name.ends_with(partial_suffix)) {
      leftover = pattern.matches(name.substr(0, name.size() - partial_suffix.size()));
    } else if (name.ends_with(checksum_suffix)) {
      const auto archive_name = name.substr(0, name.size() - checksum_suffix.size());
      leftover = pattern.matches(archive_name) && names.count(archive_name) == 0;
    }
    if (leftover) {
      if (auto gone = impl_->remove_name(name); !gone) {
        return gone.error();
      }
      removed.push_back(name);
    }
  }
  return removed;
}

std::string sftp_folder::point_latest(const std::string&) { return {}; }

}  // namespace lifeboat::destinations
