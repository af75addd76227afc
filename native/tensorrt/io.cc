#include "io.h"

#include <filesystem>
#include <fstream>

#include "../core/atomic_file.h"
#include "../core/errors.h"

namespace tf::trt {

std::vector<char> readFileBytes(const std::string& path, const std::string& what) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw ModelLoadError(what + " '" + path + "' not found");
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw ModelLoadError("cannot open " + what + " '" + path + "'");
  const std::streamsize size = in.tellg();
  if (size < 0) throw ModelLoadError("cannot read " + what + " '" + path + "'");
  std::vector<char> bytes(static_cast<size_t>(size));
  in.seekg(0);
  if (size > 0 && !in.read(bytes.data(), size)) throw ModelLoadError("cannot read " + what + " '" + path + "'");
  return bytes;
}

bool fileExists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec);
}

void writeFileBytes(const std::string& path, const void* data, size_t size) {
  writeAtomically(path, [&](const std::string& tmp) {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error("cannot open '" + tmp + "'");
    out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
    out.close();
    if (!out) throw std::runtime_error("write failed (disk full?)");
  });
}

}  // namespace tf::trt
