//! `FlexCache`: an in-memory cache with per-item TTL and exact LRU/FIFO or
//! random eviction.
//!
//! The crate has two layers. [`engine`] is pure Rust: an arena of entries
//! indexed by a `hashbrown` table, one intrusive order list, and a
//! hierarchical timing wheel. It never reads a clock (time is an argument)
//! and never runs user code: every operation hands back the entries it let
//! go, so the caller can release them once the structures are consistent.
//! The Python binding (`py`, behind the `python` feature that maturin turns
//! on) converts arguments, reads the clock, calls `item_size()` before and
//! `close()` after each engine call.

pub mod cell;
pub mod clock;
pub mod dumpfile;
pub mod engine;

#[cfg(feature = "python")]
mod py;
