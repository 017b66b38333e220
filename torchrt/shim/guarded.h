// How the shims (accel.cpp, dist.cpp) hand errors to Rust: no C++ exception crosses the
// boundary; a call runs under `guarded`, which returns NULL on success or a malloc'ed copy of
// the exception's message (libtorch's without its backtrace), which Rust frees with the shim's
// free function (`std::free`).
#pragma once

#include <c10/util/Exception.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <utility>

namespace ncsn_shim {

// A malloc'ed copy of `what` (NULL if out of memory).
inline char *message(const char *what) {
  char *m = static_cast<char *>(std::malloc(std::strlen(what) + 1));
  if (m != nullptr) std::strcpy(m, what);
  return m;
}

// Runs `f`; NULL, or the message of what it threw (`shim` names the shim for the unknown case).
template <typename F>
char *guarded(const char *shim, F &&f) {
  try {
    f();
    return nullptr;
  } catch (const c10::Error &e) {
    return message(e.what_without_backtrace());
  } catch (const std::exception &e) {
    return message(e.what());
  } catch (...) {
    std::string what = std::string("unknown C++ exception in the ncsn ") + shim + " shim";
    return message(what.c_str());
  }
}

}  // namespace ncsn_shim
