#include "controller/destinations/transfer.hpp"

#include <curl/curl.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <nettle/sha2.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <mutex>

namespace lifeboat::destinations::detail {

namespace {

// libcurl and libxml2 are set up once per process, before any transfer; both
// are thread-safe afterwards (curl -V lists "threadsafe").
void global_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    xmlInitParser();
  });
}

constexpr long buffer_size = 256L * 1024;

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string hex(const unsigned char* bytes, std::size_t n) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(digits[bytes[i] >> 4]);
    out.push_back(digits[bytes[i] & 0xf]);
  }
  return out;
}

}  // namespace

bool response::transient_transport_failure() const {
  switch (curl_code) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return true;
    default:
      return false;
  }
}

bool response::unreachable() const {
  switch (curl_code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSH:
    case CURLE_LOGIN_DENIED:
    case CURLE_REMOTE_ACCESS_DENIED:
      return true;
    default:
      return false;
  }
}

// One libcurl transfer with everything its callbacks touch. `mode` says who
// drives it: curl_easy_perform (whole), or the caller through read() or
// write()/finish() on a multi handle.
struct stream::impl {
  enum class kind { whole, download, upload };

  kind mode = kind::whole;
  request req;
  CURL* easy = nullptr;
  CURLM* multi = nullptr;
  curl_slist* header_list = nullptr;
  curl_slist* quote_list = nullptr;
  char error_buffer[CURL_ERROR_SIZE] = {};
  response out;
  bool done = false;
  bool host_key_mismatch = false;

  // whole: the request body and how much of it was sent.
  std::size_t body_offset = 0;
  // upload: what the caller handed over and curl has not taken yet.
  std::span<const char> pending;
  bool end_of_body = false;
  bool read_paused = false;
  // download: the body received and not yet read.
  std::string received;
  std::size_t received_offset = 0;
  bool failed_status = false;

  impl() = default;
  impl(const impl&) = delete;

  std::uint64_t body_size() const {
    return req.body_file ? req.body_file->size : (req.body ? req.body->size() : 0);
  }
  impl& operator=(const impl&) = delete;
  ~impl() {
    if (multi != nullptr) {
      curl_multi_remove_handle(multi, easy);
      curl_multi_cleanup(multi);
    }
    if (easy != nullptr) {
      curl_easy_cleanup(easy);
    }
    curl_slist_free_all(header_list);
    curl_slist_free_all(quote_list);
  }

  static std::size_t on_header(char* data, std::size_t size, std::size_t n, void* self_ptr) {
    auto* self = static_cast<impl*>(self_ptr);
    const std::string_view line(data, size * n);
    if (line.starts_with("HTTP/")) {
      self->out.headers.clear();  // a new response (after 100 Continue)
      return size * n;
    }
    const auto colon = line.find(':');
    if (colon != std::string_view::npos) {
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
        value.remove_prefix(1);
      }
      while (!value.empty() && (value.back() == '\r' || value.back() == '\n')) {
        value.remove_suffix(1);
      }
      self->out.headers[lower(line.substr(0, colon))] = std::string(value);
    }
    return size * n;
  }

  static std::size_t on_body(char* data, std::size_t size, std::size_t n, void* self_ptr) {
    auto* self = static_cast<impl*>(self_ptr);
    const std::size_t bytes = size * n;
    if (self->mode == kind::download && !self->failed_status) {
      long status = 0;
      curl_easy_getinfo(self->easy, CURLINFO_RESPONSE_CODE, &status);
      if (status < 300) {
        // Only what one curl_multi_perform delivers: read() pumps again only
        // once everything was taken.
        self->received.append(data, bytes);
        return bytes;
      }
      self->failed_status = true;
    }
    const std::size_t room = body_limit - std::min(body_limit, self->out.body.size());
    self->out.body.append(data, std::min(room, bytes));
    return bytes;
  }

  static std::size_t on_read(char* into, std::size_t size, std::size_t n, void* self_ptr) {
    auto* self = static_cast<impl*>(self_ptr);
    const std::size_t room = size * n;
    if (self->mode == kind::whole && self->req.body_file) {
      const auto& file = *self->req.body_file;
      const auto want =
          static_cast<std::size_t>(std::min<std::uint64_t>(room, file.size - self->body_offset));
      if (want == 0) {
        return 0;
      }
      ssize_t got = -1;
      do {
        got = ::pread(file.fd, into, want, static_cast<off_t>(self->body_offset));
      } while (got < 0 && errno == EINTR);
      if (got <= 0) {
        // The file is ours and sized: short means it broke, not that it ended.
        return CURL_READFUNC_ABORT;
      }
      self->body_offset += static_cast<std::size_t>(got);
      return static_cast<std::size_t>(got);
    }
    if (self->mode == kind::whole) {
      const auto& body = *self->req.body;
      const std::size_t count = std::min(room, body.size() - self->body_offset);
      std::memcpy(into, body.data() + self->body_offset, count);
      self->body_offset += count;
      return count;
    }
    if (self->pending.empty()) {
      if (self->end_of_body) {
        return 0;
      }
      self->read_paused = true;
      return CURL_READFUNC_PAUSE;
    }
    const std::size_t count = std::min(room, self->pending.size());
    std::memcpy(into, self->pending.data(), count);
    self->pending = self->pending.subspan(count);
    return count;
  }

  // A retried request (a redirect, an auth round) starts its body over.
  static int on_seek(void* self_ptr, curl_off_t offset, int origin) {
    auto* self = static_cast<impl*>(self_ptr);
    if (self->mode != kind::whole || origin != SEEK_SET || offset < 0 ||
        static_cast<std::uint64_t>(offset) > self->body_size()) {
      return CURL_SEEKFUNC_CANTSEEK;
    }
    self->body_offset = static_cast<std::size_t>(offset);
    return CURL_SEEKFUNC_OK;
  }

  // Known hosts are checked strictly: a key that is not the one on record
  // (or no record at all) refuses the connection.
  static int on_host_key(CURL*, const curl_khkey*, const curl_khkey*, curl_khmatch match,
                         void* self_ptr) {
    auto* self = static_cast<impl*>(self_ptr);
    if (match == CURLKHMATCH_OK) {
      return CURLKHSTAT_FINE;
    }
    self->host_key_mismatch = true;
    return CURLKHSTAT_REJECT;
  }

  void configure(const transfer_options& options) {
    easy = curl_easy_init();
    curl_easy_setopt(easy, CURLOPT_URL, req.url.c_str());
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, error_buffer);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https,sftp");
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT,
                     static_cast<long>(options.connect_timeout.count()));
    curl_easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(easy, CURLOPT_LOW_SPEED_TIME,
                     static_cast<long>(options.stall_timeout.count()));
    curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, buffer_size);
    curl_easy_setopt(easy, CURLOPT_UPLOAD_BUFFERSIZE, buffer_size);
    if (options.ca_file) {
      curl_easy_setopt(easy, CURLOPT_CAINFO, options.ca_file->c_str());
    }
    if (options.insecure_skip_verify) {
      curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (!options.user_password.empty()) {
      curl_easy_setopt(easy, CURLOPT_USERPWD, options.user_password.c_str());
    }
    if (!options.aws_sigv4.empty()) {
      curl_easy_setopt(easy, CURLOPT_AWS_SIGV4, options.aws_sigv4.c_str());
    } else if (!options.user_password.empty()) {
      curl_easy_setopt(easy, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC));
    }
    if (!options.ssh_known_hosts_file.empty()) {
      curl_easy_setopt(easy, CURLOPT_SSH_KNOWNHOSTS, options.ssh_known_hosts_file.c_str());
      curl_easy_setopt(easy, CURLOPT_SSH_KEYFUNCTION, &impl::on_host_key);
      curl_easy_setopt(easy, CURLOPT_SSH_KEYDATA, this);
    }
    if (!options.ssh_private_key_file.empty()) {
      curl_easy_setopt(easy, CURLOPT_SSH_PRIVATE_KEYFILE, options.ssh_private_key_file.c_str());
      curl_easy_setopt(easy, CURLOPT_SSH_AUTH_TYPES, static_cast<long>(CURLSSH_AUTH_PUBLICKEY));
    } else if (req.url.starts_with("sftp:")) {
      curl_easy_setopt(easy, CURLOPT_SSH_AUTH_TYPES,
                       static_cast<long>(CURLSSH_AUTH_PASSWORD | CURLSSH_AUTH_KEYBOARD));
    }
    if (req.url.starts_with("sftp:")) {
      // Files made on the server are the user's alone, as local archives are
      // (libcurl's default is 0644).
      curl_easy_setopt(easy, CURLOPT_NEW_FILE_PERMS, 0600L);
    }

    // No "Expect: 100-continue" for WebDAV (some servers never answer it).
    // Not for S3, which honours it: libcurl 7.88 would sign the removed
    // header as if it were sent, and every request would be refused.
    if (options.aws_sigv4.empty()) {
      header_list = curl_slist_append(header_list, "Expect:");
    }
    for (const auto& h : req.headers) {
      header_list = curl_slist_append(header_list, h.c_str());
    }
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, header_list);
    for (const auto& q : req.post_quote) {
      quote_list = curl_slist_append(quote_list, q.c_str());
    }
    if (quote_list != nullptr) {
      curl_easy_setopt(easy, CURLOPT_POSTQUOTE, quote_list);
    }
    if (req.directory_listing) {
      curl_easy_setopt(easy, CURLOPT_DIRLISTONLY, 1L);
    }

    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &impl::on_header);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, this);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &impl::on_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, this);

    const bool sends_body =
        mode == kind::upload || (mode == kind::whole && (req.body || req.body_file));
    if (sends_body) {
      curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(easy, CURLOPT_READFUNCTION, &impl::on_read);
      curl_easy_setopt(easy, CURLOPT_READDATA, this);
      if (mode == kind::whole) {
        curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(body_size()));
        curl_easy_setopt(easy, CURLOPT_SEEKFUNCTION, &impl::on_seek);
        curl_easy_setopt(easy, CURLOPT_SEEKDATA, this);
      }
      if (req.method != "PUT") {
        curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, req.method.c_str());
      }
    } else if (req.method == "HEAD") {
      curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
    } else if (req.method == "POST") {
      curl_easy_setopt(easy, CURLOPT_POST, 1L);
      curl_easy_setopt(easy, CURLOPT_POSTFIELDS, "");
      curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, 0L);
    } else if (req.method != "GET") {
      curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    }
  }

  void finished(CURLcode code) {
    done = true;
    out.curl_code = code;
    if (code != CURLE_OK) {
      out.curl_message = error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(code);
      if (host_key_mismatch) {
        out.curl_message = "the server's host key is not the one in knownHostsFile";
      }
    }
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &out.status);
  }

  void start_multi() {
    multi = curl_multi_init();
    curl_multi_add_handle(multi, easy);
  }

  // One step of the transfer: whatever can be done now, or a wait of at most
  // a second for the sockets.
  void pump() {
    int running = 0;
    if (const CURLMcode mc = curl_multi_perform(multi, &running); mc != CURLM_OK) {
      done = true;
      out.curl_code = CURLE_FAILED_INIT;
      out.curl_message = curl_multi_strerror(mc);
      return;
    }
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &queued)) {
      if (msg->msg == CURLMSG_DONE) {
        finished(msg->data.result);
      }
    }
    if (!done && running > 0) {
      curl_multi_poll(multi, nullptr, 0, 1000, nullptr);
    }
  }

  void resume_reading() {
    if (read_paused) {
      read_paused = false;
      curl_easy_pause(easy, CURLPAUSE_CONT);
    }
  }
};

response perform(const transfer_options& options, const request& req) {
  global_init();
  stream::impl t;
  t.mode = stream::impl::kind::whole;
  t.req = req;
  t.configure(options);
  t.finished(curl_easy_perform(t.easy));
  return std::move(t.out);
}

stream::stream(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
stream::~stream() = default;

std::unique_ptr<stream> stream::download(const transfer_options& options, request req) {
  global_init();
  auto t = std::make_unique<impl>();
  t->mode = impl::kind::download;
  req.body.reset();
  req.body_file.reset();
  t->req = std::move(req);
  t->configure(options);
  t->start_multi();
  return std::unique_ptr<stream>(new stream(std::move(t)));
}

std::unique_ptr<stream> stream::upload(const transfer_options& options, request req) {
  global_init();
  auto t = std::make_unique<impl>();
  t->mode = impl::kind::upload;
  t->req = std::move(req);
  t->configure(options);
  t->start_multi();
  return std::unique_ptr<stream>(new stream(std::move(t)));
}

std::size_t stream::read(std::span<char> into) {
  auto& t = *impl_;
  while (t.received_offset == t.received.size() && !t.done) {
    t.received.clear();
    t.received_offset = 0;
    t.pump();
  }
  const std::size_t count = std::min(into.size(), t.received.size() - t.received_offset);
  std::memcpy(into.data(), t.received.data() + t.received_offset, count);
  t.received_offset += count;
  return count;
}

bool stream::write(std::span<const char> bytes) {
  auto& t = *impl_;
  t.pending = bytes;
  t.resume_reading();
  while (!t.pending.empty() && !t.done) {
    t.pump();
  }
  const bool taken = t.pending.empty();
  t.pending = {};
  return taken;
}

const response& stream::finish() {
  auto& t = *impl_;
  t.end_of_body = true;
  t.resume_reading();
  while (!t.done) {
    t.pump();
  }
  return t.out;
}

const response& stream::outcome() const { return impl_->out; }

std::string uri_encode(std::string_view text, bool keep_slash) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_' || c == '~' ||
        (keep_slash && c == '/')) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(digits[c >> 4]);
      out.push_back(digits[c & 0xf]);
    }
  }
  return out;
}

struct sha256_hasher::impl {
  sha256_ctx ctx{};
};

sha256_hasher::sha256_hasher() : impl_(std::make_unique<impl>()) { sha256_init(&impl_->ctx); }
sha256_hasher::~sha256_hasher() = default;

void sha256_hasher::update(std::span<const char> bytes) {
  sha256_update(&impl_->ctx, bytes.size(), reinterpret_cast<const std::uint8_t*>(bytes.data()));
}

std::string sha256_hasher::finish() {
  unsigned char digest[SHA256_DIGEST_SIZE];
  sha256_digest(&impl_->ctx, SHA256_DIGEST_SIZE, digest);
  return hex(digest, SHA256_DIGEST_SIZE);
}

std::string sha256_hex(std::span<const char> bytes) {
  sha256_hasher h;
  h.update(bytes);
  return h.finish();
}

archive::result<std::string> read_secret_file(std::string_view what, std::string_view field,
                                              const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return archive::make_error(archive::errc::refused, std::string(what) + ": cannot read " +
                                                           std::string(field) + " " + path + ": " +
                                                           std::strerror(errno));
  }
  std::string content;
  char buf[4096];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    content.append(buf, static_cast<std::size_t>(in.gcount()));
    if (content.size() > std::size_t{64} * 1024) {
      return archive::make_error(archive::errc::refused, std::string(what) + ": " +
                                                             std::string(field) + " " + path +
                                                             " is too large for a secret");
    }
  }
  while (!content.empty() && std::isspace(static_cast<unsigned char>(content.back())) != 0) {
    content.pop_back();
  }
  if (content.empty()) {
    return archive::make_error(
        archive::errc::refused,
        std::string(what) + ": " + std::string(field) + " " + path + " is empty");
  }
  return content;
}

const xml_element* xml_element::child(std::string_view local_name) const {
  for (const auto& c : children) {
    if (c.name == local_name) {
      return &c;
    }
  }
  return nullptr;
}

std::string xml_element::child_text(std::string_view local_name) const {
  const auto* c = child(local_name);
  return c != nullptr ? c->text : std::string();
}

std::vector<const xml_element*> xml_element::all(std::string_view local_name) const {
  std::vector<const xml_element*> out;
  for (const auto& c : children) {
    if (c.name == local_name) {
      out.push_back(&c);
    }
  }
  return out;
}

namespace {

xml_element convert(const xmlNode* node) {
  xml_element out;
  out.name = reinterpret_cast<const char*>(node->name);
  for (const xmlNode* c = node->children; c != nullptr; c = c->next) {
    if (c->type == XML_ELEMENT_NODE) {
      out.children.push_back(convert(c));
    } else if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) &&
               c->content != nullptr) {
      out.text += reinterpret_cast<const char*>(c->content);
    }
  }
  return out;
}

}  // namespace

std::optional<xml_element> parse_xml(std::string_view text) {
  global_init();
  // No network, no entity expansion: a listing is data, never instructions.
  xmlDoc* doc = xmlReadMemory(text.data(), static_cast<int>(text.size()), "response.xml", nullptr,
                              XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
  if (doc == nullptr) {
    return std::nullopt;
  }
  std::optional<xml_element> out;
  if (const xmlNode* root = xmlDocGetRootElement(doc)) {
    out = convert(root);
  }
  xmlFreeDoc(doc);
  return out;
}

std::optional<std::chrono::system_clock::time_point> parse_timestamp(std::string_view text) {
  const std::string s(text);
  std::tm tm{};
  const char* end = ::strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (end == nullptr) {
    tm = {};
    end = ::strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S", &tm);
  }
  if (end == nullptr) {
    return std::nullopt;
  }
  const std::time_t t = ::timegm(&tm);
  if (t == static_cast<std::time_t>(-1)) {
    return std::nullopt;
  }
  return std::chrono::system_clock::from_time_t(t);
}

}  // namespace lifeboat::destinations::detail
