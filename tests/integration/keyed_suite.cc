// KeyedSuite: see keyed_suite.h.
#include "tests/integration/keyed_suite.h"

#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/auth/keys.h"

namespace kp::testing {

std::unique_ptr<KeyedSuite> KeyedSuite::Start(SuiteOptions options, const std::map<std::string, std::string>& lines) {
  auto k = std::unique_ptr<KeyedSuite>(new KeyedSuite());
  k->dir_ = std::make_unique<TempDir>();
  k->keys_path_ = k->dir_->path() + "/keys.txt";
  k->lines_ = lines;
  for (const auto& [who, line] : lines) k->tokens_[who] = absl::StrCat("kp_test_", who, "_", UniqueId("t"));
  k->WriteKeys();
  options.keys_file = k->keys_path_;
  k->suite_ = Suite::Start(std::move(options));
  if (k->suite_ == nullptr) return nullptr;
  return k;
}

void KeyedSuite::WriteKeys() {
  const std::string tmp = keys_path_ + ".tmp";
  {
    std::ofstream out(tmp);
    for (const auto& [who, line] : lines_) out << auth::Sha256Hex(tokens_.at(who)) << " " << line << "\n";
  }
  std::rename(tmp.c_str(), keys_path_.c_str());
}

void KeyedSuite::SetLine(const std::string& who, const std::string& line) {
  lines_[who] = line;
  WriteKeys();
}

std::unique_ptr<grpc::ClientContext> KeyedSuite::As(const std::string& who, absl::Duration deadline) const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  if (who != "none") ctx->AddMetadata("authorization", absl::StrCat("Bearer ", tokens_.at(who)));
  return ctx;
}

}  // namespace kp::testing
