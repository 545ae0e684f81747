//! The component glue (wasm32 only): WIT bindings, the runtime a `no_std`
//! component needs (allocator, panic handler), and the exports. No logic
//! lives here.
//!
//! * [`convert`] — one conversion each way between generated and
//!   [`spec_model`] types.
//! * [`guest`] — the `specs` and `host-table` exports, delegating to
//!   [`crate::specs`] and [`crate::host_table`], and the imports as
//!   [`crate::backend`] traits.

mod convert;
mod guest;

wit_bindgen::generate!({
    path: "../../wit",
    world: "spec-plugin",
    generate_all,
});

// Allocator, panic handler, cabi_realloc, memcmp: what std would bring.
spec_guest_rt::no_std_runtime!();

use guest::SpecPlugin;
export!(SpecPlugin);
