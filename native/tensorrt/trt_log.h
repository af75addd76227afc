// Where TensorRT's messages go. TensorRT keeps the first ILogger it is given for the whole process, so there is one
// process-wide logger; it hands every message to the LogCapture active on the calling thread (a build, a load, an
// inference), which forwards it to that job's sink and keeps the errors for the exception the job throws.
// Messages from threads with no capture (TensorRT's own worker threads) go to the most recent capture of the
// process, else to stderr when TRT_FLOWERS_TENSORRT_LOG asks for them.
#pragma once

#include <NvInferRuntime.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace tf::trt {

// 0 internal error, 1 error, 2 warning, 3 info, 4 verbose (TensorRT's ILogger::Severity values).
using LogSink = std::function<void(int severity, const std::string& message)>;

const char* severityName(int severity);

// The process-wide logger passed to createInferBuilder / createInferRuntime / createParser.
nvinfer1::ILogger& logger();

// Routes TensorRT's messages on this thread to `sink` (may be empty) for its lifetime, keeping errors.
class LogCapture {
 public:
  // Messages above `maxSeverity` (less severe) are dropped before reaching the sink.
  explicit LogCapture(LogSink sink = {}, int maxSeverity = 2);
  ~LogCapture();
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  void add(int severity, const char* message);
  // The error messages seen so far, joined with "; " (newest last, at most 8).
  std::string errors() const;
  void clearErrors();

 private:
  LogSink sink_;
  int maxSeverity_;
  mutable std::mutex mutex_;
  std::vector<std::string> errors_;
  LogCapture* previous_ = nullptr;
};

// IErrorRecorder: keeps the errors TensorRT reports through the API (a failed setInputShape, a bad plan) so that the
// exception for the failed call can say what went wrong. Reference counted by TensorRT; owned by its creator.
class ErrorRecorder : public nvinfer1::IErrorRecorder {
 public:
  int32_t getNbErrors() const noexcept override;
  nvinfer1::ErrorCode getErrorCode(int32_t errorIdx) const noexcept override;
  ErrorDesc getErrorDesc(int32_t errorIdx) const noexcept override;
  bool hasOverflowed() const noexcept override;
  void clear() noexcept override;
  bool reportError(nvinfer1::ErrorCode val, ErrorDesc desc) noexcept override;
  RefCount incRefCount() noexcept override;
  RefCount decRefCount() noexcept override;

  // The recorded errors joined with "; ", then cleared.
  std::string drain();

 private:
  static constexpr size_t kMaxErrors = 32;
  mutable std::mutex mutex_;
  std::vector<std::pair<nvinfer1::ErrorCode, std::string>> errors_;
  bool overflowed_ = false;
  std::atomic<int32_t> refs_{0};
};

// "a; b" of the non-empty parts.
std::string joinMessages(const std::string& a, const std::string& b);

}  // namespace tf::trt
