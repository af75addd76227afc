// tripletLossFromOutputs(...): the training objective (native/core/loss.h) over precomputed outputs of a split, async.
#pragma once

#include <napi.h>

namespace tfn {

void InitLoss(Napi::Env env, Napi::Object exports);

}  // namespace tfn
