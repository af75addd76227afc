#include "loss.h"

#include <torch/nn/functional/loss.h>
#include <torch/torch.h>

#include <string>

#include "errors.h"

namespace tf {

namespace F = torch::nn::functional;

void validateLossWeights(const LossWeights& w) {
  requireFinite(w.ceWeight, "ceWeight", 0.0, 1e3);
  requireFinite(w.contrastiveWeight, "contrastiveWeight", 0.0, 1e3);
  requireFinite(w.margin, "margin", -1.0, 1.0);
  requireFinite(w.labelSmoothing, "labelSmoothing", 0.0, 0.99);
}

void checkLabels(const at::Tensor& labels, int64_t numClasses) {
  if (labels.numel() == 0) return;
  const auto maxLabel = labels.max().item<int64_t>();
  const auto minLabel = labels.min().item<int64_t>();
  if (minLabel < 0 || maxLabel >= numClasses) {
    throw RangeError("labels must be between 0 and " + std::to_string(numClasses - 1) + " (the model has " +
                     std::to_string(numClasses) + " classes), received " +
                     std::to_string(minLabel < 0 ? minLabel : maxLabel));
  }
}

LossTerms tripletLoss(const at::Tensor& logits, const at::Tensor& labels, const at::Tensor& anchor,
                      const at::Tensor& positive, const at::Tensor& negAnchor, const at::Tensor& negative,
                      const LossWeights& w) {
  const auto opts = F::CosineEmbeddingLossFuncOptions().margin(w.margin);
  const auto scalarZero = [&] { return torch::zeros({}, anchor.options()); };
  LossTerms t;
  t.ce = F::cross_entropy(logits, labels, F::CrossEntropyFuncOptions().label_smoothing(w.labelSmoothing));
  t.positive = anchor.size(0)
                   ? F::cosine_embedding_loss(anchor, positive, torch::ones({anchor.size(0)}, anchor.options()), opts)
                   : scalarZero();
  t.negative = negAnchor.size(0) ? F::cosine_embedding_loss(negAnchor, negative,
                                                            -torch::ones({negAnchor.size(0)}, anchor.options()), opts)
                                 : scalarZero();
  t.contrastive = t.positive + t.negative;
  t.loss = w.ceWeight * t.ce + w.contrastiveWeight * t.contrastive;
  return t;
}

namespace {
at::Tensor indexTensor(const std::vector<int64_t>& idx, int64_t n, const char* name) {
  for (const auto i : idx) {
    if (i < 0 || i >= n) {
      throw RangeError(std::string(name) + " indices must be between 0 and " + std::to_string(n - 1) + ", received " +
                       std::to_string(i));
    }
  }
  return torch::tensor(idx, torch::kLong);
}
}  // namespace

LossValues tripletLossFromOutputs(const SplitOutputs& o, const LossWeights& w) {
  const auto n = static_cast<int64_t>(o.labels.size());
  if (n == 0) return {};
  if (o.numClasses < 1 || o.dim < 1) throw RangeError("numClasses and the embedding size must be at least 1");
  if (o.anchor.size() != o.positive.size() || o.negAnchor.size() != o.negative.size()) {
    throw RangeError("each anchor needs one partner (anchor/positive and negAnchor/negative lengths differ)");
  }
  validateLossWeights(w);
  torch::NoGradGuard noGrad;
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  // float64, like the reference arithmetic: a split's mean over hundreds of images keeps its last digits.
  const auto logits = torch::from_blob(const_cast<float*>(o.logits), {n, o.numClasses}, torch::kFloat32).to(f64);
  const auto emb = torch::from_blob(const_cast<float*>(o.embedding), {n, o.dim}, torch::kFloat32).to(f64);
  const auto labels = torch::tensor(o.labels, torch::kLong);
  checkLabels(labels, o.numClasses);
  const auto pick = [&](const std::vector<int64_t>& idx, const char* name) {
    return emb.index_select(0, indexTensor(idx, n, name));
  };
  const auto t = tripletLoss(logits, labels, pick(o.anchor, "anchor"), pick(o.positive, "positive"),
                             pick(o.negAnchor, "negAnchor"), pick(o.negative, "negative"), w);
  const auto v = torch::stack({t.loss, t.ce, t.contrastive, t.positive, t.negative}).contiguous();
  const double* p = v.data_ptr<double>();
  return {p[0], p[1], p[2], p[3], p[4]};
}

}  // namespace tf
