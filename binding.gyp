{
  "targets": [
    {
      "target_name": "trt_flowers",
      "sources": ["<!@(node scripts/gyp-config.cjs sources)"],
      "include_dirs": ["<!@(node scripts/gyp-config.cjs includes)"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "_GLIBCXX_USE_CXX11_ABI=1", "<!@(node scripts/gyp-config.cjs defines)"],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++1y", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-O3", "-Wno-unused-parameter"],
      "libraries": ["<!@(node scripts/gyp-config.cjs libdirs)", "-ltorch", "-ltorch_cpu", "-lc10", "<!@(node scripts/gyp-config.cjs jpeg)"]
    }
  ]
}
