//! The packed form of one id's links: the host-local table's memory layout,
//! and snapshot format 1 ([`crate::report::SNAPSHOT_FORMAT`]).
//!
//! A `Link` is eight separately allocated strings and lists: on wasm32 about
//! 300 bytes per link once allocator overhead is counted, and a table
//! repeats the same few strings (source id, namespace, package, interface and
//! config names, targets) over and over. [`Packed`] keeps each distinct string
//! of one id's links once, in a dictionary, and each link as a run of LEB128
//! numbers (dictionary indices and list lengths) in one byte buffer: about
//! 30 bytes per link plus the strings that are unique to it.
//!
//! Links are compared and hashed as a stream of [`Token`]s, the same for a
//! `Link` and for a packed one, so table lookups never decode anything.
//!
//! ## Bytes (format 1)
//!
//! ```text
//! entry   = dict links
//! dict    = n:varint (len:varint utf8-bytes){n}
//! links   = count:varint size:varint data[size]
//! data    = link{count}
//! link    = str{5} list{3}          ; source, target, name, namespace, package;
//!                                   ; interfaces, source config, target config
//! list    = len:varint str{len}
//! str     = index:varint            ; into dict
//! varint  = unsigned LEB128
//! ```
//!
//! [`Packed::from_bytes`] checks all of it (indices in range, UTF-8, exact
//! length), so a snapshot from anywhere can be restored without trusting it.

use core::hash::Hasher;

use crate::hash::{FxHashMap, FxHasher};
use crate::link::Link;
use crate::prelude::*;

/// One step of a link's canonical form: its five strings, then for each of
/// its three lists the length followed by the elements.
#[derive(Clone, Copy, Debug)]
pub enum Token<'a> {
    /// A string field or list element.
    Str(&'a str),
    /// The length of the next list.
    Len(usize),
}

impl<'b> PartialEq<Token<'b>> for Token<'_> {
    fn eq(&self, other: &Token<'b>) -> bool {
        match (self, other) {
            (Token::Str(a), Token::Str(b)) => a == b,
            (Token::Len(a), Token::Len(b)) => a == b,
            _ => false,
        }
    }
}

/// What the table needs of a link in any form: its tokens, its two ids,
/// and an owned [`Link`] when one must be handed out.
pub trait LinkFields {
    /// The link's canonical token stream.
    fn tokens(&self) -> impl Iterator<Item = Token<'_>> + Clone;
    /// The source id.
    fn source_id(&self) -> &str;
    /// The target id.
    fn target(&self) -> &str;
    /// An owned copy.
    fn to_link(&self) -> Link;
}

impl LinkFields for Link {
    fn tokens(&self) -> impl Iterator<Item = Token<'_>> + Clone {
        link_tokens(self)
    }
    fn source_id(&self) -> &str {
        &self.source_id
    }
    fn target(&self) -> &str {
        &self.target
    }
    fn to_link(&self) -> Link {
        self.clone()
    }
}

/// The tokens of a `Link`.
pub fn link_tokens(link: &Link) -> impl Iterator<Item = Token<'_>> + Clone {
    let strs = [
        &link.source_id,
        &link.target,
        &link.name,
        &link.wit_namespace,
        &link.wit_package,
    ];
    let lists = [&link.interfaces, &link.source_config, &link.target_config];
    strs.into_iter().map(|s| Token::Str(s)).chain(
        lists.into_iter().flat_map(|l| {
            core::iter::once(Token::Len(l.len())).chain(l.iter().map(|s| Token::Str(s)))
        }),
    )
}

/// The 64-bit hash of a token stream; equal links hash equally whichever form
/// they are in.
pub fn hash_tokens<'a>(tokens: impl Iterator<Item = Token<'a>>) -> u64 {
    let mut h = FxHasher::default();
    for t in tokens {
        match t {
            Token::Str(s) => {
                h.write(s.as_bytes());
                // 0xff never occurs in UTF-8, so string boundaries are unambiguous.
                h.write_u8(0xff);
            }
            Token::Len(n) => h.write_usize(n),
        }
    }
    h.finish()
}

/// The hash of a `Link`, as [`hash_tokens`] of its tokens.
pub fn link_hash(link: &Link) -> u64 {
    hash_tokens(link_tokens(link))
}

/// The links of one id: a string dictionary plus each link's numbers.
#[derive(Clone, Debug, Default)]
pub struct Packed {
    dict: Vec<Box<str>>,
    data: Vec<u8>,
    /// End offset in `data` of each link; a link starts where the previous
    /// one ends.
    ends: Vec<usize>,
}

impl Packed {
    /// Packs `links` in order.
    pub fn new<L: LinkFields>(links: &[L]) -> Self {
        let mut dict: Vec<Box<str>> = Vec::new();
        let mut slots: FxHashMap<&str, usize> = FxHashMap::default();
        let mut data = Vec::new();
        let mut ends = Vec::with_capacity(links.len());
        for link in links {
            for token in link.tokens() {
                let n = match token {
                    Token::Len(n) => n,
                    Token::Str(s) => *slots.entry(s).or_insert_with(|| {
                        dict.push(s.into());
                        dict.len() - 1
                    }),
                };
                put_num(&mut data, n);
            }
            ends.push(data.len());
        }
        dict.shrink_to_fit();
        data.shrink_to_fit();
        Self { dict, data, ends }
    }

    /// Number of links.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// The tokens of link `i`; `None` past the end.
    pub fn tokens(&self, i: usize) -> Option<PackedTokens<'_>> {
        let end = *self.ends.get(i)?;
        let start = match i.checked_sub(1) {
            Some(prev) => *self.ends.get(prev)?,
            None => 0,
        };
        Some(PackedTokens {
            dict: &self.dict,
            bytes: self.data.get(start..end)?,
            strs_left: 5,
            lists_left: 3,
        })
    }

    /// Link `i` as a `Link`. Packed data is only ever made by [`Packed::new`],
    /// so this is `None` only past the end.
    pub fn link(&self, i: usize) -> Option<Link> {
        let mut t = self.tokens(i)?;
        let mut s = || match t.next() {
            Some(Token::Str(s)) => Some(s.to_string()),
            _ => None,
        };
        let (source_id, target, name, wit_namespace, wit_package) = (s()?, s()?, s()?, s()?, s()?);
        let mut list = || {
            let Some(Token::Len(n)) = t.next() else {
                return None;
            };
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                match t.next() {
                    Some(Token::Str(s)) => out.push(s.to_string()),
                    _ => return None,
                }
            }
            Some(out)
        };
        let (interfaces, source_config, target_config) = (list()?, list()?, list()?);
        Some(Link {
            source_id,
            target,
            name,
            wit_namespace,
            wit_package,
            interfaces,
            source_config,
            target_config,
        })
    }

    /// Every link, in order.
    pub fn links(&self) -> Vec<Link> {
        (0..self.len()).filter_map(|i| self.link(i)).collect()
    }

    /// Whether there are no links.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The bytes of this entry (format 1).
    pub fn to_bytes(&self) -> Vec<u8> {
        let strings: usize = self.dict.iter().map(|s| s.len() + 2).sum();
        let mut out = Vec::with_capacity(strings + self.data.len() + 12);
        put_num(&mut out, self.dict.len());
        for s in &self.dict {
            put_num(&mut out, s.len());
            out.extend_from_slice(s.as_bytes());
        }
        put_num(&mut out, self.ends.len());
        put_num(&mut out, self.data.len());
        out.extend_from_slice(&self.data);
        out
    }

    /// Reads an entry written by [`Packed::to_bytes`], checking every index,
    /// string and length; says what is wrong otherwise.
    pub fn from_bytes(bytes: &[u8]) -> Result<Packed, String> {
        let mut r = Reader { bytes };
        let n = r.num("dictionary size")?;
        // Every string takes at least one byte: a count larger than what is
        // left is a lie, and must not drive an allocation.
        let mut dict: Vec<Box<str>> = Vec::with_capacity(n.min(r.bytes.len()));
        for i in 0..n {
            let len = r.num("string length")?;
            let raw = r.take(len, "string")?;
            let s = core::str::from_utf8(raw)
                .map_err(|e| format!("dictionary string {i} is not UTF-8: {e}"))?;
            dict.push(s.into());
        }
        let count = r.num("link count")?;
        let size = r.num("data size")?;
        let data = r.take(size, "link data")?;
        if !r.bytes.is_empty() {
            return Err(format!("{} bytes after the links", r.bytes.len()));
        }
        let mut ends = Vec::with_capacity(count.min(data.len()));
        let mut links = Reader { bytes: data };
        for i in 0..count {
            let index = |r: &mut Reader<'_>| -> Result<(), String> {
                let at = r.num("string index")?;
                if at >= dict.len() {
                    return Err(format!(
                        "link {i} names string {at} of a dictionary of {}",
                        dict.len()
                    ));
                }
                Ok(())
            };
            for _ in 0..5 {
                index(&mut links)?;
            }
            for _ in 0..3 {
                let len = links.num("list length")?;
                for _ in 0..len {
                    index(&mut links)?;
                }
            }
            ends.push(data.len() - links.bytes.len());
        }
        if !links.bytes.is_empty() {
            return Err(format!(
                "{} bytes of link data after {count} links",
                links.bytes.len()
            ));
        }
        Ok(Packed {
            dict,
            data: data.to_vec(),
            ends,
        })
    }
}

/// The packed bytes (format 1) of `links`.
pub fn pack(links: &[Link]) -> Vec<u8> {
    if links.is_empty() {
        return Vec::new();
    }
    Packed::new(links).to_bytes()
}

/// The links of packed bytes (format 1); no bytes means no links.
pub fn unpack(bytes: &[u8]) -> Result<Vec<Link>, String> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    Ok(Packed::from_bytes(bytes)?.links())
}

/// The number of links in packed bytes, read from the header without
/// decoding them (0 for no bytes).
pub fn count(bytes: &[u8]) -> Result<usize, String> {
    if bytes.is_empty() {
        return Ok(0);
    }
    let mut r = Reader { bytes };
    let n = r.num("dictionary size")?;
    for _ in 0..n {
        let len = r.num("string length")?;
        r.take(len, "string")?;
    }
    r.num("link count")
}

/// Reads LEB128 numbers and byte runs, failing with what it was reading.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn num(&mut self, what: &str) -> Result<usize, String> {
        let mut n: usize = 0;
        for shift in (0..usize::BITS).step_by(7) {
            let Some((&b, rest)) = self.bytes.split_first() else {
                return Err(format!("truncated: {what} missing"));
            };
            self.bytes = rest;
            n |= usize::from(b & 0x7f)
                .checked_shl(shift)
                .ok_or_else(|| format!("{what} overflows"))?;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(format!("{what} overflows"))
    }

    fn take(&mut self, len: usize, what: &str) -> Result<&'a [u8], String> {
        if len > self.bytes.len() {
            return Err(format!(
                "truncated: {what} of {len} bytes, {} left",
                self.bytes.len()
            ));
        }
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(head)
    }
}

/// The tokens of one packed link.
#[derive(Clone, Debug)]
pub struct PackedTokens<'a> {
    dict: &'a [Box<str>],
    bytes: &'a [u8],
    /// Strings to read before the next list length.
    strs_left: usize,
    /// Lists still to read.
    lists_left: usize,
}

impl<'a> Iterator for PackedTokens<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        if self.strs_left > 0 {
            self.strs_left -= 1;
            let i = self.num()?;
            return self.dict.get(i).map(|s| Token::Str(s));
        }
        if self.lists_left > 0 {
            self.lists_left -= 1;
            let n = self.num()?;
            self.strs_left = n;
            return Some(Token::Len(n));
        }
        None
    }
}

impl PackedTokens<'_> {
    fn num(&mut self) -> Option<usize> {
        let mut n: usize = 0;
        for shift in (0..usize::BITS).step_by(7) {
            let (&b, rest) = self.bytes.split_first()?;
            self.bytes = rest;
            n |= usize::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }
}

fn put_num(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let low = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;
    use std::vec;

    fn link(name: &str, target: &str) -> Link {
        Link {
            source_id: "http_keyvalue_counter".into(),
            target: target.into(),
            name: name.into(),
            wit_namespace: "wasi".into(),
            wit_package: "keyvalue".into(),
            interfaces: vec!["atomics".into(), "store".into()],
            source_config: vec![],
            target_config: vec!["redis-url".into(), "x".repeat(300)],
        }
    }

    #[test]
    fn round_trips_and_compares_as_tokens() {
        let links: Vec<Link> = (0..300)
            .map(|i| link(&format!("n{i}"), &format!("t{}", i % 7)))
            .collect();
        let packed = Packed::new(&links);
        assert_eq!(packed.links(), links);
        assert_eq!(packed.link(300), None);
        for (i, l) in links.iter().enumerate() {
            let stored = packed.tokens(i).expect("in range");
            assert!(stored.clone().eq(link_tokens(l)));
            assert_eq!(hash_tokens(stored), link_hash(l));
        }
        let other = packed.tokens(1).expect("in range");
        assert!(!other.eq(link_tokens(&links[0])));
        // Shared strings are stored once.
        assert!(packed.dict.len() < 320, "{}", packed.dict.len());
    }

    #[test]
    fn token_streams_keep_field_boundaries() {
        let a = link("ab", "c");
        let mut b = a.clone();
        b.name = "a".into();
        b.target = "bc".into();
        assert!(!link_tokens(&a).eq(link_tokens(&b)));
        let mut c = a.clone();
        c.interfaces = vec!["atomicsstore".into()];
        assert_ne!(link_hash(&a), link_hash(&c));
        let mut d = a.clone();
        d.source_config = d.interfaces.split_off(1);
        assert!(!link_tokens(&a).eq(link_tokens(&d)));
    }

    #[test]
    fn bytes_round_trip_and_are_checked() {
        let links: Vec<Link> = (0..50)
            .map(|i| link(&format!("n{i}"), &format!("t{}", i % 3)))
            .collect();
        let bytes = pack(&links);
        assert_eq!(unpack(&bytes), Ok(links.clone()));
        assert_eq!(count(&bytes), Ok(50));
        assert_eq!(count(&[]), Ok(0));
        assert_eq!(unpack(&[]), Ok(Vec::new()));
        assert!(pack(&[]).is_empty());
        // Every truncation and every single-byte change is either rejected
        // or still decodes to well-formed links: never a panic.
        for cut in 0..bytes.len() {
            assert!(unpack(&bytes[..cut]).is_err() || cut == 0, "cut {cut}");
        }
        for at in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 0x5a;
            let _ = unpack(&bad);
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(unpack(&extra).unwrap_err().contains("after"));
        // A huge claimed count must not allocate.
        assert!(unpack(&[0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
    }

    #[test]
    fn empty_pack() {
        let packed = Packed::new::<Link>(&[]);
        assert_eq!(packed.len(), 0);
        assert!(packed.tokens(0).is_none());
        assert!(packed.links().is_empty());
    }
}
