#include "loss_wrap.h"

#include <memory>

#include "../core/loss.h"
#include "common.h"

namespace tfn {

namespace {
std::vector<int64_t> readIndexArray(const Napi::Value& v, const std::string& name) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    throw tf::TypeError("Expected an Int32Array for `" + name + "`");
  }
  const auto a = v.As<Napi::Int32Array>();
  return std::vector<int64_t>(a.Data(), a.Data() + a.ElementLength());
}

// async tripletLossFromOutputs(logits, numClasses, embedding, labels, triplets, weights): Promise<{loss, ce,
// contrastive, positiveLoss, negativeLoss}>. logits [N, numClasses] and embedding [N, D] row-major Float32Arrays,
// labels an Int32Array of N; triplets {anchor, positive, negAnchor, negative} Int32Arrays of row indices; weights
// {ceWeight, contrastiveWeight, margin}. Throws TypeError/RangeError synchronously for bad arguments; rejects with
// RangeError for weights out of range, labels or indices out of range.
Napi::Value TripletLossFromOutputs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto outputs = std::make_shared<tf::SplitOutputs>();
  tf::LossWeights weights;
  try {
    const auto logits = readFloat32Array(info[0], "logits");
    outputs->numClasses = readInteger(info[1], "numClasses", 1, 1 << 20);
    const auto embedding = readFloat32Array(info[2], "embedding");
    outputs->labels = readIndexArray(info[3], "labels");
    const auto n = static_cast<int64_t>(outputs->labels.size());
    if (static_cast<int64_t>(logits.length) != n * outputs->numClasses) {
      throw tf::RangeError("logits must hold labels.length x numClasses = " + std::to_string(n * outputs->numClasses) +
                           " values, received " + std::to_string(logits.length));
    }
    if (n > 0 && (embedding.length == 0 || embedding.length % n != 0)) {
      throw tf::RangeError("embedding must hold labels.length x D values, received " +
                           std::to_string(embedding.length) + " for " + std::to_string(n) + " labels");
    }
    outputs->logits = logits.data;
    outputs->embedding = embedding.data;
    outputs->dim = n > 0 ? static_cast<int64_t>(embedding.length) / n : 1;
    if (!info[4].IsObject()) throw tf::TypeError("Expected an object for `triplets`");
    const auto t = info[4].As<Napi::Object>();
    outputs->anchor = readIndexArray(t.Get("anchor"), "triplets.anchor");
    outputs->positive = readIndexArray(t.Get("positive"), "triplets.positive");
    outputs->negAnchor = readIndexArray(t.Get("negAnchor"), "triplets.negAnchor");
    outputs->negative = readIndexArray(t.Get("negative"), "triplets.negative");
    if (!info[5].IsObject()) throw tf::TypeError("Expected an object for `weights`");
    const auto w = info[5].As<Napi::Object>();
    weights.ceWeight = readNumber(w.Get("ceWeight"), "ceWeight");
    weights.contrastiveWeight = readNumber(w.Get("contrastiveWeight"), "contrastiveWeight");
    weights.margin = readNumber(w.Get("margin"), "margin");
    if (w.Has("labelSmoothing") && !w.Get("labelSmoothing").IsUndefined()) {
      weights.labelSmoothing = readNumber(w.Get("labelSmoothing"), "labelSmoothing");
    }
  } catch (...) {
    rethrowAsJs(env);
  }
  auto result = std::make_shared<tf::LossValues>();
  return PromiseWorker::Run(
      env, "trt-flowers:tripletLossFromOutputs",
      [outputs, weights, result] { *result = tf::tripletLossFromOutputs(*outputs, weights); },
      [result](Napi::Env env) -> Napi::Value {
        auto out = Napi::Object::New(env);
        out.Set("loss", result->loss);
        out.Set("ce", result->ce);
        out.Set("contrastive", result->contrastive);
        out.Set("positiveLoss", result->positive);
        out.Set("negativeLoss", result->negative);
        return out;
      },
      {info[0], info[2]});
}
}  // namespace

void InitLoss(Napi::Env env, Napi::Object exports) {
  exports.Set("tripletLossFromOutputs", Napi::Function::New(env, TripletLossFromOutputs, "tripletLossFromOutputs"));
}

}  // namespace tfn
