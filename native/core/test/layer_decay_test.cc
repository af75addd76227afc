// The layer-wise decay depths on the parameter names of the project's backbones (scripts/export_backbone.py).
#include "../layer_decay.h"

#include <string>
#include <vector>

#include "../errors.h"
#include "check.h"

namespace {

using Names = std::vector<std::string>;

void blockOfAName() {
  CHECK(tf::featureBlockOf("features.3.conv.0.weight") == 3);
  CHECK(tf::featureBlockOf("features.features.12.se.fc1.bias") == 12);
  CHECK(tf::featureBlockOf("features.stem.conv.weight") == -1);
  CHECK(tf::featureBlockOf("classifier.weight") == -1);
  CHECK(tf::featureBlockOf("backbone.features.0.0.weight") == 0);
  // A tensor named `features` is no module.
  CHECK(tf::featureBlockOf("head.features") == -1);
  CHECK(tf::featureBlockOf("features.1") == -1);
  CHECK(tf::featureBlockOf("myfeatures.1.weight") == -1);
}

// tiny: three blocks, the classifier.
void tiny() {
  const Names names{"features.0.0.weight", "features.0.1.weight", "features.0.1.bias", "features.1.0.weight",
                    "features.2.0.weight", "features.2.1.bias",   "classifier.weight", "classifier.bias"};
  CHECK((tf::layerDepths(names) == std::vector<int64_t>{3, 3, 3, 2, 1, 1, 0, 0}));
}

// mobilenet_v2: features.0 (the stem convolution) .. features.18, then the projection and the classifier.
void mobilenet() {
  Names names;
  for (int k = 0; k <= 18; ++k) names.push_back("features." + std::to_string(k) + ".conv.0.weight");
  names.insert(names.end(), {"project.weight", "project.bias", "classifier.weight"});
  const auto depths = tf::layerDepths(names);
  CHECK(depths.front() == 19);
  CHECK(depths[18] == 1);
  CHECK(depths[19] == 0 && depths[20] == 0 && depths[21] == 0);
}

// rexnet_150: a stem outside the numbered blocks goes one deeper than the first block.
void rexnetStem() {
  const Names names{"features.stem.conv.weight",
                    "features.stem.bn.bias",
                    "features.features.0.conv_dw.conv.weight",
                    "features.features.1.conv_pwl.bn.weight",
                    "features.features.16.conv.weight",
                    "classifier.bias"};
  CHECK((tf::layerDepths(names) == std::vector<int64_t>{4, 4, 3, 2, 1, 0}));
}

// Blocks are ranked by index (gaps do not count), and a parameter between blocks goes with the block before it.
void gapsAndBetween() {
  const Names names{"features.2.weight", "features.2.bias", "norm.weight", "features.7.weight", "fc.weight"};
  CHECK((tf::layerDepths(names) == std::vector<int64_t>{2, 2, 2, 1, 0}));
}

void noBlocks() {
  bool threw = false;
  try {
    tf::layerDepths({"conv1.weight", "fc.weight"});
  } catch (const tf::RangeError& e) {
    threw = std::string(e.what()).find("features.<k>") != std::string::npos &&
            std::string(e.what()).find("layerDecay") != std::string::npos;
  }
  CHECK(threw);
}

}  // namespace

int main() {
  blockOfAName();
  tiny();
  mobilenet();
  rexnetStem();
  gapsAndBetween();
  noBlocks();
  return tftest::finish("layer_decay_test");
}
