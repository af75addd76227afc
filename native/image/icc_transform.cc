#include "icc_transform.h"

#include <list>
#include <mutex>
#include <string>
#include <utility>

#ifdef TF_WITH_LCMS
#include <lcms2.h>
#endif

namespace tf {

#ifdef TF_WITH_LCMS

namespace {
// Profiles seen lately, by their bytes; a camera model's photos share one. Creating a transform costs about as much
// as decoding a small photo, applying one a fraction of it. A transform holds about 200 KB, so the cache at most
// about 13 MB; tf_flowers has more than 16 distinct profiles in 300 photos, and a smaller cache taken in turn
// (every epoch, every benchmark pass) would miss every time.
constexpr size_t kCacheEntries = 64;
std::mutex cacheMutex;
std::list<std::pair<std::string, std::shared_ptr<const IccToSrgb>>> cache;  // most recent first

void quietErrors(cmsContext, cmsUInt32Number, const char*) {}
}  // namespace

std::shared_ptr<const IccToSrgb> IccToSrgb::forProfile(const uint8_t* icc, size_t length) {
  if (icc == nullptr || length < 132) return nullptr;
  std::string key(reinterpret_cast<const char*>(icc), length);
  {
    std::lock_guard<std::mutex> lock(cacheMutex);
    for (auto it = cache.begin(); it != cache.end(); ++it) {
      if (it->first == key) {
        cache.splice(cache.begin(), cache, it);
        return it->second;
      }
    }
  }
  static std::once_flag quiet;
  std::call_once(quiet, [] { cmsSetLogErrorHandler(quietErrors); });
  cmsHPROFILE in = cmsOpenProfileFromMem(icc, static_cast<cmsUInt32Number>(length));
  if (in == nullptr) return nullptr;
  std::shared_ptr<const IccToSrgb> made;
  if (cmsGetColorSpace(in) == cmsSigRgbData) {
    cmsHPROFILE srgb = cmsCreate_sRGBProfile();
    // No one-pixel cache: a transform made without it may run on several threads at once.
    cmsHTRANSFORM t = cmsCreateTransform(in, TYPE_RGB_8, srgb, TYPE_RGB_8, INTENT_PERCEPTUAL, cmsFLAGS_NOCACHE);
    cmsCloseProfile(srgb);
    if (t != nullptr) made.reset(new IccToSrgb(t));
  }
  cmsCloseProfile(in);
  if (!made) return nullptr;
  std::lock_guard<std::mutex> lock(cacheMutex);
  cache.emplace_front(std::move(key), made);
  if (cache.size() > kCacheEntries) cache.pop_back();
  return made;
}

void IccToSrgb::apply(uint8_t* rgb, int width, int height, int stride) const {
  cmsDoTransformLineStride(static_cast<cmsHTRANSFORM>(transform_), rgb, rgb, static_cast<cmsUInt32Number>(width),
                           static_cast<cmsUInt32Number>(height), static_cast<cmsUInt32Number>(stride) * 3,
                           static_cast<cmsUInt32Number>(stride) * 3, 0, 0);
}

IccToSrgb::~IccToSrgb() { cmsDeleteTransform(static_cast<cmsHTRANSFORM>(transform_)); }

#else

std::shared_ptr<const IccToSrgb> IccToSrgb::forProfile(const uint8_t*, size_t) { return nullptr; }
void IccToSrgb::apply(uint8_t*, int, int, int) const {}
IccToSrgb::~IccToSrgb() = default;

#endif

}  // namespace tf
