#include "controller/notify/notify.hpp"

#include "api/template.hpp"

#include <curl/curl.h>

#include <boost/json.hpp>
#include <boost/url.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <thread>
#include <tuple>

namespace lifeboat::notify {
namespace {

namespace urls = boost::urls;

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    const auto end = std::min(s.find(sep, start), s.size());
    if (end > start) {
      out.emplace_back(s.substr(start, end - start));
    }
    start = end + 1;
  }
  return out;
}

// Query parameters by lower-cased key (shoutrrr's keys are case-insensitive);
// the last one wins.
std::vector<std::pair<std::string, std::string>> query_of(const urls::url_view& u) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& p : u.params()) {
    out.emplace_back(p.key, p.has_value ? p.value : std::string());
  }
  return out;
}

std::string param(const urls::url_view& u, std::string_view key, std::string fallback = {}) {
  std::string value = std::move(fallback);
  for (const auto& p : u.params()) {
    if (lower(p.key) == key) {
      value = p.has_value ? p.value : std::string();
    }
  }
  return value;
}

bool truthy(std::string_view v) {
  const auto l = lower(v);
  return l == "yes" || l == "true" || l == "1";
}

std::string host_port(const urls::url_view& u) {
  std::string out(u.encoded_host());
  if (u.has_port()) {
    out += ":" + std::string(u.port());
  }
  return out;
}

// The decoded, non-empty path segments.
std::vector<std::string> segments(const urls::url_view& u) {
  std::vector<std::string> out;
  for (const auto& s : u.segments()) {
    if (!s.empty()) {
      out.push_back(s);
    }
  }
  return out;
}

std::string base64(std::string_view in) {
  static constexpr std::string_view alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned n = (static_cast<unsigned char>(in[i]) << 16U) |
                       (static_cast<unsigned char>(in[i + 1]) << 8U) |
                       static_cast<unsigned char>(in[i + 2]);
    out += alphabet[(n >> 18U) & 63U];
    out += alphabet[(n >> 12U) & 63U];
    out += alphabet[(n >> 6U) & 63U];
    out += alphabet[n & 63U];
  }
  if (i < in.size()) {
    const bool two = i + 1 < in.size();
    unsigned n = static_cast<unsigned char>(in[i]) << 16U;
    if (two) {
      n |= static_cast<unsigned char>(in[i + 1]) << 8U;
    }
    out += alphabet[(n >> 18U) & 63U];
    out += alphabet[(n >> 12U) & 63U];
    out += two ? alphabet[(n >> 6U) & 63U] : '=';
    out += '=';
  }
  return out;
}

std::string json_body(const boost::json::object& o) { return boost::json::serialize(o); }

std::string title_and_body(const message& m) { return m.title + "\n\n" + m.body; }

result<std::vector<request>> generic(std::string_view target, const message& m) {
  // shoutrrr's generic service: reserved query keys configure the request,
  // `@Name=v` adds a header, `$key=v` a JSON field, `_key` forwards a
  // reserved key; every other parameter goes on to the target.
  auto parsed = urls::parse_uri(target);
  if (!parsed) {
    return std::string("generic: not a valid http(s) URL");
  }
  urls::url u(*parsed);
  http_request r;
  boost::json::object body;
  std::string title_key = "title";
  std::string message_key = "message";
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> forward;
  boost::json::object extra;
  for (auto& [key, value] : query_of(u)) {
    const auto k = lower(key);
    if (k == "template") {
      if (lower(value) != "json") {
        return "generic: template " + value +
               " is not supported; lifeboat sends JSON (template=json)";
      }
    } else if (k == "titlekey") {
      title_key = value;
    } else if (k == "messagekey") {
      message_key = value;
    } else if (k == "contenttype") {
      content_type = value;
    } else if (k == "method") {
      r.method = value;
    } else if (k == "disabletls") {
      // Meaningful for generic:// only; generic+https names its scheme.
    } else if (key.starts_with('@') && key.size() > 1) {
      r.headers.push_back(key.substr(1) + ": " + value);
    } else if (key.starts_with('$') && key.size() > 1) {
      extra[key.substr(1)] = value;
    } else if (key.starts_with('_') && key.size() > 1) {
      forward.emplace_back(key.substr(1), value);
    } else {
      forward.emplace_back(key, value);
    }
  }
  u.params().clear();
  for (const auto& [k, v] : forward) {
    u.params().append({k, v});
  }
  if (u.params().empty()) {
    u.remove_query();
  }
  body[title_key] = m.title;
  body[message_key] = m.body;
  for (const auto& [k, v] : extra) {
    body[k] = v;
  }
  r.url = u.buffer();
  r.headers.insert(r.headers.begin(), "Content-Type: " + content_type);
  r.body = json_body(body);
  return std::vector<request>{r};
}

result<std::vector<request>> slack(const urls::url_view& u, const message& m) {
  // slack://[botname@]token-a/token-b/token-c or slack://hook:a-b-c@webhook
  std::vector<std::string> tokens;
  std::string username;
  if (u.has_password() && lower(u.user()) == "hook") {
    tokens = split(u.password(), '-');
  } else {
    if (u.has_userinfo()) {
      username = u.user();
    }
    tokens.push_back(u.host());
    for (auto& s : segments(u)) {
      tokens.push_back(std::move(s));
    }
  }
  if (tokens.size() != 3) {
    return std::string(
        "slack: expected a webhook token of three parts (slack://token-a/token-b/token-c); "
        "bot tokens (xoxb) are not supported");
  }
  boost::json::object body{{"text", title_and_body(m)}};
  if (!username.empty()) {
    body["username"] = username;
  }
  const auto channel = param(u, "channel");
  if (!channel.empty()) {
    body["channel"] = channel;
  }
  return std::vector<request>{http_request{
      "POST",
      "https://hooks.slack.com/services/" + tokens[0] + "/" + tokens[1] + "/" + tokens[2],
      {"Content-Type: application/json"},
      json_body(body)}};
}

result<std::vector<request>> discord(const urls::url_view& u, const message& m) {
  // discord://token@webhookid
  if (!u.has_userinfo() || u.user().empty() || u.host().empty()) {
    return std::string("discord: expected discord://token@webhookid");
  }
  std::string content = title_and_body(m);
  if (content.size() > 2000) {  // Discord refuses longer content
    content.resize(1997);
    content += "...";
  }
  std::string url = "https://discord.com/api/webhooks/" + u.host() + "/" + u.user();
  const auto thread = param(u, "thread_id");
  if (!thread.empty()) {
    url += "?thread_id=" + thread;
  }
  boost::json::object body{{"content", content}};
  const auto username = param(u, "username");
  if (!username.empty()) {
    body["username"] = username;
  }
  return std::vector<request>{
      http_request{"POST", url, {"Content-Type: application/json"}, json_body(body)}};
}

result<std::vector<request>> gotify(const urls::url_view& u, const message& m) {
  // gotify://host[:port][/path]/token[?disabletls=yes&priority=N]
  auto path = segments(u);
  if (u.host().empty() || path.empty()) {
    return std::string("gotify: expected gotify://host[:port][/path]/token");
  }
  const std::string token = path.back();
  path.pop_back();
  std::string url = (truthy(param(u, "disabletls")) ? "http://" : "https://") + host_port(u);
  for (const auto& s : path) {
    url += "/" + s;
  }
  url += "/message";
  int priority = 0;
  const auto p = param(u, "priority", "0");
  try {
    priority = std::stoi(p);
  } catch (const std::exception&) {
    return "gotify: priority " + p + " is not a number";
  }
  boost::json::object body{{"title", m.title}, {"message", m.body}, {"priority", priority}};
  return std::vector<request>{http_request{
      "POST", url, {"Content-Type: application/json", "X-Gotify-Key: " + token}, json_body(body)}};
}

result<std::vector<request>> ntfy(const urls::url_view& u, const message& m) {
  // ntfy://[user:password@][host[:port]]/topic[?scheme=http&priority=..&tags=..]
  const auto path = segments(u);
  if (path.empty()) {
    return std::string("ntfy: expected ntfy://[user:password@]host/topic");
  }
  const std::string host = u.host().empty() ? std::string("ntfy.sh") : host_port(u);
  const auto scheme = lower(param(u, "scheme", "https"));
  if (scheme != "https" && scheme != "http") {
    return "ntfy: scheme " + scheme + " is not http or https";
  }
  std::string url = scheme + "://" + host;
  for (const auto& s : path) {
    url += "/" + s;
  }
  http_request r{"POST", url, {"Title: " + m.title}, m.body};
  for (const auto* key : {"priority", "tags", "click", "icon"}) {
    const auto v = param(u, key);
    if (!v.empty()) {
      std::string name(key);
      name[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(name[0])));
      r.headers.push_back(name + ": " + v);
    }
  }
  if (u.has_password()) {
    const std::string credentials = std::string(u.user()) + ":" + std::string(u.password());
    r.headers.push_back("Authorization: Basic " + base64(credentials));
  }
  return std::vector<request>{r};
}

result<std::vector<request>> telegram(const urls::url_view& u, const message& m) {
  // telegram://token@telegram?chats=chat1[,chat2]  (the token is id:secret)
  if (!u.has_password()) {
    return std::string("telegram: expected telegram://token@telegram?chats=...");
  }
  auto chats = split(param(u, "chats", param(u, "channels")), ',');
  if (chats.empty()) {
    return std::string("telegram: set chats=<chat id or @channel>[,...]");
  }
  const std::string url = "https://api.telegram.org/bot" + std::string(u.user()) + ":" +
                          std::string(u.password()) + "/sendMessage";
  std::vector<request> out;
  for (const auto& chat : chats) {
    out.emplace_back(http_request{"POST",
                                  url,
                                  {"Content-Type: application/json"},
                                  json_body({{"chat_id", chat}, {"text", title_and_body(m)}})});
  }
  return out;
}

result<std::vector<request>> matrix(const urls::url_view& u, const message& m) {
  // matrix://:access-token@host[:port]/?rooms=!room:server[,...][&disabletls=yes]
  if (!u.has_password() || !u.user().empty()) {
    return std::string(
        "matrix: only an access token is supported (matrix://:TOKEN@host/?rooms=!id:server); "
        "logging in with a user and password is not");
  }
  auto rooms = split(param(u, "rooms", param(u, "room")), ',');
  if (rooms.empty()) {
    return std::string("matrix: set rooms=<!room id>[,...]");
  }
  const std::string base = (truthy(param(u, "disabletls")) ? "http://" : "https://") + host_port(u);
  std::vector<request> out;
  for (std::size_t i = 0; i < rooms.size(); ++i) {
    if (!rooms[i].starts_with('!')) {
      return std::string("matrix: rooms must be room ids (!id:server); aliases are not resolved");
    }
    const std::string txn = m.id + "-" + std::to_string(i);
    out.emplace_back(http_request{
        "PUT",
        base + "/_matrix/client/v3/rooms/" + urls::encode(rooms[i], urls::unreserved_chars) +
            "/send/m.room.message/" + urls::encode(txn, urls::unreserved_chars),
        {"Content-Type: application/json", "Authorization: Bearer " + std::string(u.password())},
        json_body({{"msgtype", "m.text"}, {"body", title_and_body(m)}})});
  }
  return out;
}

result<std::vector<request>> smtp(const urls::url_view& u, const message& m) {
  // smtp://[user:password@]host[:port]/?from=a@b&to=c@d[,e@f]&auth=..&encryption=..
  if (u.host().empty()) {
    return std::string("smtp: expected smtp://[user:password@]host[:port]/?from=...&to=...");
  }
  mail_request r;
  r.from = param(u, "fromaddress", param(u, "from"));
  r.to = split(param(u, "toaddresses", param(u, "to")), ',');
  if (r.from.empty() || r.to.empty()) {
    return std::string("smtp: set from=<address> and to=<address>[,...]");
  }
  const auto encryption = lower(param(u, "encryption", "auto"));
  const std::string port = u.has_port() ? std::string(u.port()) : std::string("25");
  bool implicit = false;
  if (encryption == "auto") {
    implicit = port == "465";
    r.starttls = truthy(param(u, "usestarttls", "yes")) ? "try" : "none";
  } else if (encryption == "implicittls") {
    implicit = true;
  } else if (encryption == "explicittls") {
    r.starttls = "require";
  } else if (encryption == "none") {
    r.starttls = "none";
  } else {
    return "smtp: encryption " + encryption + " is not one of auto, none, explicittls, implicittls";
  }
  if (implicit) {
    r.starttls = "none";
  }
  r.url = (implicit ? "smtps://" : "smtp://") + std::string(u.encoded_host()) + ":" + port;
  if (lower(param(u, "auth", "unknown")) != "none" && u.has_userinfo()) {
    r.user = u.user();
    r.password = u.password();
  }
  r.subject = param(u, "subject", m.title);
  r.body = m.body;
  return std::vector<request>{r};
}

// curl's callbacks: collect nothing of a response body, feed a mail.
std::size_t discard(char* /*data*/, std::size_t size, std::size_t n, void* /*user*/) {
  return size * n;
}

struct mail_source {
  std::string text;
  std::size_t at = 0;
};

std::size_t read_mail(char* into, std::size_t size, std::size_t n, void* user) {
  auto* src = static_cast<mail_source*>(user);
  const auto len = std::min(size * n, src->text.size() - src->at);
  std::copy_n(src->text.data() + src->at, len, into);
  src->at += len;
  return len;
}

std::string mail_text(const mail_request& r) {
  std::string to;
  for (const auto& a : r.to) {
    to += to.empty() ? "" : ", ";
    to += a;
  }
  char date[64];
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  std::string text = "Date: " + std::string(date) + "\r\nFrom: " + r.from + "\r\nTo: " + to +
                     "\r\nSubject: " + r.subject +
                     "\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n";
  // SMTP lines end in CRLF; a body line of "." alone is escaped by curl.
  for (const char c : r.body) {
    if (c == '\n') {
      text += "\r\n";
    } else {
      text += c;
    }
  }
  text += "\r\n";
  return text;
}

struct curl_deleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct slist_deleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

}  // namespace

result<std::vector<request>> build_requests(std::string_view url, const message& m) {
  if (url.starts_with("generic+http://") || url.starts_with("generic+https://")) {
    return generic(url.substr(std::strlen("generic+")), m);
  }
  const auto sep = url.find("://");
  const std::string scheme(url.substr(0, sep == std::string_view::npos ? 0 : sep));
  auto parsed = urls::parse_uri(url);
  if (!parsed) {
    return "a " + (scheme.empty() ? std::string("notification") : scheme) +
           " URL that does not parse (a reserved character not %-encoded?)";
  }
  const urls::url_view& u = *parsed;
  if (scheme == "slack") {
    return slack(u, m);
  }
  if (scheme == "discord") {
    return discord(u, m);
  }
  if (scheme == "gotify") {
    return gotify(u, m);
  }
  if (scheme == "ntfy") {
    return ntfy(u, m);
  }
  if (scheme == "telegram") {
    return telegram(u, m);
  }
  if (scheme == "matrix") {
    return matrix(u, m);
  }
  if (scheme == "smtp") {
    return smtp(u, m);
  }
  return "unknown scheme \"" + scheme + "\"";
}

std::string describe(std::string_view url) {
  const auto sep = url.find("://");
  if (sep == std::string_view::npos) {
    return "(not a URL)";
  }
  auto rest = url.substr(sep + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
    rest = rest.substr(at + 1);
  }
  std::string scheme(url.substr(0, sep));
  // Slack's "host" is the first token part: only the scheme is safe to show.
  if (scheme == "slack" || scheme == "discord") {
    return scheme + "://";
  }
  return scheme + "://" + std::string(rest);
}

std::vector<std::string> parse_urls_file(std::string_view text) {
  std::vector<std::string> out;
  for (const auto& raw : split(text, '\n')) {
    std::string_view line = raw;
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string_view::npos) {
      continue;
    }
    line = line.substr(first, line.find_last_not_of(" \t\r") - first + 1);
    if (!line.starts_with('#')) {
      out.emplace_back(line);
    }
  }
  return out;
}

curl_sender::curl_sender(std::chrono::milliseconds timeout) : timeout_(timeout) {}

result<void> curl_sender::send(const request& r) {
  std::unique_ptr<CURL, curl_deleter> easy(curl_easy_init());
  if (!easy) {
    return std::string("curl_easy_init failed");
  }
  CURL* c = easy.get();
  char error_buffer[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_.count()));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout_.count()));
  std::unique_ptr<curl_slist, slist_deleter> list;
  mail_source mail;
  const bool is_http = std::holds_alternative<http_request>(r);
  if (const auto* h = std::get_if<http_request>(&r)) {
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_URL, h->url.c_str());
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, h->method.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, h->body.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(h->body.size()));
    for (const auto& header : h->headers) {
      list.reset(curl_slist_append(list.release(), header.c_str()));
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, list.get());
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &discard);
  } else {
    const auto& m = std::get<mail_request>(r);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(c, CURLOPT_URL, m.url.c_str());
    if (!m.user.empty()) {
      curl_easy_setopt(c, CURLOPT_USERNAME, m.user.c_str());
      curl_easy_setopt(c, CURLOPT_PASSWORD, m.password.c_str());
    }
    if (m.starttls == "require") {
      curl_easy_setopt(c, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_ALL));
    } else if (m.starttls == "try") {
      curl_easy_setopt(c, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_TRY));
    }
    curl_easy_setopt(c, CURLOPT_MAIL_FROM, ("<" + m.from + ">").c_str());
    for (const auto& to : m.to) {
      list.reset(curl_slist_append(list.release(), ("<" + to + ">").c_str()));
    }
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, list.get());
    mail.text = mail_text(m);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, &read_mail);
    curl_easy_setopt(c, CURLOPT_READDATA, &mail);
    curl_easy_setopt(c, CURLOPT_INFILESIZE, static_cast<long>(mail.text.size()));
  }
  const CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    // curl's message names host and port, never the userinfo.
    return std::string(error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(rc));
  }
  if (is_http) {
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status >= 300) {
      return "HTTP status " + std::to_string(status);
    }
  }
  return {};
}

delivery deliver(std::string_view url, const message& m, sender& s, const sleeper& sleep) {
  delivery d;
  d.target = describe(url);
  auto requests = build_requests(url, m);
  if (!requests) {
    d.error = requests.error();
    return d;
  }
  for (const auto& r : *requests) {
    auto wait = first_backoff;
    result<void> sent = std::string("not sent");
    for (int attempt = 1; attempt <= max_attempts; ++attempt) {
      ++d.attempts;
      sent = s.send(r);
      if (sent) {
        break;
      }
      if (attempt < max_attempts) {
        sleep(wait);
        wait *= 2;
      }
    }
    if (!sent) {
      d.error = sent.error();
      return d;
    }
  }
  d.ok = true;
  return d;
}

namespace {

std::string seconds_text(std::chrono::duration<double> d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", d.count());
  return buf;
}

std::string bytes_text(double bytes) { return std::to_string(static_cast<long long>(bytes)); }

std::string joined(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) {
      out += separator;
    }
    out += item;
  }
  return out;
}

std::string default_title(const run_summary& s) {
  return "lifeboat: " + s.kind + " " + s.name + (s.ok ? " succeeded" : " failed");
}

std::string default_body(const run_summary& s) {
  const bool is_restore = s.kind == "Restore";
  std::string b;
  if (!s.schedule.empty()) {
    b += "schedule: " + s.schedule + "\n";
  }
  if (is_restore) {
    b += "restore: " + s.name + "\n";
    if (!s.backup_ref.empty()) {
      b += "backup: " + s.backup_ref + "\n";
    }
    if (!s.source.empty()) {
      b += "source: " + s.source + "\n";
    }
    if (!s.targets.empty()) {
      b += "volumes: " + joined(s.targets, ", ") + "\n";
    }
  } else {
    b += "backup: " + s.name + "\n";
  }
  b += "phase: " + s.phase;
  if (!s.reached.empty() && s.reached != s.phase) {
    b += " (in " + s.reached + ")";
  }
  b += "\n";
  if (!s.outcome.empty()) {
    b += "outcome: " + s.outcome + "\n";
  }
  b += "duration: " + seconds_text(s.duration) + "\n";
  b += "held: " + seconds_text(s.held) + "\n";
  b += "bytes: " + bytes_text(s.bytes) + "\n";
  if (!s.archive.empty()) {
    b += "archive: " + s.archive + "\n";
  }
  for (const auto& [dest, outcome] : s.destinations) {
    b += "destination " + dest + ": " + outcome + "\n";
  }
  if (!s.error.empty()) {
    b += "error: " + s.error + "\n";
  }
  return b;
}

}  // namespace

message format_message(const run_summary& s) { return {default_title(s), default_body(s), s.name}; }

std::map<std::string, std::string, std::less<>> template_values(const run_summary& s) {
  const bool is_restore = s.kind == "Restore";
  std::vector<std::string> destinations;
  for (const auto& [dest, outcome] : s.destinations) {
    destinations.push_back(dest + ": " + outcome);
  }
  return {
      {"kind", s.kind},
      {"name", s.name},
      {"result", s.ok ? "succeeded" : "failed"},
      {"phase", s.phase},
      {"reached", s.reached.empty() ? s.phase : s.reached},
      {"schedule", s.schedule},
      {"backup", is_restore ? s.backup_ref : s.name},
      {"restore", is_restore ? s.name : std::string()},
      {"source", s.source},
      {"targets", joined(s.targets, ", ")},
      {"archive", s.archive},
      {"duration", seconds_text(s.duration)},
      {"heldTime", seconds_text(s.held)},
      {"bytes", bytes_text(s.bytes)},
      {"outcome", s.outcome},
      {"destinations", joined(destinations, "; ")},
      {"error", s.error},
  };
}

message format_message(const run_summary& s, const api::notification_template& t) {
  message m = format_message(s);
  if (!t.title && !t.body) {
    return m;
  }
  const auto values = template_values(s);
  if (t.title) {
    m.title = api::render_template(*t.title, values);
  }
  if (t.body) {
    m.body = api::render_template(*t.body, values);
  }
  return m;
}

result<api::notification_template> parse_template_file(std::string_view text) {
  const auto newline = text.find('\n');
  std::string_view title = text.substr(0, newline);
  std::string_view body =
      newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);
  if (title.ends_with('\r')) {
    title.remove_suffix(1);
  }
  api::notification_template t;
  for (auto [name, part, out] :
       {std::tuple{"title", title, &t.title}, std::tuple{"body", body, &t.body}}) {
    if (auto error = api::check_template(part)) {
      return {boost::system::in_place_error, std::string(name) + ": " + *error};
    }
    if (!part.empty()) {
      *out = std::string(part);
    }
  }
  return t;
}

}  // namespace lifeboat::notify
