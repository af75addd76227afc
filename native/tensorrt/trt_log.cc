#include "trt_log.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace tf::trt {

namespace {
thread_local LogCapture* tCapture = nullptr;
std::mutex gLatestMutex;
LogCapture* gLatest = nullptr;

// TRT_FLOWERS_TENSORRT_LOG=error|warning|info|verbose prints uncaptured messages up to that severity.
int stderrLevel() {
  static const int level = [] {
    const char* v = std::getenv("TRT_FLOWERS_TENSORRT_LOG");
    if (!v) return 1;
    if (!std::strcmp(v, "verbose")) return 4;
    if (!std::strcmp(v, "info")) return 3;
    if (!std::strcmp(v, "warning")) return 2;
    return 1;
  }();
  return level;
}

class ProcessLogger : public nvinfer1::ILogger {
 public:
  void log(Severity severity, const char* msg) noexcept override {
    const int s = static_cast<int>(severity);
    if (tCapture) {
      tCapture->add(s, msg);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(gLatestMutex);
      if (gLatest) {
        gLatest->add(s, msg);
        return;
      }
    }
    if (s <= stderrLevel()) std::fprintf(stderr, "[TensorRT] %s: %s\n", severityName(s), msg);
  }
};
}  // namespace

const char* severityName(int severity) {
  switch (severity) {
    case 0:
      return "internal error";
    case 1:
      return "error";
    case 2:
      return "warning";
    case 3:
      return "info";
    default:
      return "verbose";
  }
}

nvinfer1::ILogger& logger() {
  // Never destroyed: TensorRT may log while the process exits.
  static auto* instance = new ProcessLogger();
  return *instance;
}

LogCapture::LogCapture(LogSink sink, int maxSeverity) : sink_(std::move(sink)), maxSeverity_(maxSeverity) {
  previous_ = tCapture;
  tCapture = this;
  std::lock_guard<std::mutex> lock(gLatestMutex);
  gLatest = this;
}

LogCapture::~LogCapture() {
  tCapture = previous_;
  std::lock_guard<std::mutex> lock(gLatestMutex);
  if (gLatest == this) gLatest = previous_;
}

void LogCapture::add(int severity, const char* message) {
  const std::string text = message ? message : "";
  if (severity <= 1) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (errors_.size() == 8) errors_.erase(errors_.begin());
    errors_.push_back(text);
  }
  if (sink_ && severity <= maxSeverity_) {
    try {
      sink_(severity, text);
    } catch (...) {
      // A sink must not throw into TensorRT.
    }
  }
}

std::string LogCapture::errors() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  for (const auto& e : errors_) out = joinMessages(out, e);
  return out;
}

void LogCapture::clearErrors() {
  std::lock_guard<std::mutex> lock(mutex_);
  errors_.clear();
}

int32_t ErrorRecorder::getNbErrors() const noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int32_t>(errors_.size());
}

nvinfer1::ErrorCode ErrorRecorder::getErrorCode(int32_t errorIdx) const noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  if (errorIdx < 0 || static_cast<size_t>(errorIdx) >= errors_.size()) return nvinfer1::ErrorCode::kINVALID_ARGUMENT;
  return errors_[static_cast<size_t>(errorIdx)].first;
}

nvinfer1::IErrorRecorder::ErrorDesc ErrorRecorder::getErrorDesc(int32_t errorIdx) const noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  if (errorIdx < 0 || static_cast<size_t>(errorIdx) >= errors_.size()) return "index out of range";
  return errors_[static_cast<size_t>(errorIdx)].second.c_str();
}

bool ErrorRecorder::hasOverflowed() const noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  return overflowed_;
}

void ErrorRecorder::clear() noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  errors_.clear();
  overflowed_ = false;
}

bool ErrorRecorder::reportError(nvinfer1::ErrorCode val, ErrorDesc desc) noexcept {
  try {
    std::lock_guard<std::mutex> lock(mutex_);
    if (errors_.size() >= kMaxErrors) {
      overflowed_ = true;
    } else {
      errors_.emplace_back(val, desc ? desc : "");
    }
  } catch (...) {
    return true;
  }
  // Only internal errors are fatal for TensorRT's purposes; returning true would abort the build or run.
  return val == nvinfer1::ErrorCode::kINTERNAL_ERROR;
}

nvinfer1::IErrorRecorder::RefCount ErrorRecorder::incRefCount() noexcept { return ++refs_; }

nvinfer1::IErrorRecorder::RefCount ErrorRecorder::decRefCount() noexcept { return --refs_; }

std::string ErrorRecorder::drain() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  for (const auto& e : errors_) out = joinMessages(out, e.second);
  if (overflowed_) out = joinMessages(out, "(more errors not shown)");
  errors_.clear();
  overflowed_ = false;
  return out;
}

std::string joinMessages(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  if (a.find(b) != std::string::npos) return a;
  return a + "; " + b;
}

}  // namespace tf::trt
