#pragma once

// A real S3 server for tests: moto (`python3 -m moto.server`) on a loopback
// port it picks itself, with an IAM user whose key the tests use, and
// signature checking on (every request after the set-up must be signed by
// that key, or it gets 403).

#include "tests/controller/archive/test_support.hpp"

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>

namespace lifeboat::test {

class moto_server {
 public:
  static constexpr const char* bucket = "backups";
  static constexpr const char* region = "us-east-1";

  /// Starts the server, creates the user, its key, a policy allowing s3:*,
  /// and the bucket, then turns authentication on. Parts may be as small as
  /// `min_part_size` (S3's own minimum is 5 MiB; tests use small parts).
  explicit moto_server(const std::filesystem::path& folder, int min_part_size = 64 * 1024)
      : log_(folder / "moto.log") {
    using archive::test::run;
    using archive::test::shell_quote;
    const auto started = run("S3_UPLOAD_PART_MIN_SIZE=" + std::to_string(min_part_size) +
                             " python3 -m moto.server -H 127.0.0.1 -p 0 >" +
                             shell_quote(log_.string()) + " 2>&1 & echo $!");
    pid_ = std::stoi(started.output);
    // The port it bound is in its first lines: no race for a free port.
    const std::regex running(R"(Running on http://127\.0\.0\.1:(\d+))");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (port_ == 0 && std::chrono::steady_clock::now() < deadline) {
      std::ifstream in(log_);
      std::stringstream text;
      text << in.rdbuf();
      std::smatch m;
      const std::string s = text.str();
      if (std::regex_search(s, m, running)) {
        port_ = std::stoi(m[1]);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (port_ == 0) {
      ADD_FAILURE() << "moto did not start; its log:\n" << log_text();
      return;
    }
    // Before authentication is on: any signature will do for the set-up.
    const std::string iam =
        "curl -sS --aws-sigv4 aws:amz:us-east-1:iam -u AKIASETUP:setup " + endpoint() + "/ ";
    run(iam + "-d 'Action=CreateUser&UserName=lifeboat&Version=2010-05-08'");
    const auto key =
        run(iam + "-d 'Action=CreateAccessKey&UserName=lifeboat&Version=2010-05-08'").output;
    std::smatch m;
    if (std::regex_search(key, m, std::regex("<AccessKeyId>([^<]+)</AccessKeyId>"))) {
      key_id_ = m[1];
    }
    if (std::regex_search(key, m, std::regex("<SecretAccessKey>([^<]+)</SecretAccessKey>"))) {
      secret_ = m[1];
    }
    run(iam +
        "--data-urlencode "
        "'PolicyDocument={\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","
        "\"Action\":\"s3:*\",\"Resource\":\"*\"}]}' "
        "-d 'Action=PutUserPolicy&UserName=lifeboat&PolicyName=s3&Version=2010-05-08'");
    run("curl -sS -X PUT --aws-sigv4 aws:amz:us-east-1:s3 -u AKIASETUP:setup " + endpoint() + "/" +
        bucket);
    // From here on every request is checked: a wrong secret gets 403.
    const auto on = run("curl -sS -X POST -H 'Content-Type: text/plain' --data-binary 0 " +
                        endpoint() + "/moto-api/reset-auth");
    EXPECT_NE(on.output.find("\"status\": \"ok\""), std::string::npos) << on.output;
    EXPECT_FALSE(key_id_.empty()) << key;
  }

  moto_server(const moto_server&) = delete;
  moto_server& operator=(const moto_server&) = delete;

  ~moto_server() {
    if (pid_ <= 0) {
      return;
    }
    // Not our child (the shell started it): wait until it is gone or a
    // zombie, then make sure.
    ::kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline) {
      std::ifstream stat("/proc/" + std::to_string(pid_) + "/stat");
      std::string pid, name, state;
      if (!(stat >> pid >> name >> state) || state == "Z") {
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::kill(pid_, SIGKILL);
  }

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  const std::string& key_id() const { return key_id_; }
  const std::string& secret() const { return secret_; }

  /// A signed request with curl(1), as an independent client: its output.
  std::string signed_curl(const std::string& args) const {
    return archive::test::run("curl -sS --aws-sigv4 aws:amz:us-east-1:s3 -u " +
                              archive::test::shell_quote(key_id_ + ":" + secret_) +
                              " -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' " + args)
        .output;
  }

  /// Denies the test user `action` (an IAM action such as "s3:PutObject"),
  /// with authentication off for that one change.
  void deny(const std::string& action) const {
    using archive::test::run;
    run("curl -sS -X POST -H 'Content-Type: text/plain' --data-binary inf " + endpoint() +
        "/moto-api/reset-auth");
    run("curl -sS --aws-sigv4 aws:amz:us-east-1:iam -u AKIASETUP:setup " + endpoint() +
        "/ --data-urlencode 'PolicyDocument={\"Version\":\"2012-10-17\",\"Statement\":[{"
        "\"Effect\":\"Deny\",\"Action\":\"" +
        action +
        "\",\"Resource\":\"*\"}]}' "
        "-d 'Action=PutUserPolicy&UserName=lifeboat&PolicyName=deny&Version=2010-05-08'");
    run("curl -sS -X POST -H 'Content-Type: text/plain' --data-binary 0 " + endpoint() +
        "/moto-api/reset-auth");
  }

  /// The keys of the incomplete multipart uploads in the bucket.
  std::vector<std::string> pending_uploads() const {
    const auto xml = signed_curl("'" + endpoint() + "/" + bucket + "?uploads='");
    std::vector<std::string> keys;
    const std::regex key("<Upload>.*?<Key>([^<]+)</Key>");
    for (std::sregex_iterator it(xml.begin(), xml.end(), key), end; it != end; ++it) {
      keys.push_back((*it)[1]);
    }
    return keys;
  }

  std::string log_text() const {
    std::ifstream in(log_);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

 private:
  std::filesystem::path log_;
  int pid_ = 0;
  int port_ = 0;
  std::string key_id_;
  std::string secret_;
};

}  // namespace lifeboat::test
