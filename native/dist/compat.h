// The c10d differences between libtorch 1.13 (Debian, CPU) and 2.x, next to the core's own (core/compat.h).
// 1.13: ProcessGroupGloo is a ProcessGroup. 2.x: it is a Backend that a ProcessGroup wraps (setBackend); both have
// the collectives, options and sequence numbers used here, so native/dist calls them on the Gloo group directly.
#pragma once

#ifdef TF_WITH_DIST
#include <torch/version.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

namespace tf::dist::compat {

using GlooGroup = ::c10d::ProcessGroupGloo;
using Work = ::c10d::Work;

}  // namespace tf::dist::compat
#endif
