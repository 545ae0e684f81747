//! The fuzz suites' shared half: generators of hostile input (ids, links,
//! odd and deeply nested documents) and the documented rules as an oracle.
//! The native suite (`guest/plugin/tests/fuzz_native`) and the component
//! suite (`tests/e2e/tests/fuzz_component`) draw from the same generators
//! and judge by the same rules.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use spec_model::Link;

// ---- generators ------------------------------------------------------------

/// Mostly plausible strings, sometimes any Unicode.
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(vec!["fz", "good", "p", "wasi", "keyvalue", "store", "default", ""])
            .prop_map(String::from),
        1 => any::<String>(),
    ]
}

/// A link whose every field is drawn from [`text`].
pub fn any_link() -> impl Strategy<Value = Link> {
    (
        (text(), text(), text(), text(), text()),
        vec(text(), 0..3),
        vec(text(), 0..2),
        vec(text(), 0..2),
    )
        .prop_map(|((s, t, n, ns, pkg), interfaces, sc, tc)| Link {
            source_id: s,
            target: t,
            name: n,
            wit_namespace: ns,
            wit_package: pkg,
            interfaces,
            source_config: sc,
            target_config: tc,
        })
}

/// Ids of every kind: plausible, any Unicode, empty, dotted, very long.
pub fn any_id() -> impl Strategy<Value = String> {
    prop_oneof![
        "[-/_=.a-zA-Z0-9]{0,12}",
        any::<String>(),
        Just(String::new()),
        select(vec![
            ".", "..", "a..b", ".a", "a.", "a b", "a\u{0}", "é", "a*", "a>"
        ])
        .prop_map(String::from),
        (1usize..10_000).prop_map(|n| "a".repeat(n)),
        (1usize..10_000).prop_map(|n| format!("{}é", "a".repeat(n))),
    ]
}

/// Where a deep nest is put.
#[derive(Clone, Copy, Debug)]
pub enum Spot {
    /// The whole value.
    Top,
    /// The value of `links`.
    Links,
    /// An unknown field, which the decoder skips.
    Extra,
}

/// `depth` nested arrays or objects at `spot`, closed or not.
pub fn nest(depth: usize, objects: bool, spot: Spot, closed: bool) -> Vec<u8> {
    let (open, close) = if objects {
        ("{\"a\":", "}")
    } else {
        ("[", "]")
    };
    let mut inner = open.repeat(depth);
    inner.push('1');
    if closed {
        inner.push_str(&close.repeat(depth));
    }
    let doc = match spot {
        Spot::Top => inner,
        Spot::Links => format!("{{\"url\":\"u\",\"links\":{inner}}}"),
        Spot::Extra => format!("{{\"url\":\"u\",\"extra\":{inner}}}"),
    };
    doc.into_bytes()
}

/// Nests of 1 to `max_depth` levels, anywhere, closed or not.
pub fn deep(max_depth: usize) -> impl Strategy<Value = Vec<u8>> {
    let spot = prop_oneof![Just(Spot::Top), Just(Spot::Links), Just(Spot::Extra)];
    (1usize..=max_depth, any::<bool>(), spot, any::<bool>())
        .prop_map(|(depth, objects, spot, closed)| nest(depth, objects, spot, closed))
}

/// Hand-picked odd documents: duplicate keys, the array form serde accepts
/// for structs, nulls, a lone surrogate, a BOM, invalid UTF-8, trailing data.
pub const TRICKY: &[&[u8]] = &[
    br#"{"url":"a","url":"b"}"#,
    br#"["u",[]]"#,
    br#"["u",[["fz","p","default","wasi","kv",["i"],[],[]]]]"#,
    br#"{"url":"u","links":null}"#,
    br#"{"url":1}"#,
    br#"{"url":"\ud800"}"#,
    br#"{"url":"\u0000"}"#,
    br#"{"url":"u"} x"#,
    b"{\"url\":\"u\"}  \n",
    b"\xef\xbb\xbf{\"url\":\"u\"}",
    b"{\"url\":\"\xff\xfe\"}",
    br#"{"url":"u","x":1e99999}"#,
    br#"{"url":"u","links":[{}]}"#,
    br#"{"url":"u","links":[{"source_id":"fz","target":"p","wit_namespace":"w","wit_package":"p","interfaces":["i"],"name":null}]}"#,
    br#"{"url":"u","links":[{"source_id":"fz","target":"p","wit_namespace":"w","wit_package":"p","interfaces":"i"}]}"#,
    b"{}",
    b"null",
    b"\"\"",
    b"[]",
];

/// A stored value of any kind: arbitrary bytes and UTF-8, the [`TRICKY`]
/// documents, the suite's own `mutated` specs, and nests up to `max_depth`.
pub fn raw_value(
    mutated: impl Strategy<Value = Vec<u8>>,
    max_depth: usize,
) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => vec(any::<u8>(), 0..256),
        1 => select(TRICKY).prop_map(<[u8]>::to_vec),
        1 => any::<String>().prop_map(String::into_bytes),
        4 => mutated,
        2 => deep(max_depth),
    ]
}

// ---- the documented rules, as an oracle ------------------------------------

/// The id rules: non-empty, `[-/_=.a-zA-Z0-9]` only, no leading or
/// trailing `.`, no `..`.
pub fn id_ok(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-/_=.".contains(c))
        && !id.starts_with('.')
        && !id.ends_with('.')
        && !id.contains("..")
}

/// The link rules: namespace, package and at least one interface non-empty,
/// every interface non-empty, source and target valid ids.
pub fn link_ok(l: &Link) -> bool {
    !l.wit_namespace.is_empty()
        && !l.wit_package.is_empty()
        && !l.interfaces.is_empty()
        && l.interfaces.iter().all(|i| !i.is_empty())
        && id_ok(&l.source_id)
        && id_ok(&l.target)
}
