//! Generated wasmtime bindings for the `spec-plugin` world. Private to the
//! crate: callers see [`crate::model`] types only.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "spec-plugin",
    imports: { default: async | trappable },
    exports: { default: async },
});

pub(crate) use exports::lattice::spec::specs as wit_specs;
pub(crate) use lattice::spec::keyvalue as wit_kv;
pub(crate) use lattice::spec::provider_notify as wit_notify;
pub(crate) use lattice::spec::types as wit_types;
