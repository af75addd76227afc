// The training objective, defined once: cross-entropy on the logits plus a cosine-embedding loss that pulls each
// anchor towards its positive and pushes it from its negative. The training step (trainer.cc) and the evaluation of
// a whole split from precomputed outputs (tripletLossFromOutputs) both call tripletLoss.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace tf {

struct LossWeights {
  double ceWeight = 1.0;           // weight of the classification loss
  double contrastiveWeight = 1.0;  // weight of the cosine-embedding loss
  double margin = 0.0;             // CosineEmbeddingLoss margin for negatives, in [-1, 1]
  double labelSmoothing = 0.0;     // cross-entropy against (1 - s) one-hot + s / C, in [0, 1)
};

// RangeError naming the weight unless each is finite and in range (ceWeight, contrastiveWeight 0..1000; margin -1..1;
// labelSmoothing 0..0.99).
void validateLossWeights(const LossWeights& weights);

// Scalar tensors (same dtype and device as the inputs).
struct LossTerms {
  at::Tensor loss;         // ceWeight * ce + contrastiveWeight * contrastive
  at::Tensor ce;           // mean cross-entropy of logits [N, C] against labels [N] (label-smoothed when asked)
  at::Tensor contrastive;  // positive + negative
  at::Tensor positive;     // mean of 1 - cos(anchor_i, positive_i)
  at::Tensor negative;     // mean of max(0, cos(negAnchor_j, negative_j) - margin); 0 when there are no pairs
};

// anchor/positive: [P, D]; negAnchor/negative: [Q, D] (Q may be 0). In the training step the anchors are the
// queries (both sets); in a split's evaluation they are the images that have a positive and a negative.
LossTerms tripletLoss(const at::Tensor& logits, const at::Tensor& labels, const at::Tensor& anchor,
                      const at::Tensor& positive, const at::Tensor& negAnchor, const at::Tensor& negative,
                      const LossWeights& weights);

// Host-side outputs of one split: logits [N, C] and embeddings [N, D], row-major float32, labels [N], and the
// index pairs of its triplets (anchor -> positive, negAnchor -> negative, all in 0..N-1).
struct SplitOutputs {
  const float* logits = nullptr;
  int64_t numClasses = 0;
  const float* embedding = nullptr;
  int64_t dim = 0;
  std::vector<int64_t> labels;
  std::vector<int64_t> anchor, positive, negAnchor, negative;
};

struct LossValues {
  double loss = 0, ce = 0, contrastive = 0, positive = 0, negative = 0;
};

// tripletLoss over a split's outputs, computed in float64 on the CPU. Throws RangeError for bad labels or indices.
LossValues tripletLossFromOutputs(const SplitOutputs& outputs, const LossWeights& weights);

// RangeError unless every label is in 0..numClasses-1.
void checkLabels(const at::Tensor& labels, int64_t numClasses);

}  // namespace tf
