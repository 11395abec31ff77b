// libFuzzer target: page token decoding on arbitrary input. Properties: never crashes;
// anything but a token this codec issued for this query is INVALID_ARGUMENT; what it issues
// decodes to what it encoded. The input is also sealed with the fuzz key and decoded, so the
// decoder behind the signature sees arbitrary payloads too (as it would if the key leaked).
#include <cstdlib>

#include "common/resource/page_token.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const kp::resource::PageTokenCodec codec("fuzz-key");
  static const std::string fingerprint = kp::resource::PageTokenCodec::QueryFingerprint({"events", "kind = OTHER"});
  const std::string input(reinterpret_cast<const char*>(data), size);
  auto decoded = codec.Decode(input, fingerprint);
  if (!decoded.ok() && decoded.status().code() != absl::StatusCode::kInvalidArgument) std::abort();
  auto behind = codec.Decode(codec.Seal(fingerprint + input), fingerprint);
  if (!behind.ok() && behind.status().code() != absl::StatusCode::kInvalidArgument) std::abort();
  // Round trip: the input's bytes as values.
  std::vector<kp::storage::SqlValue> values{input, static_cast<int64_t>(size)};
  if (size >= sizeof(double)) {
    double d;
    std::memcpy(&d, data, sizeof d);
    values.emplace_back(d);
  }
  const std::string token = codec.Encode(fingerprint, values);
  auto back = codec.Decode(token, fingerprint);
  if (!back.ok() || back->size() != values.size()) std::abort();
  if (std::get<std::string>((*back)[0]) != input) std::abort();
  return 0;
}
