// Which vector paths this process takes: the best the CPU has, capped by the
// COTSIEVE_SIMD environment variable (`avx512`, `avx2` or `none`). The cap
// lets tests and users on a big machine run, compare and time the paths that
// smaller machines take; every path gives the same results.
#pragma once

namespace cotsieve {

enum class SimdLevel : int { kNone = 0, kAvx2 = 1, kAvx512 = 2 };

// Read once, at first use. An unknown COTSIEVE_SIMD value throws
// std::invalid_argument, so a typo cannot silently test the wrong path.
SimdLevel simd_level();
const char* simd_level_name(SimdLevel level);

}  // namespace cotsieve
