// UTF-8 for text that goes back to callers (error messages, field violations): every such
// string must be valid UTF-8, or other clients' decoders fail on it.
#pragma once

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace kp::utf8 {

// The length of the well-formed UTF-8 sequence starting at s[i] (1-4), or 0 if the bytes
// there are not one (a lone continuation byte, a truncated or overlong sequence, a surrogate).
size_t SequenceLength(absl::string_view s, size_t i);

bool IsValid(absl::string_view s);

// `s` with each invalid byte replaced by U+FFFD; valid text is returned unchanged.
std::string Valid(absl::string_view s);

// The 1-based character (code point) position of byte `i` of `s`, for error messages.
size_t Column(absl::string_view s, size_t i);

}  // namespace kp::utf8
