//! Generated wasmtime bindings for the `spec-plugin` world
//! (`lattice:spec@0.2.0`). Private to the crate: callers see
//! [`spec_model`] types through [`super::embed`] and [`super::exports`].
//!
//! The imports' WIT errors map to host types once
//! (`trappable_error_type`): a `store-error` is a [`super::embed::StoreFault`]
//! and a `notify-error` a [`super::embed::NotifyFault`], each of which can
//! also carry a trap (a call past its deadline or import cap).

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "spec-plugin",
    imports: { default: async | trappable },
    exports: { default: async },
    trappable_error_type: {
        "lattice:spec/types.store-error" => super::embed::StoreFault,
        "lattice:spec/types.notify-error" => super::embed::NotifyFault,
    },
});

pub(crate) use exports::lattice::spec::host_table as wit_table;
pub(crate) use exports::lattice::spec::specs as wit_specs;
pub(crate) use lattice::spec::keyvalue as wit_kv;
pub(crate) use lattice::spec::provider_notify as wit_notify;
pub(crate) use lattice::spec::types as wit_types;
