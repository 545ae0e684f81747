//! The component glue (wasm32 only): WIT bindings, the runtime a `no_std`
//! component needs (allocator, panic handler), and the exports. No logic
//! lives here.
//!
//! * `bindings` — the generated WIT bindings and the `no_std` runtime.
//! * [`convert`] — one conversion each way between generated and
//!   [`spec_model`] types.
//! * [`guest`] — the `specs` and `host-table` exports, delegating to
//!   [`crate::specs`] and [`crate::host_table`], and the imports as
//!   [`crate::backend`] traits.

mod bindings;
mod convert;
mod guest;
