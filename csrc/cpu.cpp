#include "cpu.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

namespace cotsieve {
namespace {

SimdLevel cpu_level() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  if (__builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("bmi")) return SimdLevel::kAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi")) return SimdLevel::kAvx2;
#endif
  return SimdLevel::kNone;
}

SimdLevel requested_cap() {
  const char* value = std::getenv("COTSIEVE_SIMD");
  if (value == nullptr || *value == '\0') return SimdLevel::kAvx512;
  for (SimdLevel level : {SimdLevel::kNone, SimdLevel::kAvx2, SimdLevel::kAvx512})
    if (std::strcmp(value, simd_level_name(level)) == 0) return level;
  throw std::invalid_argument(std::string("COTSIEVE_SIMD must be avx512, avx2 or none, not '") + value + "'");
}

}  // namespace

SimdLevel simd_level() {
  static const SimdLevel level = static_cast<SimdLevel>(
      std::min(static_cast<int>(cpu_level()), static_cast<int>(requested_cap())));
  return level;
}

const char* simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::kAvx512: return "avx512";
    case SimdLevel::kAvx2: return "avx2";
    case SimdLevel::kNone: return "none";
  }
  return "none";
}

}  // namespace cotsieve
