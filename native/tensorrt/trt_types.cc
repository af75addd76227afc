#include "trt_types.h"

#include <NvInferVersion.h>

namespace tf::trt {

std::vector<int64_t> dimsOf(const nvinfer1::Dims& d) {
  std::vector<int64_t> out;
  for (int32_t i = 0; i < d.nbDims; ++i) out.push_back(static_cast<int64_t>(d.d[i]));
  return out;
}

const char* dataTypeName(nvinfer1::DataType t) {
  switch (t) {
    case nvinfer1::DataType::kFLOAT:
      return "float32";
    case nvinfer1::DataType::kHALF:
      return "float16";
    case nvinfer1::DataType::kINT8:
      return "int8";
    case nvinfer1::DataType::kINT32:
      return "int32";
    case nvinfer1::DataType::kBOOL:
      return "bool";
    default:
      return "a type other than float32";
  }
}

std::string libraryVersion() {
  return std::to_string(getInferLibMajorVersion()) + "." + std::to_string(getInferLibMinorVersion()) + "." +
         std::to_string(getInferLibPatchVersion());
}

std::string headerVersion() {
  return std::to_string(NV_TENSORRT_MAJOR) + "." + std::to_string(NV_TENSORRT_MINOR) + "." +
         std::to_string(NV_TENSORRT_PATCH);
}

}  // namespace tf::trt
