//! The WIT bindings of the world `spec-plugin`, generated here, and what a
//! `no_std` component needs in place of std.

// Contract 0.3 (`wit/spec.wit`), whose imports are 0.2's (`wit/deps`).
#[cfg(not(feature = "contract-0-2"))]
wit_bindgen::generate!({
    path: "../../wit",
    world: "spec-plugin",
    generate_all,
});

// Contract 0.2, for the build a lattice runs while it moves between
// versions.
#[cfg(feature = "contract-0-2")]
wit_bindgen::generate!({
    path: "../../wit",
    world: "lattice:spec/spec-plugin@0.2.0",
    generate_all,
});

// Allocator, panic handler, cabi_realloc, memcmp: what std would bring.
spec_guest_rt::no_std_runtime!();

// Both packages are in the resolve, so the generated modules carry their
// versions; the rest of the glue names them once, here.
#[cfg(feature = "contract-0-2")]
pub(super) use self::exports::lattice::spec0_2_0 as exported;
#[cfg(not(feature = "contract-0-2"))]
pub(super) use self::exports::lattice::spec0_3_0 as exported;
pub(super) use self::lattice::spec0_2_0 as imported;
