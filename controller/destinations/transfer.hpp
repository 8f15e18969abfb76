#pragma once

// libcurl behind a small interface, for the remote destinations (S3, WebDAV,
// SFTP) only: nothing here includes curl's headers, so only the .cpp files of
// those destinations see them. Secrets passed in `transfer_options` are
// handed to libcurl and never put into a message.

#include "controller/archive/error.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lifeboat::destinations::detail {

/// How to reach and authenticate to a server; shared by every transfer of a
/// destination.
struct transfer_options {
  std::optional<std::string> ca_file;
  bool insecure_skip_verify = false;
  std::chrono::seconds connect_timeout{30};
  /// A transfer moving less than one byte a second for this long is aborted.
  std::chrono::seconds stall_timeout{120};
  /// "user:password" or "key id:secret"; empty for none. A secret.
  std::string user_password;
  /// "aws:amz:<region>:s3" for AWS Signature V4, empty otherwise.
  std::string aws_sigv4;
  /// SFTP: the private key file, and the known_hosts file checked strictly.
  std::string ssh_private_key_file;
  std::string ssh_known_hosts_file;
};

/// A request body read from an open file: its first `size` bytes, read
/// with pread so that a retried request can start over.
struct file_body {
  int fd = -1;
  std::uint64_t size = 0;
};

/// One request. A body, when present (in memory or in a file), is sent with
/// its length; its bytes (or the file) must outlive the call.
struct request {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers;  ///< "Name: value"
  std::optional<std::span<const char>> body;
  std::optional<file_body> body_file;
  /// SFTP commands run after the transfer (e.g. "rename a b").
  std::vector<std::string> post_quote;
  /// SFTP: list a directory's names instead of reading a file.
  bool directory_listing = false;
};

/// How a finished transfer went: a transport failure (curl_code != 0, with
/// curl's own message), or the server's HTTP status (0 for SFTP) and body.
struct response {
  int curl_code = 0;
  std::string curl_message;
  long status = 0;
  std::map<std::string, std::string> headers;  ///< names in lower case
  std::string body;                            ///< capped at body_limit

  /// Connection refused or reset, timeouts, a truncated answer: worth retrying.
  bool transient_transport_failure() const;
  /// Could not resolve or connect, or TLS refused the peer: the server is not
  /// there or not the one configured.
  bool unreachable() const;
};

/// The most of a response body that is kept (listings, error documents).
inline constexpr std::size_t body_limit = 16 << 20;

/// Performs `req` to its end.
response perform(const transfer_options& options, const request& req);

/// A transfer driven step by step by its caller, so that a download is read
/// and an upload written as the caller's own stream: libcurl's multi
/// interface, paused when the caller has nothing to give or take. Not
/// thread-safe: one thread calls read(), or write() then finish().
class stream {
 public:
  /// Starts a download of `req` (its body is ignored).
  static std::unique_ptr<stream> download(const transfer_options& options, request req);
  /// Starts an upload of unknown length (chunked over HTTP, streamed over SFTP).
  static std::unique_ptr<stream> upload(const transfer_options& options, request req);
  ~stream();

  /// Download: up to `into.size()` bytes of the body; 0 once the body has
  /// ended (then outcome() says how the transfer went). Any status other
  /// than 2xx ends the body at once; its error document is in outcome().
  std::size_t read(std::span<char> into);

  /// Upload: hands `bytes` over; returns false when the transfer has ended
  /// (failed) before taking them all: see outcome().
  bool write(std::span<const char> bytes);
  /// Upload: ends the body and waits for the server's answer.
  const response& finish();

  /// The transfer's result so far (complete once read() returned 0 or
  /// finish() returned).
  const response& outcome() const;

  /// Defined in the .cpp, where perform() uses it too.
  struct impl;

 private:
  explicit stream(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

/// `text` with every byte except A-Z a-z 0-9 - . _ ~ (and '/' when
/// `keep_slash`) written as %XX, upper-case hex: AWS's URI encoding, which
/// is also valid for WebDAV paths.
std::string uri_encode(std::string_view text, bool keep_slash);

/// The lower-case hex SHA-256 of `bytes`.
std::string sha256_hex(std::span<const char> bytes);

/// Incremental SHA-256.
class sha256_hasher {
 public:
  sha256_hasher();
  ~sha256_hasher();
  sha256_hasher(const sha256_hasher&) = delete;
  sha256_hasher& operator=(const sha256_hasher&) = delete;
  void update(std::span<const char> bytes);
  /// Lower-case hex; the hasher then starts over.
  std::string finish();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// The content of a secret file, without trailing white space; an error
/// naming the field and the file (never the content) when it cannot be read
/// or is empty.
archive::result<std::string> read_secret_file(std::string_view what, std::string_view field,
                                              const std::string& path);

/// An XML element, namespaces dropped (S3 and WebDAV answers).
struct xml_element {
  std::string name;  ///< local name
  std::string text;  ///< the concatenated text directly inside
  std::vector<xml_element> children;

  const xml_element* child(std::string_view local_name) const;
  std::string child_text(std::string_view local_name) const;
  std::vector<const xml_element*> all(std::string_view local_name) const;
};

/// Parses `text` (never loads anything from the network or files).
std::optional<xml_element> parse_xml(std::string_view text);

/// "2024-05-01T03:00:00.000Z" (S3) or "Wed, 01 May 2024 03:00:00 GMT"
/// (HTTP dates, WebDAV); unset when it is neither.
std::optional<std::chrono::system_clock::time_point> parse_timestamp(std::string_view text);

}  // namespace lifeboat::destinations::detail
