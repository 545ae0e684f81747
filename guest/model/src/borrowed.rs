//! A spec decoded without copying its strings: [`SpecRef`] borrows every
//! string of the stored bytes that has no escapes (nearly all of them), so
//! applying a stored value costs a handful of allocations per link instead
//! of a dozen. The table packs these into its own form right away
//! ([`crate::packed::Packed::new`]); a `Link` is made only for a link that
//! is delivered or reported.
//!
//! Decoding is exactly [`crate::json::decode_spec`]'s (same defaults, same
//! unknown fields ignored, same errors for the same input): both are serde
//! over the same field names, and a test holds them to it.

use alloc::borrow::Cow;
use core::fmt;

use serde::de::{Deserializer, Visitor};
use serde::Deserialize;

use crate::link::{ComponentSpecification, Link, DEFAULT_LINK_NAME};
use crate::packed::{LinkFields, Token};
use crate::prelude::*;

/// A string of the stored bytes: borrowed unless it had escapes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Str<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(core::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Str<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(s.to_string())))
            }
            fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V(core::marker::PhantomData))
    }
}

impl Str<'_> {
    fn as_str(&self) -> &str {
        &self.0
    }
}

fn default_name<'a>() -> Str<'a> {
    Str(Cow::Borrowed(DEFAULT_LINK_NAME))
}

/// A [`Link`] borrowing from the stored bytes.
#[derive(Clone, Debug, Deserialize)]
pub struct LinkRef<'a> {
    /// See [`Link::source_id`].
    #[serde(borrow)]
    pub source_id: Str<'a>,
    /// See [`Link::target`].
    #[serde(borrow)]
    pub target: Str<'a>,
    /// See [`Link::name`].
    #[serde(borrow, default = "default_name")]
    pub name: Str<'a>,
    /// See [`Link::wit_namespace`].
    #[serde(borrow)]
    pub wit_namespace: Str<'a>,
    /// See [`Link::wit_package`].
    #[serde(borrow)]
    pub wit_package: Str<'a>,
    /// See [`Link::interfaces`].
    #[serde(borrow)]
    pub interfaces: Vec<Str<'a>>,
    /// See [`Link::source_config`].
    #[serde(borrow, default)]
    pub source_config: Vec<Str<'a>>,
    /// See [`Link::target_config`].
    #[serde(borrow, default)]
    pub target_config: Vec<Str<'a>>,
}

/// A [`ComponentSpecification`] borrowing from the stored bytes.
#[derive(Clone, Debug, Deserialize)]
pub struct SpecRef<'a> {
    /// See [`ComponentSpecification::url`].
    #[serde(borrow)]
    pub url: Str<'a>,
    /// See [`ComponentSpecification::links`].
    #[serde(borrow, default)]
    pub links: Vec<LinkRef<'a>>,
}

/// Decodes stored JSON, borrowing from `bytes`; the decoder's message on
/// failure (the same as [`crate::json::decode_spec`]'s).
pub fn decode_spec_ref(bytes: &[u8]) -> Result<SpecRef<'_>, String> {
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

fn owned(list: &[Str<'_>]) -> Vec<String> {
    list.iter().map(|s| s.as_str().to_string()).collect()
}

impl SpecRef<'_> {
    /// The owned spec.
    pub fn to_spec(&self) -> ComponentSpecification {
        ComponentSpecification {
            url: self.url.as_str().to_string(),
            links: self.links.iter().map(LinkFields::to_link).collect(),
        }
    }
}

impl LinkFields for LinkRef<'_> {
    fn tokens(&self) -> impl Iterator<Item = Token<'_>> + Clone {
        let strs = [
            &self.source_id,
            &self.target,
            &self.name,
            &self.wit_namespace,
            &self.wit_package,
        ];
        let lists = [&self.interfaces, &self.source_config, &self.target_config];
        strs.into_iter()
            .map(|s| Token::Str(s.as_str()))
            .chain(lists.into_iter().flat_map(|l| {
                core::iter::once(Token::Len(l.len()))
                    .chain(l.iter().map(|s| Token::Str(s.as_str())))
            }))
    }

    fn source_id(&self) -> &str {
        self.source_id.as_str()
    }

    fn target(&self) -> &str {
        self.target.as_str()
    }

    fn to_link(&self) -> Link {
        Link {
            source_id: self.source_id.as_str().to_string(),
            target: self.target.as_str().to_string(),
            name: self.name.as_str().to_string(),
            wit_namespace: self.wit_namespace.as_str().to_string(),
            wit_package: self.wit_package.as_str().to_string(),
            interfaces: owned(&self.interfaces),
            source_config: owned(&self.source_config),
            target_config: owned(&self.target_config),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::decode_spec;

    #[test]
    fn decodes_what_the_owned_decoder_does() {
        let cases: [&[u8]; 9] = [
            br#"{"url":"u","links":[{"source_id":"a","target":"b","wit_namespace":"wasi","wit_package":"kv","interfaces":["store"]}]}"#,
            br#"{"url":"u"}"#,
            br#"{"url":"u\n\"x\"","extra":{"x":[1,2]},"links":[{"source_id":"a\u00e9","target":"b","name":"n","wit_namespace":"wasi","wit_package":"kv","interfaces":["st\\ore","x"],"source_config":["c"],"target_config":["SECRET_d"],"future":true}]}"#,
            br#"{"links":[]}"#,
            br#"{"url":"u","links":[{"source_id":"a"}]}"#,
            br#"{not json"#,
            br#"{"url":1}"#,
            br#"{"url":"u","links":[{"source_id":"a","target":"b","wit_namespace":"wasi","wit_package":"kv","interfaces":"store"}]}"#,
            b"\x00\x01",
        ];
        for bytes in cases {
            let owned = decode_spec(bytes);
            let borrowed = decode_spec_ref(bytes).map(|s| s.to_spec());
            assert_eq!(owned, borrowed, "{}", String::from_utf8_lossy(bytes));
        }
    }

    #[test]
    fn plain_strings_are_borrowed() {
        let bytes = br#"{"url":"u","links":[{"source_id":"a","target":"b\n","wit_namespace":"wasi","wit_package":"kv","interfaces":["store"]}]}"#;
        let spec = decode_spec_ref(bytes).expect("decodes");
        assert!(matches!(spec.links[0].source_id.0, Cow::Borrowed(_)));
        assert!(matches!(spec.links[0].interfaces[0].0, Cow::Borrowed(_)));
        assert_eq!(spec.links[0].target.0, "b\n");
    }

    #[test]
    fn tokens_and_hashes_match_the_owned_link() {
        use crate::packed::{hash_tokens, link_hash};
        let bytes = br#"{"url":"u","links":[{"source_id":"a","target":"b","wit_namespace":"wasi","wit_package":"kv","interfaces":["store","x"],"target_config":["c"]}]}"#;
        let spec = decode_spec_ref(bytes).expect("decodes");
        let link = spec.links[0].to_link();
        assert_eq!(hash_tokens(spec.links[0].tokens()), link_hash(&link));
        assert!(spec.links[0].tokens().eq(link.tokens()));
    }
}
