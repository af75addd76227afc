#include "addon_data.h"

#include "thread_jobs.h"

namespace tfn {

AddonData& createAddonData(Napi::Env env) {
  auto* data = new AddonData();
  env.SetInstanceData<AddonData>(data);  // deleted by Node-API when the environment goes
  data->jobs = ThreadJobs::create(env);
  return *data;
}

AddonData& addonData(Napi::Env env) {
  auto* data = env.GetInstanceData<AddonData>();
  if (data == nullptr) throw Napi::Error::New(env, "the trt-flowers addon is not initialised in this environment");
  return *data;
}

}  // namespace tfn
