// A suite with authentication required: test principals in a keys file that tests may rewrite
// (roles flipped, lines removed), with Redis and the gateway.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/client_context.h>

#include "absl/time/time.h"
#include "tests/integration/harness.h"

namespace kp::testing {

class KeyedSuite {
 public:
  // `lines`: who -> "<principal> <role> [organisations/<id>] [...]" (the keys-file line after
  // the hash); each `who` gets a fresh token.
  static std::unique_ptr<KeyedSuite> Start(SuiteOptions options, const std::map<std::string, std::string>& lines);

  Suite& suite() { return *suite_; }
  const std::string& token(const std::string& who) const { return tokens_.at(who); }
  const std::string& keys_path() const { return keys_path_; }
  // Rewrites `who`'s line (atomically: write, then rename), the others unchanged.
  void SetLine(const std::string& who, const std::string& line);
  // A context calling as `who` ("none": no token).
  std::unique_ptr<grpc::ClientContext> As(const std::string& who, absl::Duration deadline = absl::Seconds(10)) const;

 private:
  void WriteKeys();
  std::unique_ptr<TempDir> dir_;
  std::string keys_path_;
  std::map<std::string, std::string> lines_, tokens_;
  std::unique_ptr<Suite> suite_;
};

}  // namespace kp::testing
