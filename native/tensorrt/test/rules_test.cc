// Self-test of the pure TensorRT rules (no TensorRT, no CUDA): run by scripts/check-tensorrt.sh.
#include <cstdio>
#include <functional>
#include <string>

#include "../../core/errors.h"
#include "../rules.h"

namespace {
int failures = 0;
int checks = 0;

void expect(bool ok, const std::string& what) {
  ++checks;
  if (!ok) {
    ++failures;
    std::fprintf(stderr, "FAILED: %s\n", what.c_str());
  }
}

template <typename E>
void expectThrow(const std::function<void()>& fn, const std::string& needle, const std::string& what) {
  ++checks;
  try {
    fn();
  } catch (const E& e) {
    if (std::string(e.what()).find(needle) == std::string::npos) {
      ++failures;
      std::fprintf(stderr, "FAILED: %s: message '%s' lacks '%s'\n", what.c_str(), e.what(), needle.c_str());
    }
    return;
  } catch (const std::exception& e) {
    ++failures;
    std::fprintf(stderr, "FAILED: %s: wrong exception type: %s\n", what.c_str(), e.what());
    return;
  }
  ++failures;
  std::fprintf(stderr, "FAILED: %s: no exception\n", what.c_str());
}
}  // namespace

int main() {
  using namespace tf::trt;
  checkBatchProfile({1, 8, 32});
  expectThrow<tf::RangeError>([] { checkBatchProfile({0, 1, 1}); }, "minimum batch", "min 0");
  expectThrow<tf::RangeError>([] { checkBatchProfile({4, 2, 8}); }, "optimal batch", "opt < min");
  expectThrow<tf::RangeError>([] { checkBatchProfile({4, 4, 2}); }, "maximum batch", "max < min");
  expectThrow<tf::RangeError>([] { checkBatchProfile({1, 1, kMaxProfileBatch + 1}); }, "maximum batch", "max big");

  checkPrecisionSwitches({false, true, false, false}, 10);  // fp16 flag on 10
  checkPrecisionSwitches({true, false, false, false}, 10);  // strongly typed Q/DQ on 10
  checkPrecisionSwitches({false, false, true, true}, 10);   // legacy calibrator on 10
  checkPrecisionSwitches({true, false, false, false}, 11);
  checkPrecisionSwitches({false, false, false, false}, 11);
  expectThrow<tf::RangeError>([] { checkPrecisionSwitches({false, true, false, false}, 11); }, "FP16 ONNX", "fp16 11");
  expectThrow<tf::RangeError>([] { checkPrecisionSwitches({false, false, true, false}, 11); }, "Q/DQ", "int8 11");
  expectThrow<tf::RangeError>([] { checkPrecisionSwitches({false, false, false, true}, 11); }, "removed", "calib 11");
  expectThrow<tf::RangeError>([] { checkPrecisionSwitches({true, true, false, false}, 10); }, "strongly", "typed+fp16");
  expectThrow<tf::RangeError>(
      [] {
        checkPrecisionSwitches({false, false, false, true}, 10);
      },
      "INT8 builder", "calib w/o int8");

  const TensorDesc in{"input", {-1, 3, 224, 224}, true, "float32"};
  const TensorDesc logits{"logits", {-1, 5}, true, "float32"};
  const TensorDesc emb{"embedding", {-1, 1280}, true, "float32"};
  TensorDesc batched = in;
  batched.dims[0] = 1;
  expect(checkClassifierIo(batched, {logits, emb}, "plan") == 224, "classifier io size");
  expectThrow<tf::ModelLoadError>(
      [&] {
        checkClassifierIo({"x", {1, 1, 28, 28}, true, "float32"}, {logits}, "p");
      },
      "[N, 3, S, S]", "grey input");
  expectThrow<tf::ModelLoadError>(
      [&] {
        checkClassifierIo({"x", {1, 3, 224, 224}, false, "float16"}, {logits}, "p");
      },
      "float16", "half input");
  expectThrow<tf::ModelLoadError>([&] { checkClassifierIo(batched, {}, "p"); }, "outputs", "no outputs");
  expect(pickOutputs({emb, logits}) == std::make_pair<size_t, size_t>(1, 0), "outputs by name");
  expect(pickOutputs({{"a", {-1, 5}, true, ""}, {"b", {-1, 9}, true, ""}}) == std::make_pair<size_t, size_t>(0, 1),
         "outputs by order");
  expect(pickOutputs({logits}) == std::make_pair<size_t, size_t>(0, 0), "one output");
  expect(versionString(101600) == "10.16.0", "version 10.16.0");
  expect(versionString(110100) == "11.1.0", "version 11.1.0");
  const auto msg = deserializeFailureMessage("m.engine", "version tag mismatch", "10.16.0", "NVIDIA H100");
  expect(msg.find("TensorRT 10.16.0 on NVIDIA H100") != std::string::npos && msg.find("rebuild") != std::string::npos,
         "deserialize message");
  expect(formatDims({1, 3, 224, 224}) == "[1, 3, 224, 224]", "formatDims");

  std::printf("%d/%d checks passed\n", checks - failures, checks);
  return failures == 0 ? 0 : 1;
}
