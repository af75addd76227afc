# Data-parallel training (native/dist) over the c10d of the libtorch found by find_package(Torch): the TCPStore
# rendezvous and at least one of two backends, each detected on its own (headers, then a compile and link check of
# the symbols the addon uses, so a libtorch built without them is caught here):
# - Gloo (CPU): Debian's libtorch 1.13 exports ProcessGroupGloo, but its header includes gloo's headers (Debian:
#   libgloo-dev) and compiles only with USE_DISTRIBUTED and USE_C10D_GLOO defined. PyTorch's 2.x wheels ship c10d
#   without gloo's headers.
# - NCCL (CUDA): a CUDA libtorch's ProcessGroupNCCL (PyTorch's wheels have it) and nccl.h (the wheels' nvidia-nccl
#   package, NCCL_ROOT / NCCL_INCLUDE_DIR, or the system's libnccl-dev); USE_C10D_NCCL defined.
# Sets TF_C10D_GLOO and TF_C10D_NCCL, TF_TORCH_HAS_DIST (either), TF_TORCH_DIST_BACKENDS (their names),
# TF_TORCH_DIST_NOTE (why a backend is missing), TF_DIST_DEFINITIONS and TF_NCCL_INCLUDE_DIRS (for the addon).
set(TF_TORCH_HAS_DIST OFF)
set(TF_C10D_GLOO OFF)
set(TF_C10D_NCCL OFF)
set(TF_TORCH_DIST_BACKENDS "")
set(TF_DIST_DEFINITIONS "")
set(_tf_dist_notes "")
include(CheckCXXSourceCompiles)

# The check programs build with the addon's language level (C++20 for libtorch 2.12+) and link the library files
# themselves (a 2.x libtorch's imported targets do not carry into a check's project). Only the check's own symbols
# must resolve: what the libraries need (CUDA's) is found at run time.
set(_tf_std_flag "-std=c++${CMAKE_CXX_STANDARD} -Wl,--unresolved-symbols=ignore-in-shared-libs")
get_filename_component(_tf_torch_libdir "${TORCH_LIBRARY}" DIRECTORY)
set(_tf_torch_libs "")
foreach(_lib torch torch_cpu c10 torch_cuda c10_cuda)
  find_library(_tf_lib_${_lib} ${_lib} PATHS "${_tf_torch_libdir}" NO_DEFAULT_PATH)
  if(_tf_lib_${_lib})
    list(APPEND _tf_torch_libs "${_tf_lib_${_lib}}")
  endif()
endforeach()

# --- Gloo ---
# A 2.x libtorch found with gloo headers from elsewhere (Debian's libgloo-dev next to a PyTorch wheel) passes when
# the check links; checked here with torch 2.14.1: one- and two-rank groups and a trainer ran.
find_path(TF_C10D_GLOO_HEADER torch/csrc/distributed/c10d/ProcessGroupGloo.hpp HINTS ${TORCH_INCLUDE_DIRS})
find_path(TF_GLOO_HEADER gloo/config.h HINTS ${TORCH_INCLUDE_DIRS})
if(NOT TF_C10D_GLOO_HEADER)
  list(APPEND _tf_dist_notes "gloo: libtorch has no c10d ProcessGroupGloo header")
elseif(NOT TF_GLOO_HEADER)
  list(APPEND _tf_dist_notes "gloo: gloo's headers are missing (Debian: apt-get install libgloo-dev)")
else()
  set(CMAKE_REQUIRED_FLAGS "${_tf_std_flag}")
  set(CMAKE_REQUIRED_INCLUDES ${TORCH_INCLUDE_DIRS})
  set(CMAKE_REQUIRED_DEFINITIONS -DUSE_DISTRIBUTED -DUSE_C10D_GLOO -D_GLIBCXX_USE_CXX11_ABI=1)
  set(CMAKE_REQUIRED_LIBRARIES ${_tf_torch_libs})
  set(CMAKE_REQUIRED_QUIET ON)
  check_cxx_source_compiles([=[
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
int main() {
  c10d::TCPStoreOptions o;
  auto store = c10::make_intrusive<c10d::TCPStore>("127.0.0.1", o);
  auto prefixed = c10::make_intrusive<c10d::PrefixStore>("p", store);
  auto opts = c10d::ProcessGroupGloo::Options::create();
  opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface("lo"));
  c10d::ProcessGroupGloo pg(prefixed, 0, 1, opts);
  return 0;
}
]=] TF_C10D_GLOO_LINKS)
  if(TF_C10D_GLOO_LINKS)
    set(TF_C10D_GLOO ON)
    list(APPEND TF_TORCH_DIST_BACKENDS gloo)
    list(APPEND TF_DIST_DEFINITIONS USE_C10D_GLOO)
  else()
    list(APPEND _tf_dist_notes "gloo: libtorch's c10d (TCPStore, ProcessGroupGloo) does not compile or link")
  endif()
endif()

# --- NCCL ---
find_path(TF_C10D_NCCL_HEADER torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp HINTS ${TORCH_INCLUDE_DIRS})
# PyTorch's wheels keep nccl.h in the nvidia-nccl package next to torch in site-packages.
get_filename_component(_tf_site "${TORCH_INSTALL_PREFIX}" DIRECTORY)
find_path(TF_NCCL_INCLUDE_DIR nccl.h
  HINTS ${NCCL_INCLUDE_DIR} $ENV{NCCL_INCLUDE_DIR} ${NCCL_ROOT}/include $ENV{NCCL_ROOT}/include
        "${_tf_site}/nvidia/nccl/include" ${CUDAToolkit_INCLUDE_DIRS} ${TORCH_INCLUDE_DIRS})
# ProcessGroupNCCL.hpp includes ATen's CUDA context, which includes cuSPARSE's, cuBLAS' and cuSOLVER's headers: the
# toolkit's, else the wheels' (nvidia-cusparse & co. keep them in nvidia/cu13/include).
find_path(TF_CUDA_LIBS_INCLUDE_DIR cusparse.h
  HINTS ${CUDAToolkit_INCLUDE_DIRS} "${_tf_site}/nvidia/cu13/include" "${_tf_site}/nvidia/cusparse/include")
set(TF_NCCL_INCLUDE_DIRS ${CUDAToolkit_INCLUDE_DIRS} ${TF_CUDA_LIBS_INCLUDE_DIR} ${TF_NCCL_INCLUDE_DIR})
if(NOT TF_TORCH_HAS_CUDA)
  list(APPEND _tf_dist_notes "nccl: libtorch has no CUDA")
elseif(NOT TF_C10D_NCCL_HEADER)
  list(APPEND _tf_dist_notes "nccl: libtorch has no c10d ProcessGroupNCCL header")
elseif(NOT TF_NCCL_INCLUDE_DIR)
  list(APPEND _tf_dist_notes "nccl: nccl.h not found (pip install nvidia-nccl-cu13, or set NCCL_ROOT)")
elseif(NOT TF_CUDA_LIBS_INCLUDE_DIR)
  list(APPEND _tf_dist_notes "nccl: the CUDA libraries' headers (cusparse.h) are missing (pip install nvidia-cusparse)")
else()
  set(CMAKE_REQUIRED_FLAGS "${_tf_std_flag}")
  set(CMAKE_REQUIRED_INCLUDES ${TORCH_INCLUDE_DIRS} ${TF_NCCL_INCLUDE_DIRS})
  set(CMAKE_REQUIRED_DEFINITIONS -DUSE_DISTRIBUTED -DUSE_C10D_NCCL -D_GLIBCXX_USE_CXX11_ABI=1)
  set(CMAKE_REQUIRED_LIBRARIES ${_tf_torch_libs})
  set(CMAKE_REQUIRED_QUIET ON)
  check_cxx_source_compiles([=[
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
int main() {
  c10d::TCPStoreOptions o;
  auto store = c10::make_intrusive<c10d::TCPStore>("127.0.0.1", o);
  auto prefixed = c10::make_intrusive<c10d::PrefixStore>("p", store);
  auto opts = c10d::ProcessGroupNCCL::Options::create();
  opts->timeout = std::chrono::milliseconds(1000);
  auto pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(prefixed, 0, 1, opts);
  return 0;
}
]=] TF_C10D_NCCL_LINKS)
  if(TF_C10D_NCCL_LINKS)
    set(TF_C10D_NCCL ON)
    list(APPEND TF_TORCH_DIST_BACKENDS nccl)
    list(APPEND TF_DIST_DEFINITIONS USE_C10D_NCCL)
  else()
    list(APPEND _tf_dist_notes "nccl: libtorch's c10d ProcessGroupNCCL does not compile or link")
  endif()
endif()
unset(CMAKE_REQUIRED_FLAGS)
unset(CMAKE_REQUIRED_INCLUDES)
unset(CMAKE_REQUIRED_DEFINITIONS)
unset(CMAKE_REQUIRED_LIBRARIES)

if(TF_C10D_GLOO OR TF_C10D_NCCL)
  set(TF_TORCH_HAS_DIST ON)
  list(APPEND TF_DIST_DEFINITIONS USE_DISTRIBUTED)
endif()
string(REPLACE ";" "; " TF_TORCH_DIST_NOTE "${_tf_dist_notes}")
