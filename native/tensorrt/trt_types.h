// Small conversions between TensorRT's types and ours, shared by the builder, the runtime and the N-API wrapper.
#pragma once

#include <NvInferRuntime.h>

#include <cstdint>
#include <string>
#include <vector>

namespace tf::trt {

std::vector<int64_t> dimsOf(const nvinfer1::Dims& d);

// "float32", "float16", "int8", ... for messages.
const char* dataTypeName(nvinfer1::DataType t);

// The TensorRT library loaded at run time ("10.16.0").
std::string libraryVersion();

// The TensorRT headers this code was compiled against ("10.16.0").
std::string headerVersion();

}  // namespace tf::trt
