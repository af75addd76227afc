// Training-time augmentation of one decoded image: the native twin of src/data/augment.ts augmentInto (same
// arithmetic, in the same order, in double precision), so the data pipeline can run it off the event loop.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tf {

// One operation of the TrivialAugment-style policy (data.augment.policy), applied to the resampled crop before the
// degradations. Geometric ones move the sampling grid (bilinear; outside the crop is the mean colour); the others
// are the PIL ImageOps / ImageEnhance operations on the crop's bytes.
enum class PolicyOp {
  None,  // also the identity
  Rotate,
  ShearX,
  ShearY,
  TranslateX,
  TranslateY,
  Brightness,
  Color,
  Contrast,
  Sharpness,
  Posterize,
  Solarize,
  AutoContrast,
  Equalize,
};

// The op of a policy name ("rotate", "shear_x", ..., "identity"); throws RangeError for an unknown name.
PolicyOp policyOpFromName(const std::string& name);

// At magnitude 1 (the most): rotate 30 degrees, shear 0.3, translate 0.3 of the side, brightness / colour /
// contrast / sharpness factors 1 +- 0.9, posterize to 4 bits, solarize above 0 (every pixel). The sign of the
// magnitude is the direction (geometric and enhance ops); the others use its absolute value.
constexpr double kPolicyRotateDegrees = 30, kPolicyShear = 0.3, kPolicyTranslate = 0.3, kPolicyEnhance = 0.9;

struct AugmentParams {
  double x = 0, y = 0, width = 0, height = 0;  // crop box in source pixels
  bool flip = false;
  double brightness = 1, contrast = 1, saturation = 1;
  // Real-world degradations, applied to the resampled crop before the colour jitter (none at their defaults):
  double downscale = 1;  // in (0, 1]: shrunk to round(size * downscale) px (area average), then bilinear back up
  int jpegQuality = 0;   // 1..100: JPEG-compressed at this quality and decoded again; 0: not
  // Random erasing, after the normalisation: this box of the output (output pixels) set to 0, the mean colour.
  int eraseX = 0, eraseY = 0, eraseWidth = 0, eraseHeight = 0;
  // The policy's op for this image and its magnitude in [-1, 1] (None: no op).
  PolicyOp op = PolicyOp::None;
  double magnitude = 0;
};

// Applies `op` at `magnitude` to a size x size RGB byte image in place (the non-geometric ops; geometric ones and
// None leave it as it is). Exposed for the tests.
void applyPixelOp(std::vector<uint8_t>& img, int size, PolicyOp op, double magnitude);

// src: size*size*3 RGB bytes (HWC). Writes the crop resampled back to size*size (bilinear), flipped, with brightness,
// contrast around the mean grey and saturation around each pixel's grey, normalised ((v / 255 - mean) / std), CHW,
// into out[0 .. 3*size*size). With a downscale below 1 or a JPEG quality, the crop is first resampled to bytes
// (rounded), degraded, and then jittered and normalised; otherwise all in one pass, as before those existed. A
// policy op other than None also takes the byte path: the crop is resampled through the op's geometry (if any),
// the pixel op applied, then the degradations.
void augmentInto(const uint8_t* src, int size, const AugmentParams& p, float* out, const double mean[3],
                 const double std[3]);

}  // namespace tf
