# Sets TF_TORCH_HAS_CUDA when the libtorch found by find_package(Torch) was built with CUDA.
set(TF_TORCH_HAS_CUDA OFF)
if(TARGET torch_cuda OR TORCH_CUDA_LIBRARIES OR CUDA_FOUND)
  set(TF_TORCH_HAS_CUDA ON)
endif()
