// Everything that differs between libtorch 1.13 (Debian, CPU) and libtorch 2.x (PyTorch's CUDA builds) lives here.
#pragma once

#include <ATen/autocast_mode.h>
#include <torch/version.h>

namespace tf::compat {

constexpr bool kTorch2 = TORCH_VERSION_MAJOR >= 2;

// Turns CUDA fp16 autocast on or off for the calling thread.
inline void setCudaAutocast(bool enabled) {
#if TORCH_VERSION_MAJOR >= 2 && TORCH_VERSION_MINOR >= 4 || TORCH_VERSION_MAJOR >= 3
  at::autocast::set_autocast_enabled(at::kCUDA, enabled);
  at::autocast::set_autocast_dtype(at::kCUDA, at::kHalf);
#else
  at::autocast::set_enabled(enabled);
#endif
}

// Autocast caches casted weights while enabled; the cache must be dropped after each step.
inline void clearAutocastCache() { at::autocast::clear_cache(); }

}  // namespace tf::compat
