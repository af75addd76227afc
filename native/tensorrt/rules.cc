#include "rules.h"

#include "../core/errors.h"

namespace tf::trt {

void checkBatchProfile(const BatchProfile& p) {
  if (p.min < 1 || p.min > kMaxProfileBatch) {
    throw RangeError("the minimum batch must be between 1 and " + std::to_string(kMaxProfileBatch) + ", received " +
                     std::to_string(p.min));
  }
  if (p.max < p.min || p.max > kMaxProfileBatch) {
    throw RangeError("the maximum batch must be between the minimum batch (" + std::to_string(p.min) + ") and " +
                     std::to_string(kMaxProfileBatch) + ", received " + std::to_string(p.max));
  }
  if (p.opt < p.min || p.opt > p.max) {
    throw RangeError("the optimal batch must be between the minimum (" + std::to_string(p.min) + ") and maximum (" +
                     std::to_string(p.max) + ") batch, received " + std::to_string(p.opt));
  }
}

void checkPrecisionSwitches(const PrecisionSwitches& s, int major) {
  if (major >= 11) {
    if (s.fp16Flag || s.int8Flag) {
      throw RangeError("TensorRT " + std::to_string(major) +
                       " has no FP16/INT8 builder flags (networks are strongly typed): build fp16 from an FP16 ONNX "
                       "model and int8 from a Q/DQ ONNX model");
    }
    if (s.legacyCalibrator) {
      throw RangeError("TensorRT " + std::to_string(major) +
                       " removed implicit INT8 calibration (IInt8EntropyCalibrator2): use the Q/DQ model");
    }
    return;
  }
  if (s.stronglyTyped && (s.fp16Flag || s.int8Flag)) {
    throw RangeError("a strongly typed network takes its precision from the model: it accepts no FP16/INT8 flag");
  }
  if (s.legacyCalibrator && !s.int8Flag) throw RangeError("the INT8 calibrator needs the INT8 builder flag");
}

std::string formatDims(const std::vector<int64_t>& dims) {
  std::string out = "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(dims[i]);
  }
  return out + "]";
}

int64_t checkClassifierIo(const TensorDesc& input, const std::vector<TensorDesc>& outputs, const std::string& where) {
  const auto& d = input.dims;
  if (!input.isFloat32) {
    throw ModelLoadError(where + ": input '" + input.name + "' is " + input.dataType +
                         "; trt-flowers engines take float32 NCHW images");
  }
  if (d.size() != 4 || d[1] != 3 || d[2] < 8 || d[2] != d[3]) {
    throw ModelLoadError(where + ": input '" + input.name + "' has shape " + formatDims(d) +
                         "; expected [N, 3, S, S] (N may be dynamic)");
  }
  if (outputs.empty() || outputs.size() > 2) {
    throw ModelLoadError(where + ": expected 1 or 2 outputs (logits, embedding), found " +
                         std::to_string(outputs.size()));
  }
  for (const auto& o : outputs) {
    if (!o.isFloat32) {
      throw ModelLoadError(where + ": output '" + o.name + "' is " + o.dataType +
                           "; trt-flowers engines return float32 logits and embeddings");
    }
    if (o.dims.size() != 2 || o.dims[1] < 1) {
      throw ModelLoadError(where + ": output '" + o.name + "' has shape " + formatDims(o.dims) + "; expected [N, K]");
    }
  }
  return d[2];
}

std::pair<size_t, size_t> pickOutputs(const std::vector<TensorDesc>& outputs) {
  size_t logits = 0;
  size_t embedding = outputs.size() > 1 ? 1 : 0;
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (outputs[i].name == "logits") logits = i;
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (outputs[i].name == "embedding") embedding = i;
  }
  if (outputs.size() > 1 && logits == embedding) embedding = logits == 0 ? 1 : 0;
  return {logits, embedding};
}

std::string versionString(int32_t encoded) {
  return std::to_string(encoded / 10000) + "." + std::to_string((encoded / 100) % 100) + "." +
         std::to_string(encoded % 100);
}

std::string deserializeFailureMessage(const std::string& planPath, const std::string& tensorrtMessages,
                                      const std::string& runningVersion, const std::string& gpuName) {
  std::string msg = "cannot load the TensorRT plan '" + planPath + "'";
  if (!tensorrtMessages.empty()) msg += ": " + tensorrtMessages;
  msg += ". TensorRT plans load only with the TensorRT version and GPU they were built with (here: TensorRT " +
         runningVersion + " on " + gpuName +
         "); rebuild the engine on this machine with `trt-flowers build-engine --backend tensorrt`";
  return msg;
}

}  // namespace tf::trt
