//! Generated wasmtime bindings for both contract versions this host loads:
//! `lattice:spec@0.2.0` ([`v0_2`]) and `lattice:spec@0.3.0` ([`v0_3`]).
//! Private to the crate: callers see [`spec_model`] types through
//! [`super::embed`] and [`super::exports`].
//!
//! 0.3 imports 0.2's interfaces unchanged, so its bindings reuse 0.2's
//! (`with`): one set of host functions on one linker serves both.
//!
//! The imports' WIT errors map to host types once
//! (`trappable_error_type`): a `store-error` is a [`super::embed::StoreFault`]
//! and a `notify-error` a [`super::embed::NotifyFault`], each of which can
//! also carry a trap (a call past its deadline or import cap).

/// Contract 0.2: the imports, the shared types and 0.2's exports.
pub(crate) mod v0_2 {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "lattice:spec/spec-plugin@0.2.0",
        imports: { default: async | trappable },
        exports: { default: async },
        trappable_error_type: {
            "lattice:spec/types@0.2.0.store-error" => crate::embed::StoreFault,
            "lattice:spec/types@0.2.0.notify-error" => crate::embed::NotifyFault,
        },
    });
}

/// Contract 0.3: its exports, over 0.2's imports and types.
pub(crate) mod v0_3 {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "spec-plugin",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "lattice:spec/types@0.2.0": super::v0_2::lattice::spec0_2_0::types,
            "lattice:spec/keyvalue@0.2.0": super::v0_2::lattice::spec0_2_0::keyvalue,
            "lattice:spec/provider-notify@0.2.0": super::v0_2::lattice::spec0_2_0::provider_notify,
        },
    });
}

pub(crate) use v0_2::exports::lattice::spec0_2_0::host_table as wit_table;
pub(crate) use v0_2::exports::lattice::spec0_2_0::specs as wit_specs;
pub(crate) use v0_2::lattice::spec0_2_0::keyvalue as wit_kv;
pub(crate) use v0_2::lattice::spec0_2_0::provider_notify as wit_notify;
pub(crate) use v0_2::lattice::spec0_2_0::types as wit_types;
pub(crate) use v0_3::exports::lattice::spec0_3_0::host_table as wit_table_0_3;
pub(crate) use v0_3::exports::lattice::spec0_3_0::specs as wit_specs_0_3;
