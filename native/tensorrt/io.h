// Whole-file reads and atomic writes for plans, timing caches and calibration caches.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace tf::trt {

// The bytes of `path`. Throws ModelLoadError naming `what` when the file is missing or unreadable.
std::vector<char> readFileBytes(const std::string& path, const std::string& what);

// True when `path` names a regular file.
bool fileExists(const std::string& path);

// Writes the bytes atomically (temporary file + rename). Throws SaveError.
void writeFileBytes(const std::string& path, const void* data, size_t size);

}  // namespace tf::trt
