#include "controller/destinations/webdav_folder.hpp"

#include "api/text.hpp"
#include "controller/destinations/transfer.hpp"

#include <algorithm>
#include <cctype>
#include <initializer_list>
#include <mutex>
#include <set>

namespace lifeboat::destinations {

namespace {

using archive::errc;
using detail::request;
using detail::response;

constexpr std::string_view partial_suffix = ".partial";
constexpr std::string_view checksum_suffix = ".sha256";

bool is_plain_name(const std::string& name) {
  return !name.empty() && name.find('/') == std::string::npos;
}

}  // namespace

struct webdav_folder::impl {
  api::webdav_destination spec;
  std::string what;

  mutable std::mutex options_mutex;
  mutable std::optional<detail::transfer_options> options;

  explicit impl(api::webdav_destination s) : spec(std::move(s)), what("webdav " + spec.url) {}

  archive::error failure(errc code, const std::string& message) const {
    return archive::make_error(code, what + ": " + message);
  }

  archive::result<detail::transfer_options> transfer_options() const {
    std::lock_guard lock(options_mutex);
    if (!options) {
      detail::transfer_options o;
      if (spec.password_file) {
        auto password = detail::read_secret_file(what, "passwordFile", *spec.password_file);
        if (!password) {
          return password.error();
        }
        o.user_password = spec.username.value_or("") + ":" + *password;
      }
      o.ca_file = spec.ca_file;
      o.insecure_skip_verify = spec.insecure_skip_verify;
      options = std::move(o);
    }
    return *options;
  }

  std::string url_of(const std::string& name) const {
    return spec.url + detail::uri_encode(name, false);
  }

  archive::error failure_of(const std::string& doing, const response& r) const {
    if (r.curl_code != 0) {
      return failure(r.unreachable() ? errc::refused : errc::io_error,
                     doing + ": " + r.curl_message);
    }
    if (r.status == 401 || r.status == 403) {
      return failure(errc::refused, "access denied (check username and passwordFile) while " +
                                        doing + ": HTTP " + std::to_string(r.status));
    }
    if (r.status == 507) {
      return failure(errc::no_space, doing + ": the server has no space left (HTTP 507)");
    }
    return failure(errc::io_error, doing + ": HTTP " + std::to_string(r.status));
  }

  // Sends `req`; a 2xx (or one of `acceptable`) is success.
  archive::result<response> send(const request& req, const std::string& doing,
                                 std::initializer_list<long> acceptable = {}) const {
    auto o = transfer_options();
    if (!o) {
      return o.error();
    }
    response r = detail::perform(*o, req);
    const bool accepted = r.curl_code == 0 && ((r.status >= 200 && r.status < 300) ||
                                               std::find(acceptable.begin(), acceptable.end(),
                                                         r.status) != acceptable.end());
    if (!accepted) {
      return failure_of(doing, r);
    }
    return r;
  }

  archive::result<void> remove_name(const std::string& name) const {
    request req;
    req.method = "DELETE";
    req.url = url_of(name);
    if (auto r = send(req, "removing " + name, {404}); !r) {
      return r.error();
    }
    return {};
  }

  archive::result<void> move(const std::string& from, const std::string& to) const {
    request req;
    req.method = "MOVE";
    req.url = url_of(from);
    req.headers = {"Destination: " + url_of(to), "Overwrite: T"};
    if (auto r = send(req, "moving " + from + " to " + to); !r) {
      return r.error();
    }
    return {};
  }

  // The files of the folder (PROPFIND, Depth 1), not its subfolders.
  archive::result<std::vector<archive::archive_file>> list_files(const char* depth) const {
    static constexpr std::string_view body =
        R"(<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop>)"
        R"(<D:resourcetype/><D:getcontentlength/><D:getlastmodified/></D:prop></D:propfind>)";
    request req;
    req.method = "PROPFIND";
    req.url = spec.url;
    req.headers = {std::string("Depth: ") + depth, "Content-Type: application/xml"};
    req.body = std::span<const char>(body.data(), body.size());
    auto r = send(req, "listing the folder");
    if (!r) {
      if (r.error().message.ends_with("HTTP 404")) {
        return failure(errc::refused, "the folder does not exist");
      }
      return r.error();
    }
    const auto doc = detail::parse_xml(r->body);
    if (!doc || doc->name != "multistatus") {
      return failure(errc::io_error, "listing the folder: the answer is not a multistatus");
    }
    std::vector<archive::archive_file> out;
    for (const auto* entry : doc->all("response")) {
      const auto href = api::percent_decode(entry->child_text("href"));
      if (href.empty() || href.ends_with('/')) {
        continue;  // the folder itself, or a subfolder
      }
      archive::archive_file f;
      f.name = href.substr(href.rfind('/') + 1);
      bool collection = false;
      for (const auto* propstat : entry->all("propstat")) {
        const auto* prop = propstat->child("prop");
        if (prop == nullptr || propstat->child_text("status").find(" 200") == std::string::npos) {
          continue;
        }
        if (const auto* type = prop->child("resourcetype"); type && type->child("collection")) {
          collection = true;
        }
        if (const auto* length = prop->child("getcontentlength")) {
          f.size = std::strtoull(length->text.c_str(), nullptr, 10);
        }
        if (const auto t = detail::parse_timestamp(prop->child_text("getlastmodified"))) {
          f.mtime = *t;
        }
      }
      if (!collection && is_plain_name(f.name)) {
        out.push_back(std::move(f));
      }
    }
    return out;
  }
};

namespace {

// A streaming PUT to "<name>.partial", hashed on the way; commit puts the
// checksum beside it and moves the archive to its name.
class webdav_upload final : public upload {
 public:
  webdav_upload(std::shared_ptr<const webdav_folder::impl> folder, std::string name,
                std::unique_ptr<detail::stream> stream)
      : folder_(std::move(folder)), name_(std::move(name)), stream_(std::move(stream)) {}
  webdav_upload(const webdav_upload&) = delete;
  webdav_upload& operator=(const webdav_upload&) = delete;
  ~webdav_upload() override {
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
    if (r.curl_code != 0 || r.status < 200 || r.status >= 300) {
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
    if (auto sent = folder_->send(put, "writing " + name_ + ".sha256"); !sent) {
      abandon();
      return sent.error();
    }
    if (auto moved = folder_->move(partial(), name_); !moved) {
      abandon();
      (void)folder_->remove_name(name_ + std::string(checksum_suffix));
      return moved.error();
    }
    committed_ = true;
    return published_archive{folder_->url_of(name_), sha256, total_};
  }

  void abandon() override {
    if (abandoned_) {
      return;
    }
    abandoned_ = true;
    stream_.reset();  // closes the connection: the PUT ends unfinished
    (void)folder_->remove_name(partial());
  }

  std::uint64_t bytes_written() const override { return total_; }

 private:
  std::string partial() const { return name_ + std::string(partial_suffix); }

  std::shared_ptr<const webdav_folder::impl> folder_;
  std::string name_;
  std::unique_ptr<detail::stream> stream_;
  detail::sha256_hasher hash_;
  std::uint64_t total_ = 0;
  bool committed_ = false;
  bool abandoned_ = false;
};

class webdav_download final : public download {
 public:
  webdav_download(std::unique_ptr<detail::stream> stream,
                  std::shared_ptr<const webdav_folder::impl> folder, std::string name)
      : stream_(std::move(stream)), folder_(std::move(folder)), name_(std::move(name)) {}

  archive::result<std::size_t> read(std::span<char> into) override {
    const std::size_t n = stream_->read(into);
    if (n > 0) {
      return n;
    }
    const auto& r = stream_->outcome();
    if (r.curl_code == 0 && r.status == 404) {
      return folder_->failure(errc::io_error, name_ + " does not exist");
    }
    if (r.curl_code != 0 || r.status < 200 || r.status >= 300) {
      return folder_->failure_of("reading " + name_, r);
    }
    return std::size_t{0};
  }

 private:
  std::unique_ptr<detail::stream> stream_;
  std::shared_ptr<const webdav_folder::impl> folder_;
  std::string name_;
};

}  // namespace

webdav_folder::webdav_folder(api::webdav_destination spec)
    : impl_(std::make_shared<impl>(std::move(spec))) {}

webdav_folder::~webdav_folder() = default;

std::string webdav_folder::describe() const { return impl_->what; }

archive::result<void> webdav_folder::check() const {
  auto listed = impl_->list_files("0");
  if (!listed) {
    return listed.error();
  }
  return {};
}

archive::result<std::unique_ptr<upload>> webdav_folder::begin(const std::string& file_name) {
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
  req.headers = {"Content-Type: application/octet-stream"};
  return std::unique_ptr<upload>(std::make_unique<webdav_upload>(
      impl_, file_name, detail::stream::upload(*o, std::move(req))));
}

archive::result<std::vector<archive::archive_file>> webdav_folder::list() const {
  return impl_->list_files("1");
}

archive::result<void> webdav_folder::remove(const std::string& file_name) {
  if (!is_plain_name(file_name)) {
    return impl_->failure(errc::invalid_argument, "\"" + file_name + "\" is not a file name");
  }
  if (auto removed = impl_->remove_name(file_name); !removed) {
    return removed;
  }
  return impl_->remove_name(file_name + std::string(checksum_suffix));
}

archive::result<std::unique_ptr<download>> webdav_folder::open(const std::string& file_name) const {
  if (!is_plain_name(file_name)) {
    return impl_->failure(errc::invalid_argument, "\"" + file_name + "\" is not a file name");
  }
  auto o = impl_->transfer_options();
  if (!o) {
    return o.error();
  }
  request req;
  req.url = impl_->url_of(file_name);
  return std::unique_ptr<download>(std::make_unique<webdav_download>(
      detail::stream::download(*o, std::move(req)), impl_, file_name));
}

archive::result<std::vector<std::string>> webdav_folder::remove_leftovers(
    const archive::archive_name_pattern& pattern) {
  auto files = impl_->list_files("1");
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

std::string webdav_folder::point_latest(const std::string&) {
  if (impl_->spec.insecure_skip_verify) {
    return impl_->what + ": TLS certificates are not verified (insecureSkipVerify)";
  }
  return {};
}

}  // namespace lifeboat::destinations
