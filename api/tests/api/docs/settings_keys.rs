//! Every setting `Settings` reads, found by deserializing it from a recorder: each struct
//! hands the deserializer its field names, so a key added to any section (or a new
//! section) shows up here with no list to keep by hand. A leaf is a field whose value is
//! not a struct: `http.port`, `limits.login_ip.per_minute`.

use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use vq_core::Settings;

#[derive(Debug)]
struct Error(String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Error {}
impl de::Error for Error {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

/// What a self-describing leaf (`deserialize_any`, as untagged enums ask) is offered:
/// tried in turn per key until the value's own `Deserialize` takes one.
#[derive(Clone, Copy)]
enum Offer {
    Zero,
    Empty,
    Nothing,
    NoEntries,
}
const OFFERS: [Offer; 4] = [Offer::Zero, Offer::Empty, Offer::Nothing, Offer::NoEntries];

struct Walk<'a> {
    path: Vec<String>,
    leaves: &'a RefCell<BTreeSet<String>>,
    offers: &'a BTreeMap<String, usize>,
    failed_at: &'a RefCell<Option<String>>,
}

impl Walk<'_> {
    fn key(&self) -> String {
        self.path.join(".")
    }
    fn leaf(&self) {
        self.leaves.borrow_mut().insert(self.key());
        *self.failed_at.borrow_mut() = Some(self.key());
    }
}

struct Fields<'a, 'b> {
    walk: &'b Walk<'a>,
    fields: std::slice::Iter<'static, &'static str>,
    current: &'static str,
}

impl<'de> MapAccess<'de> for Fields<'_, '_> {
    type Error = Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, k: K) -> Result<Option<K::Value>, Error> {
        let Some(f) = self.fields.next() else {
            return Ok(None);
        };
        self.current = f;
        k.deserialize(f.into_deserializer()).map(Some)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, v: V) -> Result<V::Value, Error> {
        let mut path = self.walk.path.clone();
        path.push(self.current.to_string());
        v.deserialize(Walk { path, ..*self.walk })
    }
}

struct NoItems;
impl<'de> SeqAccess<'de> for NoItems {
    type Error = Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        _: T,
    ) -> Result<Option<T::Value>, Error> {
        Ok(None)
    }
}

impl<'de> MapAccess<'de> for NoItems {
    type Error = Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, _: K) -> Result<Option<K::Value>, Error> {
        Ok(None)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, _: V) -> Result<V::Value, Error> {
        Err(de::Error::custom("no value"))
    }
}

macro_rules! leaf {
    ($($m:ident => $visit:ident($($v:expr)?)),* $(,)?) => {$(
        fn $m<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.leaf();
            visitor.$visit($($v)?)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Walk<'_> {
    type Error = Error;

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let map = Fields {
            walk: &self,
            fields: fields.iter(),
            current: "",
        };
        visitor.visit_map(map)
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.leaf();
        match OFFERS[*self.offers.get(&self.key()).unwrap_or(&0)] {
            Offer::Zero => visitor.visit_u64(0),
            Offer::Empty => visitor.visit_str(""),
            Offer::Nothing => visitor.visit_seq(NoItems),
            Offer::NoEntries => visitor.visit_map(NoItems),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    leaf! {
        deserialize_bool => visit_bool(false),
        deserialize_i8 => visit_i8(0), deserialize_i16 => visit_i16(0),
        deserialize_i32 => visit_i32(0), deserialize_i64 => visit_i64(0),
        deserialize_u8 => visit_u8(0), deserialize_u16 => visit_u16(0),
        deserialize_u32 => visit_u32(0), deserialize_u64 => visit_u64(0),
        deserialize_f32 => visit_f32(0.0), deserialize_f64 => visit_f64(0.0),
        deserialize_char => visit_char('x'), deserialize_str => visit_str(""),
        deserialize_string => visit_str(""), deserialize_bytes => visit_bytes(b""),
        deserialize_byte_buf => visit_bytes(b""),
        deserialize_unit => visit_unit(), deserialize_seq => visit_seq(NoItems),
        deserialize_identifier => visit_str(""), deserialize_ignored_any => visit_unit(),
    }

    /// An optional setting is walked as if present, so an optional section still shows
    /// its keys.
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    /// An enum setting is a leaf; its first variant is offered (unit variants only).
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.leaf();
        visitor.visit_enum(variants[0].into_deserializer())
    }

    serde::forward_to_deserialize_any! { unit_struct tuple tuple_struct map }
}

/// Every leaf key of `Settings`, dotted (`redis.wait_timeout`).
pub fn all() -> BTreeSet<String> {
    leaves_of::<Settings>()
}

/// Every leaf key of a settings type `T`.
fn leaves_of<T: for<'de> serde::Deserialize<'de>>() -> BTreeSet<String> {
    let mut offers = BTreeMap::new();
    for _ in 0..64 {
        let leaves = RefCell::new(BTreeSet::new());
        let failed_at = RefCell::new(None);
        let walk = Walk {
            path: Vec::new(),
            leaves: &leaves,
            offers: &offers,
            failed_at: &failed_at,
        };
        match T::deserialize(walk) {
            Ok(_) => return leaves.into_inner(),
            Err(e) => {
                let at = failed_at.into_inner().unwrap_or_else(|| panic!("{e}"));
                let next = offers.get(&at).map_or(1, |n| n + 1);
                assert!(next < OFFERS.len(), "no offer fits setting {at}: {e}");
                offers.insert(at, next);
            }
        }
    }
    panic!("the settings walk did not settle")
}

/// The environment variable of a dotted key: `limits.login_ip.burst` →
/// `VQ_LIMITS__LOGIN_IP__BURST`, `log_json` → `VQ_LOG_JSON`.
pub fn env_var(key: &str) -> String {
    format!("VQ_{}", key.to_uppercase().replace('.', "__"))
}

#[test]
fn the_walk_finds_the_keys_of_every_shape_a_setting_takes() {
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Probe {
        rate: u32,
        section: Option<Section>,
        mode: Mode,
        by_name: std::collections::HashMap<String, u32>,
        urls: Vec<String>,
        #[serde(default)]
        tls: bool,
    }
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Section {
        timeout_ms: u64,
        secret: Option<String>,
    }
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    enum Mode {
        Auto,
        Off,
    }
    let got: Vec<String> = leaves_of::<Probe>().into_iter().collect();
    let want = [
        "by_name",
        "mode",
        "rate",
        "section.secret",
        "section.timeout_ms",
        "tls",
        "urls",
    ];
    assert_eq!(got, want);
    assert_eq!(env_var("section.timeout_ms"), "VQ_SECTION__TIMEOUT_MS");
}
