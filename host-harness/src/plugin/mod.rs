//! Running the plugin: the engine and loaded components ([`runtime`]), the
//! store data and import implementations (`state`), and the worker that
//! drives an instance ([`host`]).

mod bindings;
pub mod cache;
mod convert;
pub mod host;
pub mod runtime;
mod state;

pub use cache::ComponentCache;
pub use host::SpecHost;
pub use runtime::{digest_of, LoadedPlugin, PluginEngine, PluginLimits};
