// kp-bench generate: the large benchmark dataset (see dataset.cc).
#pragma once

#include <string>

namespace kp::bench {

// Loads the dataset at --scale through `target` (a gateway or a server of every service);
// prints per-collection load times to stderr and a JSON summary to stdout. 0 on success.
int GenerateDataset(const std::string& target);

}  // namespace kp::bench
