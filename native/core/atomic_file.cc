#include "atomic_file.h"

#include <cstdio>
#include <filesystem>
#include <random>

#include "errors.h"

namespace tf {

void writeAtomically(const std::string& path, const std::function<void(const std::string&)>& write) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw SaveError("cannot write '" + path + "': directory '" + dir.string() + "' does not exist");
  }
  std::random_device rd;
  const fs::path tmp = dir / ("." + target.filename().string() + ".tmp-" + std::to_string(rd()));
  try {
    write(tmp.string());
  } catch (const std::exception& e) {
    fs::remove(tmp, ec);
    throw SaveError("cannot write '" + path + "': " + e.what());
  }
  fs::rename(tmp, target, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw SaveError("cannot write '" + path + "': rename failed: " + ec.message());
  }
}

}  // namespace tf
