//! A component of an older contract, `lattice:spec@0.1.0` (and of some
//! other world besides): what a 0.2 host must refuse to load, by name,
//! without harm to the plugin it runs.

#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;

use alloc::format;
use alloc::string::{String, ToString};

wit_bindgen::generate!({
    inline: r#"
        package lattice:spec@0.1.0;
        interface specs {
            plugin-version: func() -> string;
        }
        world old-spec-plugin {
            export specs;
            export greet: func(name: string) -> string;
        }
    "#,
});

#[cfg(target_arch = "wasm32")]
spec_guest_rt::no_std_runtime!();

struct Old;

impl Guest for Old {
    fn greet(name: String) -> String {
        format!("hello {name}")
    }
}

impl exports::lattice::spec::specs::Guest for Old {
    fn plugin_version() -> String {
        "old-contract 0.1.0".to_string()
    }
}

export!(Old);
