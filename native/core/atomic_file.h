// Atomic writes: data goes to a temporary file next to the target, which is renamed over it once complete.
#pragma once

#include <functional>
#include <string>

namespace tf {

// Calls write(tmpPath), then renames tmpPath to path. On any failure the temporary file is removed, the old
// file at path (if any) is left untouched, and SaveError is thrown.
void writeAtomically(const std::string& path, const std::function<void(const std::string&)>& write);

}  // namespace tf
