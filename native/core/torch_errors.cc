#include "torch_errors.h"

namespace tf {

std::string shortMessage(const c10::Error& e) { return shortMessage(std::string(e.what_without_backtrace())); }

std::string shortMessage(const std::string& message) {
  std::string msg = message;
  const auto cut = msg.find("\nException raised from");
  if (cut != std::string::npos) msg.resize(cut);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  if (msg.find("Traceback of TorchScript") != std::string::npos) {
    // The last line is "RuntimeError: <what went wrong>".
    const auto nl = msg.rfind('\n');
    std::string last = nl == std::string::npos ? msg : msg.substr(nl + 1);
    const auto colon = last.find("Error: ");
    if (colon != std::string::npos && colon < 40) last = last.substr(colon + 7);
    return last;
  }
  return msg;
}

}  // namespace tf
