// A TorchScript classifier: load, forward (logits + embedding), train/eval mode, save.
#pragma once

#include <torch/script.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "errors.h"
#include "serial_executor.h"
#include "torch_errors.h"

namespace tf {

// Name of the extra file holding the project's metadata inside a TorchScript archive.
inline constexpr const char* kMetadataFile = "trt_flowers.json";

struct ForwardResult {
  at::Tensor logits;     // [N, C] float32, CPU, contiguous
  at::Tensor embedding;  // [N, D] float32, CPU, contiguous (the logits when the model returns only logits)
};

class TorchModel {
 public:
  // Loads a TorchScript file onto device ("cpu", "cuda", "cuda:N"). Throws ModelLoadError, RangeError or
  // DeviceUnavailableError.
  // inference: freeze the module and apply TorchScript's inference passes (torch.jit.optimize_for_inference: BatchNorm
  // and other constants folded into convolutions, MKLDNN on the CPU where libtorch has it). The model can then only
  // run forward(); training, setTraining(true) and save() are refused. When the passes fail (an unusual module) the
  // model stays as loaded and inferenceOptimized() says so.
  static std::shared_ptr<TorchModel> load(const std::string& path, const std::string& device, bool inference = false);

  // Runs the model without gradients on a float32 NCHW batch read in place from data (no copy on CPU).
  // Throws TypeError for a bad shape and RuntimeFailure when the network rejects the input.
  ForwardResult forward(const float* data, const std::vector<int64_t>& shape);

  // Runs the model with gradients on a tensor already on the model's device (used by the trainer).
  std::pair<at::Tensor, at::Tensor> forwardTrain(const at::Tensor& input);

  // The globally pooled backbone features [N, D] (float32, CPU) of a float32 NCHW batch: the module's pooled()
  // method (written by export-backbone), in eval mode and without gradients; the training flag is restored after.
  // Works on a model loaded for inference too (freezing keeps pooled()). Throws RangeError without pooled().
  at::Tensor pooledFeatures(const float* data, const std::vector<int64_t>& shape);

  // Pooled features [N, D] on the model's device -> (logits, embedding) through the module's head() method, with
  // gradients (used by the trainer to train the head on cached features).
  std::pair<at::Tensor, at::Tensor> forwardHead(const at::Tensor& pooled);

  // Whether the module has the pooled() and head() methods; requireHead() throws a RangeError saying what to do.
  bool hasHead() const;
  void requireHead() const;

  void setTraining(bool training);
  bool training() const;

  // Writes the module (with its current weights) as TorchScript, atomically. Throws SaveError.
  void save(const std::string& path);

  // The project's metadata (JSON text: classes, preprocessing, provenance) stored in the TorchScript archive as the
  // extra file kMetadataFile; empty when the file has none. Saved with every save().
  std::string metadata() const;
  void setMetadata(std::string metadata);

  // The module's parameters, listed once at load: the list is read from the JS thread (a trainer's constructor) while
  // the model thread may be running the module, so it never walks the module itself.
  const std::vector<at::Tensor>& parameters() const { return parameters_; }
  // Their dotted names ("features.3.conv.0.weight", "classifier.bias"), parallel to parameters().
  const std::vector<std::string>& parameterNames() const { return parameterNames_; }
  int64_t parameterCount() const;
  // The module's buffers (BatchNorm running statistics and counters), walked now: call on the model's thread.
  std::vector<at::Tensor> buffers() const;
  // Loaded for inference only, and whether the inference passes ran (else the reason they did not).
  bool inferenceOnly() const { return inferenceOnly_; }
  bool inferenceOptimized() const { return inferenceOptimized_; }
  const std::string& inferenceNote() const { return inferenceNote_; }
  const torch::Device& device() const { return device_; }
  const std::string& path() const { return path_; }

  // Runs fn on this model's own thread, waits, and returns its result (at once when called there). forward(),
  // setTraining(), save() and the Trainer's calls go through it, so every libtorch call of the model runs on that
  // one thread (serial_executor.h). That thread is also why the module needs no lock: nothing else touches it.
  template <typename F>
  auto onModelThread(F&& fn) -> decltype(fn()) {
    using R = decltype(fn());
    if constexpr (std::is_void_v<R>) {
      executor_.run(fn);
    } else {
      std::optional<R> result;
      executor_.run([&] { result.emplace(fn()); });
      return std::move(*result);
    }
  }
  // Queues job on the model's thread and returns at once (SerialExecutor::post): for callers that are told of the
  // outcome by the job itself, such as the N-API layer settling a Promise.
  void post(std::function<void()> job) { executor_.post(std::move(job)); }
  bool onModelThreadNow() const { return executor_.isCurrentThread(); }

 private:
  TorchModel(torch::jit::Module module, torch::Device device, std::string path);
  static std::pair<at::Tensor, at::Tensor> splitOutput(const c10::IValue& out);
  // What requireHead() and pooledFeatures() say of a module without pooled()/head(), and what to do.
  RangeError noHeadError() const;

  torch::jit::Module module_;
  torch::Device device_;
  std::string path_;
  // Written on the model thread, read by the JS thread's info getter.
  std::atomic<bool> training_{false};
  bool hasHead_ = false;    // set at load
  bool hasPooled_ = false;  // set at load (an inference-only model keeps pooled(), not head())
  // setMetadata() runs on the JS thread, save() reads the metadata on the model thread.
  mutable std::mutex metadataMutex_;
  std::string metadata_;
  bool inferenceOnly_ = false;
  bool inferenceOptimized_ = false;
  std::string inferenceNote_;
  int64_t parameterCount_ = 0;
  std::vector<at::Tensor> parameters_;
  std::vector<std::string> parameterNames_;
  // Last: destroyed first, so its thread ends before the module goes.
  SerialExecutor executor_;
};

// Checks an NCHW float shape and returns its element count. Throws TypeError naming `what`.
int64_t checkImageShape(const std::vector<int64_t>& shape, const std::string& what);

}  // namespace tf
