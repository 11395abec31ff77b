// The canonical bytes of a message: unknown fields dropped, serialized deterministically (map
// entries sorted), so that equivalent encodings of one message give one byte string. Keys the
// gateway's cache and binds request ids to their requests.
#pragma once

#include <string>

#include <google/protobuf/message.h>

namespace kp {

// `message` as canonical bytes; it loses its unknown fields.
std::string CanonicalBytes(google::protobuf::Message& message);

}  // namespace kp
