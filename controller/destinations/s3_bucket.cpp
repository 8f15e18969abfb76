#include "controller/destinations/s3_bucket.hpp"

#include "controller/destinations/transfer.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace lifeboat::destinations {

namespace {

using archive::errc;
using detail::request;
using detail::response;

constexpr std::string_view empty_sha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// A query string, its parameters sorted by name and encoded as Signature
// V4's canonical request has them: libcurl 7.88 signs the query as written.
std::string query(const std::map<std::string, std::string>& params, bool encode_slash = true) {
  std::string out;
  for (const auto& [name, value] : params) {
    out += out.empty() ? "?" : "&";
    out += detail::uri_encode(name, false) + "=" + detail::uri_encode(value, !encode_slash);
  }
  return out;
}

bool is_plain_name(const std::string& name) {
  return !name.empty() && name.find('/') == std::string::npos;
}

}  // namespace

std::string default_part_folder() {
  const char* tmp = std::getenv("TMPDIR");
  return tmp != nullptr && *tmp != '\0' ? std::string(tmp) : std::string("/tmp");
}

struct s3_bucket::impl {
  api::s3_destination spec;
  s3_tuning tuning;
  std::string what;  // "s3 backups/db/"

  mutable std::mutex credentials_mutex;
  mutable std::optional<detail::transfer_options> options;

  impl(api::s3_destination s, const s3_tuning& t) : spec(std::move(s)), tuning(t) {
    what = "s3 " + spec.bucket + "/" + spec.prefix;
  }

  archive::error failure(errc code, const std::string& message) const {
    return archive::make_error(code, what + ": " + message);
  }

  // The credentials are read when first needed, so that a schedule can be
  // decoded and planned on a machine without its secrets.
  archive::result<detail::transfer_options> transfer_options() const {
    std::lock_guard lock(credentials_mutex);
    if (!options) {
      auto key_id = detail::read_secret_file(what, "accessKeyIdFile", spec.access_key_id_file);
      if (!key_id) {
        return key_id.error();
      }
      auto secret =
          detail::read_secret_file(what, "secretAccessKeyFile", spec.secret_access_key_file);
      if (!secret) {
        return secret.error();
      }
      detail::transfer_options o;
      o.user_password = *key_id + ":" + *secret;
      o.aws_sigv4 = "aws:amz:" + spec.region + ":s3";
      o.ca_file = spec.ca_file;
      o.insecure_skip_verify = spec.insecure_skip_verify;
      options = std::move(o);
    }
    return *options;
  }

  std::string key_of(const std::string& name) const { return spec.prefix + name; }

  // The bucket's URL, in path style (<endpoint>/<bucket>) or virtual-hosted
  // style (<scheme>://<bucket>.<host>).
  std::string bucket_url() const {
    const std::string endpoint =
        spec.endpoint.value_or("https://s3." + spec.region + ".amazonaws.com");
    if (spec.path_style) {
      return endpoint + "/" + spec.bucket;
    }
    const auto scheme_end = endpoint.find("://") + 3;
    return endpoint.substr(0, scheme_end) + spec.bucket + "." + endpoint.substr(scheme_end);
  }

  std::string object_url(const std::string& key, const std::string& query_string = {}) const {
    return bucket_url() + "/" + detail::uri_encode(key, true) + query_string;
  }

  // S3's <Error><Code>..</Code><Message>..</Message></Error>, or the status.
  static std::string error_of(const response& r) {
    if (auto doc = detail::parse_xml(r.body); doc && doc->name == "Error") {
      const auto code = doc->child_text("Code");
      const auto message = doc->child_text("Message");
      if (!code.empty()) {
        return code + (message.empty() ? "" : ": " + message);
      }
    }
    return "HTTP " + std::to_string(r.status);
  }

  static bool retryable(const response& r) {
    if (r.curl_code != 0) {
      return r.transient_transport_failure();
    }
    if (r.status == 429 || r.status >= 500) {
      return true;
    }
    // CompleteMultipartUpload may answer 200 with an error document.
    const auto error = error_of(r);
    return error.starts_with("SlowDown") || error.starts_with("InternalError") ||
           error.starts_with("RequestTimeout");
  }

  // The error of a request that did not succeed: what it was doing, and why.
  archive::error failure_of(const std::string& doing, const response& r) const {
    if (r.curl_code != 0) {
      return failure(r.unreachable() ? errc::refused : errc::io_error,
                     doing + ": " + r.curl_message);
    }
    const auto error = error_of(r);
    if (r.status == 401 || r.status == 403) {
      return failure(errc::refused,
                     "access denied (check accessKeyIdFile and secretAccessKeyFile, and the "
                     "key's permissions on the bucket) while " +
                         doing + ": " + error);
    }
    if (error.starts_with("NoSuchBucket")) {
      return failure(errc::refused, "the bucket does not exist: " + error);
    }
    return failure(errc::io_error, doing + ": " + error);
  }

  static bool succeeded(const response& r) {
    if (r.curl_code != 0 || r.status < 200 || r.status >= 300) {
      return false;
    }
    // A 200 whose body is an <Error> (CompleteMultipartUpload does that).
    return r.body.find("<Error>") == std::string::npos;
  }

  // Sends `req`, again after a pause when it failed in a way worth
  // retrying; the last answer otherwise. `doing` names it in errors.
  archive::result<response> send(request req, const std::string& doing,
                                 std::span<const long> acceptable = {}) const {
    auto o = transfer_options();
    if (!o) {
      return o.error();
    }
    // A body from a file comes with its hash, taken as it was written.
    const bool hashed = std::any_of(req.headers.begin(), req.headers.end(), [](const auto& h) {
      return h.starts_with("x-amz-content-sha256:");
    });
    if (!hashed) {
      const auto body_hash = req.body ? detail::sha256_hex(*req.body) : std::string(empty_sha256);
      req.headers.push_back("x-amz-content-sha256: " + body_hash);
    }
    auto pause = tuning.backoff;
    for (int attempt = 1;; ++attempt) {
      response r = detail::perform(*o, req);
      if (succeeded(r) || (r.curl_code == 0 && std::find(acceptable.begin(), acceptable.end(),
                                                         r.status) != acceptable.end())) {
        return r;
      }
      if (!retryable(r) || attempt >= tuning.attempts) {
        return failure_of(doing, r);
      }
      std::this_thread::sleep_for(pause);
      pause *= 2;
    }
  }

  archive::result<void> remove_key(const std::string& key) const {
    request req;
    req.method = "DELETE";
    req.url = object_url(key);
    static constexpr long gone[] = {404};
    auto r = send(std::move(req), "removing " + key, gone);
    if (!r) {
      return r.error();
    }
    return {};
  }

  // The size of the object under `key`; unset when there is none (or the
  // server does not say).
  std::optional<std::uint64_t> size_of(const std::string& key) const {
    request req;
    req.method = "HEAD";
    req.url = object_url(key);
    auto r = send(std::move(req), "looking at " + key);
    if (!r) {
      return std::nullopt;
    }
    const auto length = r->headers.find("content-length");
    if (length == r->headers.end()) {
      return std::nullopt;
    }
    try {
      return std::stoull(length->second);
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }

  archive::result<void> abort_upload(const std::string& key, const std::string& upload_id) const {
    request req;
    req.method = "DELETE";
    req.url = object_url(key, query({{"uploadId", upload_id}}));
    static constexpr long gone[] = {404};
    auto r = send(std::move(req), "aborting the upload of " + key, gone);
    if (!r) {
      return r.error();
    }
    return {};
  }

  // Every object directly under the prefix (ListObjectsV2, page by page).
  archive::result<std::vector<archive::archive_file>> list_objects(int max_keys) const {
    std::vector<archive::archive_file> out;
    std::string token;
    for (;;) {
      // No delimiter: keys under deeper "folders" are skipped here instead,
      // which keeps '/' out of the query where the prefix has none.
      std::map<std::string, std::string> params{
          {"list-type", "2"}, {"prefix", spec.prefix}, {"max-keys", std::to_string(max_keys)}};
      if (!token.empty()) {
        params["continuation-token"] = token;
      }
      request req;
      req.url = bucket_url() + "/" + query(params, tuning.encode_slash_in_query);
      auto r = send(std::move(req), "listing the bucket");
      if (!r) {
        return r.error();
      }
      const auto doc = detail::parse_xml(r->body);
      if (!doc || doc->name != "ListBucketResult") {
        return failure(errc::io_error, "listing the bucket: the answer is not a ListBucketResult");
      }
      for (const auto* c : doc->all("Contents")) {
        const auto key = c->child_text("Key");
        if (!key.starts_with(spec.prefix)) {
          continue;
        }
        archive::archive_file f;
        f.name = key.substr(spec.prefix.size());
        if (!is_plain_name(f.name)) {
          continue;
        }
        f.size = std::strtoull(c->child_text("Size").c_str(), nullptr, 10);
        if (const auto t = detail::parse_timestamp(c->child_text("LastModified"))) {
          f.mtime = *t;
        }
        out.push_back(std::move(f));
      }
      token = doc->child_text("NextContinuationToken");
      if (doc->child_text("IsTruncated") != "true" || token.empty() || max_keys == 1) {
        return out;
      }
    }
  }

  struct pending_upload {
    std::string key;
    std::string upload_id;
  };

  // The incomplete multipart uploads under the prefix (ListMultipartUploads).
  archive::result<std::vector<pending_upload>> list_uploads() const {
    std::vector<pending_upload> out;
    std::string key_marker;
    std::string id_marker;
    for (;;) {
      std::map<std::string, std::string> params{{"uploads", ""},
                                                {"prefix", spec.prefix},
                                                {"max-uploads", std::to_string(tuning.page_size)}};
      if (!key_marker.empty()) {
        params["key-marker"] = key_marker;
        params["upload-id-marker"] = id_marker;
      }
      request req;
      req.url = bucket_url() + "/" + query(params, tuning.encode_slash_in_query);
      auto r = send(std::move(req), "listing incomplete uploads");
      if (!r) {
        return r.error();
      }
      const auto doc = detail::parse_xml(r->body);
      if (!doc || doc->name != "ListMultipartUploadsResult") {
        return failure(errc::io_error,
                       "listing incomplete uploads: the answer is not a "
                       "ListMultipartUploadsResult");
      }
      for (const auto* u : doc->all("Upload")) {
        out.push_back({u->child_text("Key"), u->child_text("UploadId")});
      }
      key_marker = doc->child_text("NextKeyMarker");
      id_marker = doc->child_text("NextUploadIdMarker");
      if (doc->child_text("IsTruncated") != "true" || key_marker.empty()) {
        return out;
      }
    }
  }

  std::string location_of(const std::string& key) const {
    return "s3://" + spec.bucket + "/" + key;
  }
};

namespace {

// The part of a multipart upload being gathered (S3 wants each part but the
// last to be at least 5 MiB, with its length known before it is sent). It
// sits in a file with no name in `folder`, so that it costs page cache, which
// the kernel writes out and reclaims under the memory limit, rather than the
// process's own memory; a killed process leaves nothing of it behind. Where
// no such file can be made (a read-only file system), in memory.
class part_buffer {
 public:
  explicit part_buffer(const std::string& folder) {
    fd_ = ::open(folder.c_str(), O_TMPFILE | O_RDWR | O_EXCL | O_CLOEXEC, 0600);
    if (fd_ < 0) {
      // Older kernels' overlayfs (a container's layer) has no O_TMPFILE.
      std::string name = folder + "/.lifeboat-part-XXXXXX";
      fd_ = ::mkostemp(name.data(), O_CLOEXEC);
      if (fd_ >= 0) {
        ::unlink(name.c_str());
      }
    }
  }
  part_buffer(const part_buffer&) = delete;
  part_buffer& operator=(const part_buffer&) = delete;
  ~part_buffer() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }

  bool in_memory() const { return fd_ < 0; }
  std::uint64_t size() const { return size_; }

  // Appends `bytes`; false (errno set) when the file refused them.
  bool append(std::span<const char> bytes) {
    hash_.update(bytes);
    if (in_memory()) {
      memory_.insert(memory_.end(), bytes.begin(), bytes.end());
      size_ += bytes.size();
      return true;
    }
    while (!bytes.empty()) {
      const ssize_t n = ::pwrite(fd_, bytes.data(), bytes.size(), static_cast<off_t>(size_));
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        errno = n == 0 ? EIO : errno;
        return false;
      }
      size_ += static_cast<std::uint64_t>(n);
      bytes = bytes.subspan(static_cast<std::size_t>(n));
    }
    return true;
  }

  // Makes `req` send the part, with the SHA-256 Signature V4 wants of it.
  void attach(request& req) {
    req.headers.push_back("x-amz-content-sha256: " + hash_.finish());
    if (in_memory()) {
      req.body = std::span<const char>(memory_.data(), memory_.size());
    } else {
      req.body_file = detail::file_body{fd_, size_};
    }
  }

  // Starts the next part. The file keeps its length: the next part
  // overwrites it in place and is sent only as far as it was written.
  void clear() {
    memory_.clear();
    size_ = 0;
  }

  void release() {
    memory_ = {};
    size_ = 0;
  }

 private:
  int fd_ = -1;
  std::vector<char> memory_;
  std::uint64_t size_ = 0;
  detail::sha256_hasher hash_;
};

// A multipart upload: parts are gathered one at a time in a part_buffer,
// the upload is begun with the first full part (or at commit), and
// completed only after the checksum object is written.
class s3_upload final : public upload {
 public:
  s3_upload(std::shared_ptr<const s3_bucket::impl> bucket, std::string name)
      : bucket_(std::move(bucket)),
        name_(std::move(name)),
        key_(bucket_->key_of(name_)),
        buffer_(bucket_->tuning.part_folder) {}
  s3_upload(const s3_upload&) = delete;
  s3_upload& operator=(const s3_upload&) = delete;
  ~s3_upload() override {
    if (!committed_) {
      abandon();
    }
  }

  archive::result<void> write(std::span<const char> bytes) override {
    if (failed_) {
      return *failed_;
    }
    hash_.update(bytes);
    total_ += bytes.size();
    while (!bytes.empty()) {
      const auto room = part_limit() - buffer_.size();
      const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(room, bytes.size()));
      if (!buffer_.append(bytes.first(take))) {
        const int e = errno;
        failed_ =
            bucket_->failure(e == ENOSPC ? errc::no_space : errc::io_error,
                             "gathering part " + std::to_string(parts_.size() + 1) + " of " + key_ +
                                 " in " + bucket_->tuning.part_folder + ": " + std::strerror(e));
        return *failed_;
      }
      bytes = bytes.subspan(take);
      if (buffer_.size() == part_limit()) {
        if (auto sent = send_part(); !sent) {
          failed_ = sent.error();
          return sent.error();
        }
      }
    }
    return {};
  }

  archive::result<published_archive> commit() override {
    if (failed_) {
      return *failed_;
    }
    auto done = finish();
    if (!done) {
      abandon();
      return done.error();
    }
    committed_ = true;
    return done;
  }

  void abandon() override {
    if (!upload_id_.empty()) {
      (void)bucket_->abort_upload(key_, upload_id_);
      upload_id_.clear();
    }
    if (checksum_written_) {
      (void)bucket_->remove_key(key_ + ".sha256");
      checksum_written_ = false;
    }
    buffer_.release();
  }

  std::uint64_t bytes_written() const override { return total_; }

 private:
  std::size_t part_limit() const { return bucket_->tuning.part_size * (1 + parts_.size() / 1000); }

  archive::result<void> start() {
    request req;
    req.method = "POST";
    req.url = bucket_->object_url(key_, "?uploads=");
    req.headers.push_back("Content-Type: application/octet-stream");
    if (bucket_->spec.storage_class) {
      req.headers.push_back("x-amz-storage-class: " + *bucket_->spec.storage_class);
    }
    auto r = bucket_->send(std::move(req), "starting the upload of " + key_);
    if (!r) {
      return r.error();
    }
    const auto doc = detail::parse_xml(r->body);
    upload_id_ = doc ? doc->child_text("UploadId") : std::string();
    if (upload_id_.empty()) {
      return bucket_->failure(errc::io_error,
                              "starting the upload of " + key_ + ": the answer has no UploadId");
    }
    return {};
  }

  archive::result<void> send_part() {
    if (upload_id_.empty()) {
      if (auto started = start(); !started) {
        return started.error();
      }
    }
    const int number = static_cast<int>(parts_.size()) + 1;
    request req;
    req.method = "PUT";
    req.url = bucket_->object_url(
        key_, query({{"partNumber", std::to_string(number)}, {"uploadId", upload_id_}}));
    buffer_.attach(req);
    auto r =
        bucket_->send(std::move(req), "uploading part " + std::to_string(number) + " of " + key_);
    if (!r) {
      return r.error();
    }
    const auto etag = r->headers.find("etag");
    if (etag == r->headers.end()) {
      return bucket_->failure(errc::io_error, "uploading part " + std::to_string(number) + " of " +
                                                  key_ + ": the answer has no ETag");
    }
    parts_.push_back(etag->second);
    buffer_.clear();
    return {};
  }

  archive::result<published_archive> finish() {
    if (buffer_.size() > 0 || parts_.empty()) {
      if (auto sent = send_part(); !sent) {
        return sent.error();
      }
    }
    const std::string sha256 = hash_.finish();
    // The checksum first: an archive under its key always has one.
    const std::string checksum = sha256 + "  " + name_ + "\n";
    request put;
    put.method = "PUT";
    put.url = bucket_->object_url(key_ + ".sha256");
    put.headers.push_back("Content-Type: text/plain");
    put.body = std::span<const char>(checksum.data(), checksum.size());
    checksum_written_ = true;
    if (auto r = bucket_->send(std::move(put), "writing " + key_ + ".sha256"); !r) {
      return r.error();
    }

    std::string parts = "<CompleteMultipartUpload>";
    for (std::size_t i = 0; i < parts_.size(); ++i) {
      parts += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>" + parts_[i] +
               "</ETag></Part>";
    }
    parts += "</CompleteMultipartUpload>";
    request complete;
    complete.method = "POST";
    complete.url = bucket_->object_url(key_, query({{"uploadId", upload_id_}}));
    complete.headers.push_back("Content-Type: application/xml");
    complete.body = std::span<const char>(parts.data(), parts.size());
    if (auto r = bucket_->send(std::move(complete), "completing the upload of " + key_); !r) {
      // A completion retried after it timed out may find the first attempt
      // done on the server (S3 answers NoSuchUpload, moto 500): an object of
      // this size under the key is this upload, and its checksum must stay.
      if (bucket_->size_of(key_) != total_) {
        return r.error();
      }
    }
    upload_id_.clear();
    checksum_written_ = false;
    buffer_.release();
    return published_archive{bucket_->location_of(key_), sha256, total_};
  }

  std::shared_ptr<const s3_bucket::impl> bucket_;
  std::string name_;
  std::string key_;
  part_buffer buffer_;
  std::vector<std::string> parts_;  // ETags, part n at n - 1
  std::string upload_id_;
  detail::sha256_hasher hash_;
  std::uint64_t total_ = 0;
  bool committed_ = false;
  bool checksum_written_ = false;
  std::optional<archive::error> failed_;
};

// A streaming GET: bytes are read as they arrive, never held whole.
class s3_download final : public download {
 public:
  s3_download(std::unique_ptr<detail::stream> stream, std::shared_ptr<const s3_bucket::impl> bucket,
              std::string key)
      : stream_(std::move(stream)), bucket_(std::move(bucket)), key_(std::move(key)) {}

  archive::result<std::size_t> read(std::span<char> into) override {
    const std::size_t n = stream_->read(into);
    if (n > 0) {
      return n;
    }
    const auto& r = stream_->outcome();
    if (r.curl_code != 0 || r.status < 200 || r.status >= 300) {
      if (r.status == 404) {
        return bucket_->failure(errc::io_error, key_ + " does not exist");
      }
      return bucket_->failure_of("reading " + key_, r);
    }
    return std::size_t{0};
  }

 private:
  std::unique_ptr<detail::stream> stream_;
  std::shared_ptr<const s3_bucket::impl> bucket_;
  std::string key_;
};

}  // namespace

s3_bucket::s3_bucket(api::s3_destination spec, const s3_tuning& tuning)
    : impl_(std::make_shared<impl>(std::move(spec), tuning)) {}

s3_bucket::~s3_bucket() = default;

std::string s3_bucket::describe() const { return impl_->what; }

archive::result<void> s3_bucket::check() const {
  // One small authenticated listing: the credentials, the bucket and the
  // server are all there, before any workload is held.
  auto listed = impl_->list_objects(1);
  if (!listed) {
    return listed.error();
  }
  return {};
}

archive::result<std::unique_ptr<upload>> s3_bucket::begin(const std::string& file_name) {
  if (!is_plain_name(file_name)) {
    return impl_->failure(errc::invalid_argument, "\"" + file_name + "\" is not a file name");
  }
  if (auto o = impl_->transfer_options(); !o) {
    return o.error();
  }
  return std::unique_ptr<upload>(std::make_unique<s3_upload>(impl_, file_name));
}

archive::result<std::vector<archive::archive_file>> s3_bucket::list() const {
  return impl_->list_objects(impl_->tuning.page_size);
}

archive::result<void> s3_bucket::remove(const std::string& file_name) {
  if (!is_plain_name(file_name)) {
    return impl_->failure(errc::invalid_argument, "\"" + file_name + "\" is not a file name");
  }
  if (auto removed = impl_->remove_key(impl_->key_of(file_name)); !removed) {
    return removed;
  }
  return impl_->remove_key(impl_->key_of(file_name) + ".sha256");
}

archive::result<std::unique_ptr<download>> s3_bucket::open(const std::string& file_name) const {
  if (!is_plain_name(file_name)) {
    return impl_->failure(errc::invalid_argument, "\"" + file_name + "\" is not a file name");
  }
  auto o = impl_->transfer_options();
  if (!o) {
    return o.error();
  }
  const auto key = impl_->key_of(file_name);
  request req;
  req.url = impl_->object_url(key);
  req.headers.push_back("x-amz-content-sha256: " + std::string(empty_sha256));
  return std::unique_ptr<download>(
      std::make_unique<s3_download>(detail::stream::download(*o, std::move(req)), impl_, key));
}

archive::result<std::vector<std::string>> s3_bucket::remove_leftovers(
    const archive::archive_name_pattern& pattern) {
  std::vector<std::string> removed;
  auto uploads = impl_->list_uploads();
  if (!uploads) {
    return uploads.error();
  }
  for (const auto& u : *uploads) {
    if (!u.key.starts_with(impl_->spec.prefix)) {
      continue;
    }
    const auto name = u.key.substr(impl_->spec.prefix.size());
    if (!is_plain_name(name) || !pattern.matches(name)) {
      continue;
    }
    if (auto aborted = impl_->abort_upload(u.key, u.upload_id); !aborted) {
      return aborted.error();
    }
    removed.push_back(name + " (incomplete upload)");
  }
  auto objects = impl_->list_objects(impl_->tuning.page_size);
  if (!objects) {
    return objects.error();
  }
  std::set<std::string> names;
  for (const auto& f : *objects) {
    names.insert(f.name);
  }
  constexpr std::string_view checksum_suffix = ".sha256";
  for (const auto& name : names) {
    if (!name.ends_with(checksum_suffix)) {
      continue;
    }
    const auto archive_name = name.substr(0, name.size() - checksum_suffix.size());
    if (pattern.matches(archive_name) && names.count(archive_name) == 0) {
      if (auto gone = impl_->remove_key(impl_->key_of(name)); !gone) {
        return gone.error();
      }
      removed.push_back(name);
    }
  }
  return removed;
}

std::string s3_bucket::point_latest(const std::string&) {
  if (impl_->spec.insecure_skip_verify) {
    return impl_->what + ": TLS certificates are not verified (insecureSkipVerify)";
  }
  return {};
}

}  // namespace lifeboat::destinations
