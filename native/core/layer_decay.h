// Layer-wise learning-rate decay (the fine-tuning rule of BEiT and ELECTRA): a parameter's rate is the scheduled rate
// times decay^depth, where depth counts the backbone's feature blocks back from the output.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tf {

// The feature block a parameter belongs to: k of the first `features.<k>` pair of segments in its name
// ("features.3.conv.0.weight", "features.features.3.se.fc1.bias" -> 3), else -1.
int64_t featureBlockOf(const std::string& name);

// The depth of each named parameter, in the given (module) order. With N distinct feature blocks ordered by k: the
// last block has depth 1 and the first depth N; a parameter outside the blocks has depth 0 after the last block's
// parameters (the head: pooling projection, classifier), N + 1 before the first block's (a stem outside
// `features.<k>`) and the depth of the block before it in between. Throws RangeError when no name has a
// `features.<k>` pair (the blocks cannot be told apart).
std::vector<int64_t> layerDepths(const std::vector<std::string>& names);

}  // namespace tf
