// Pure rules of the TensorRT builder and runtime: no TensorRT or CUDA header is needed, so they compile and can be
// tested anywhere. Which precision a build uses is decided in TypeScript (src/engine/tensorrt-plan.ts); these
// checks are the native side's guard against requests the compiled-in TensorRT cannot honour.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tf::trt {

// The batch range of the optimisation profile: kMIN, kOPT and kMAX of the input's first dimension.
struct BatchProfile {
  int64_t min = 1;
  int64_t opt = 1;
  int64_t max = 1;
};

// Largest batch a profile may ask for (device buffers for it are allocated per execution context).
constexpr int64_t kMaxProfileBatch = 4096;

// Throws RangeError naming the bad value unless 1 <= min <= opt <= max <= kMaxProfileBatch.
void checkBatchProfile(const BatchProfile& p);

// The precision switches of one build, as chosen by the caller.
struct PrecisionSwitches {
  bool stronglyTyped = false;     // NetworkDefinitionCreationFlag::kSTRONGLY_TYPED (always on, and ignored, in 11)
  bool fp16Flag = false;          // BuilderFlag::kFP16 (TensorRT 10 only)
  bool int8Flag = false;          // BuilderFlag::kINT8 (TensorRT 10 only)
  bool legacyCalibrator = false;  // IInt8EntropyCalibrator2 (TensorRT 10 only; needs int8Flag)
};

// Throws RangeError when TensorRT `major` cannot honour the switches: TensorRT 11 removed the precision flags and
// implicit calibration; a strongly typed network takes no precision flags; the calibrator needs kINT8.
void checkPrecisionSwitches(const PrecisionSwitches& s, int major);

// Checks the I/O of a classifier network: one float input [N, 3, H, W] and one or two float outputs of rank 2.
// `inputDims` and `outputDims` are the dimensions TensorRT reports (-1 for a dynamic one). Throws ModelLoadError
// saying what the network has instead. Returns H (== W).
struct TensorDesc {
  std::string name;
  std::vector<int64_t> dims;
  bool isFloat32 = true;
  std::string dataType;  // for messages
};
int64_t checkClassifierIo(const TensorDesc& input, const std::vector<TensorDesc>& outputs, const std::string& where);

// Picks the logits and embedding outputs: by name ('logits', 'embedding'), else the first and the second (the
// embedding is the logits when there is one output). Returns their indices into `outputs`.
std::pair<size_t, size_t> pickOutputs(const std::vector<TensorDesc>& outputs);

// "10.16.0" from a TensorRT version number as getInferLibVersion() returns it (major * 10000 + minor * 100 + patch
// for 10.x and 11.x).
std::string versionString(int32_t encoded);

// The message for a plan TensorRT refused to deserialize: what TensorRT said, the version running here, and how to
// get a plan that loads.
std::string deserializeFailureMessage(const std::string& planPath, const std::string& tensorrtMessages,
                                      const std::string& runningVersion, const std::string& gpuName);

// "[1, 3, 224, 224]".
std::string formatDims(const std::vector<int64_t>& dims);

}  // namespace tf::trt
