//! A component of some other world: what a host must refuse to load as a
//! spec plugin ("wrong WIT"), without harm to the plugin it runs.

wit_bindgen::generate!({
    inline: r#"
        package test:wrong@0.1.0;
        world not-a-spec-plugin {
            export greet: func(name: string) -> string;
        }
    "#,
});

struct Wrong;

impl Guest for Wrong {
    fn greet(name: String) -> String {
        format!("hello {name}")
    }
}

export!(Wrong);
