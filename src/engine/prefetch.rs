//! A hint to the CPU to start loading memory that is about to be read.
//!
//! Evictions come in runs (a full cache evicts on every new key), so the
//! next victim can be known one operation early; loading it then, while the
//! interpreter runs the caller's next iteration, takes a dependent cache
//! miss off the next eviction's path.

/// Starts loading the cache lines of `bytes` bytes from `start` into the
/// CPU's caches. Safe for any address: a prefetch neither faults nor writes.
/// Off x86-64 it does nothing.
#[inline]
#[allow(unsafe_code)]
pub fn prefetch(start: *const u8, bytes: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let first = start.cast::<i8>();
        let last = first.wrapping_add(bytes.max(1) - 1);
        // SAFETY: `_mm_prefetch` is `unsafe` only for its target feature,
        // SSE, which every x86-64 CPU has. A prefetch is a hint: whatever
        // the address, it neither faults nor writes, and it reads nothing
        // into the program. Two hints, because `bytes` may straddle two
        // cache lines (an arena slot does, one time in two).
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(first);
            _mm_prefetch::<_MM_HINT_T0>(last);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (start, bytes);
}
