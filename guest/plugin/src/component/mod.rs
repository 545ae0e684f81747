//! The component glue (wasm32 only): WIT bindings, the runtime a `no_std`
//! component needs (allocator, panic handler), and the exports. No logic
//! lives here.
//!
//! A build speaks one contract version: 0.3 by default, 0.2 with the
//! feature `contract-0-2` (the build hosts keep loading during a move
//! between versions).
//!
//! * `bindings` — the generated WIT bindings and the `no_std` runtime.
//! * [`convert`] — one conversion each way between generated and
//!   [`spec_model`] types.
//! * [`imports`] — the imports (the same 0.2 interfaces in both versions)
//!   as [`crate::backend`] traits, and the instance's table.
//! * `exports_0_3` / `exports_0_2` — the `specs` and `host-table` exports,
//!   delegating to [`crate::specs`] and [`crate::host_table`].

mod bindings;
mod convert;
#[cfg(feature = "contract-0-2")]
mod exports_0_2;
#[cfg(not(feature = "contract-0-2"))]
mod exports_0_3;
mod imports;
