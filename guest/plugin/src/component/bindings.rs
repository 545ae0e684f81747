//! The WIT bindings of the world `spec-plugin`, generated here, and what a
//! `no_std` component needs in place of std.

wit_bindgen::generate!({
    path: "../../wit",
    world: "spec-plugin",
    generate_all,
});

// Allocator, panic handler, cabi_realloc, memcmp: what std would bring.
spec_guest_rt::no_std_runtime!();
