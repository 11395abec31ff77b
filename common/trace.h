// W3C Trace Context (traceparent: 00-<trace id>-<parent span id>-<flags>): read, or started
// at the first hop, and passed on with a new span id on every call a process makes.
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace kp::trace {

inline constexpr char kHeader[] = "traceparent";

bool IsValid(absl::string_view traceparent);
// A new trace, sampled.
std::string NewTraceparent();
// The same trace with a new span id, for an outgoing call made while handling `parent`
// (a new trace when `parent` is empty or invalid).
std::string Child(absl::string_view parent);
// The 32 hex digits of the trace id ("" if invalid).
std::string TraceId(absl::string_view traceparent);

}  // namespace kp::trace
