# Data-parallel training (native/dist) needs c10d's TCPStore and ProcessGroupGloo from the libtorch found by
# find_package(Torch). Debian's libtorch 1.13 exports both, but its ProcessGroupGloo.hpp includes gloo's headers
# (Debian: libgloo-dev) and compiles only with USE_DISTRIBUTED and USE_C10D_GLOO defined. PyTorch's 2.x wheels
# ship c10d without gloo's headers. Sets TF_TORCH_HAS_DIST (and TF_TORCH_DIST_NOTE saying why not).
set(TF_TORCH_HAS_DIST OFF)
set(TF_TORCH_DIST_NOTE "")
find_path(TF_C10D_GLOO_HEADER torch/csrc/distributed/c10d/ProcessGroupGloo.hpp HINTS ${TORCH_INCLUDE_DIRS})
find_path(TF_GLOO_HEADER gloo/config.h HINTS ${TORCH_INCLUDE_DIRS})
if(NOT TF_C10D_GLOO_HEADER)
  set(TF_TORCH_DIST_NOTE "libtorch has no c10d ProcessGroupGloo header")
elseif(NOT TF_GLOO_HEADER)
  set(TF_TORCH_DIST_NOTE "gloo's headers are missing (Debian: apt-get install libgloo-dev)")
else()
  include(CheckCXXSourceCompiles)
  set(CMAKE_REQUIRED_INCLUDES ${TORCH_INCLUDE_DIRS})
  set(CMAKE_REQUIRED_DEFINITIONS -DUSE_DISTRIBUTED -DUSE_C10D_GLOO -D_GLIBCXX_USE_CXX11_ABI=1)
  set(CMAKE_REQUIRED_LIBRARIES ${TORCH_LIBRARIES})
  set(CMAKE_REQUIRED_QUIET ON)
  # Links against the symbols the addon uses, so a libtorch built without distributed support is caught here.
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
  unset(CMAKE_REQUIRED_INCLUDES)
  unset(CMAKE_REQUIRED_DEFINITIONS)
  unset(CMAKE_REQUIRED_LIBRARIES)
  if(TF_C10D_GLOO_LINKS)
    set(TF_TORCH_HAS_DIST ON)
  else()
    set(TF_TORCH_DIST_NOTE "libtorch's c10d (TCPStore, ProcessGroupGloo) does not compile or link")
  endif()
endif()
