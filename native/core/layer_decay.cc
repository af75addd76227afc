#include "layer_decay.h"

#include <algorithm>
#include <cctype>

#include "errors.h"

namespace tf {

namespace {

std::vector<std::string> segmentsOf(const std::string& name) {
  std::vector<std::string> out;
  size_t begin = 0;
  while (true) {
    const size_t dot = name.find('.', begin);
    out.push_back(name.substr(begin, dot == std::string::npos ? std::string::npos : dot - begin));
    if (dot == std::string::npos) return out;
    begin = dot + 1;
  }
}

bool isIndex(const std::string& s) {
  return !s.empty() && s.size() <= 9 &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
}

}  // namespace

int64_t featureBlockOf(const std::string& name) {
  const auto segments = segmentsOf(name);
  // The last segment is the tensor's own name (weight, bias), never a module.
  for (size_t i = 0; i + 2 < segments.size(); ++i) {
    if (segments[i] == "features" && isIndex(segments[i + 1])) return std::stoll(segments[i + 1]);
  }
  return -1;
}

std::vector<int64_t> layerDepths(const std::vector<std::string>& names) {
  std::vector<int64_t> blocks;
  blocks.reserve(names.size());
  for (const auto& n : names) blocks.push_back(featureBlockOf(n));
  std::vector<int64_t> ks;
  for (const auto k : blocks) {
    if (k >= 0) ks.push_back(k);
  }
  if (ks.empty()) {
    throw RangeError(
        "layerDecay (model.layer_decay) below 1 needs a backbone whose blocks are named `features.<k>` (as "
        "mobilenet_v2, rexnet_150 and tiny are), but none of the model's " +
        std::to_string(names.size()) + " parameter names has such a segment (the first is '" +
        (names.empty() ? std::string() : names.front()) + "'); set it to 1 to train without it");
  }
  std::sort(ks.begin(), ks.end());
  ks.erase(std::unique(ks.begin(), ks.end()), ks.end());
  const auto count = static_cast<int64_t>(ks.size());
  const auto depthOfBlock = [&](int64_t k) {
    return count - static_cast<int64_t>(std::lower_bound(ks.begin(), ks.end(), k) - ks.begin());
  };
  size_t last = 0;
  for (size_t i = 0; i < blocks.size(); ++i) {
    if (blocks[i] >= 0) last = i;
  }
  std::vector<int64_t> depths(names.size(), count + 1);
  int64_t previous = -1;  // depth of the last block parameter seen
  for (size_t i = 0; i < blocks.size(); ++i) {
    if (blocks[i] >= 0) {
      previous = depthOfBlock(blocks[i]);
      depths[i] = previous;
    } else if (i > last) {
      depths[i] = 0;
    } else if (previous >= 0) {
      depths[i] = previous;
    }
  }
  return depths;
}

}  // namespace tf
