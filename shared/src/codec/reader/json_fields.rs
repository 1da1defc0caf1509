//! The serde seeds and visitors that walk one JSON object: wanted keys are written to
//! their cells (nested one level by `parent.child`), the rest is skipped unparsed.

use std::collections::HashMap;
use std::fmt::{self, Write as _};

use serde::Deserialize as _;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Where each wanted JSON key goes: top-level keys, and `parent.child` paths by parent.
#[derive(Debug, Default)]
pub(super) struct ColumnIndex {
    pub(super) top: HashMap<String, Entry>,
}

#[derive(Debug, Default)]
pub(super) struct Entry {
    /// Columns named exactly this key (several when a column is listed twice).
    pub(super) slots: Vec<usize>,
    /// Columns under this key, by child key.
    pub(super) nested: Option<HashMap<String, Vec<usize>>>,
}

impl ColumnIndex {
    pub(super) fn new(columns: &[String]) -> Self {
        let mut top: HashMap<String, Entry> = HashMap::new();
        for (i, c) in columns.iter().enumerate() {
            // A literal key `a.b` and a nested `{"a": {"b": ..}}` both fill `a.b`.
            top.entry(c.clone()).or_default().slots.push(i);
            if let Some((parent, child)) = c.split_once('.') {
                top.entry(parent.to_string())
                    .or_default()
                    .nested
                    .get_or_insert_with(HashMap::new)
                    .entry(child.to_string())
                    .or_default()
                    .push(i);
            }
        }
        Self { top }
    }
}

/// Where cell text goes while an object is walked.
pub(super) struct Out<'r> {
    pub(super) text: &'r mut String,
    pub(super) spans: &'r mut [Option<(usize, usize)>],
}

impl Out<'_> {
    fn reborrow(&mut self) -> Out<'_> {
        Out {
            text: &mut *self.text,
            spans: &mut *self.spans,
        }
    }

    /// Marks the text written since `start` as the value of `slots`.
    fn set(&mut self, slots: &[usize], start: usize) {
        let end = self.text.len();
        for &i in slots {
            if let Some(s) = self.spans.get_mut(i) {
                *s = Some((start, end));
            }
        }
    }
}

/// The top-level object: routes each wanted key to its cell, skips the rest.
pub(super) struct RowSeed<'a, 'r> {
    pub(super) index: &'a ColumnIndex,
    pub(super) out: Out<'r>,
}

impl<'de> DeserializeSeed<'de> for RowSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let top = &self.index.top;
        while let Some(entry) = map.next_key_seed(KeySeed(top))? {
            match entry {
                Some(e) => map.next_value_seed(CellSeed {
                    slots: &e.slots,
                    nested: e.nested.as_ref(),
                    out: self.out.reborrow(),
                })?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// Looks a key up without allocating it (borrowed or transient, serde gives a `&str`).
struct KeySeed<'a, V>(&'a HashMap<String, V>);

impl<'de, 'a, V> DeserializeSeed<'de> for KeySeed<'a, V> {
    type Value = Option<&'a V>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, 'a, V> Visitor<'de> for KeySeed<'a, V> {
    type Value = Option<&'a V>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self.0.get(key))
    }
}

/// One wanted value: its text goes to `slots`; an object with wanted children is
/// walked one level further.
struct CellSeed<'a, 'r> {
    slots: &'a [usize],
    nested: Option<&'a HashMap<String, Vec<usize>>>,
    out: Out<'r>,
}

impl<'de> DeserializeSeed<'de> for CellSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl CellSeed<'_, '_> {
    fn write(mut self, f: impl FnOnce(&mut String)) {
        if self.slots.is_empty() {
            return;
        }
        let start = self.out.text.len();
        f(self.out.text);
        self.out.set(self.slots, start);
    }
}

impl<'de> Visitor<'de> for CellSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.write(|t| t.push_str(if v { "true" } else { "false" }));
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.write(|t| {
            let _ = write!(t, "{v}");
        });
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.write(|t| {
            let _ = write!(t, "{v}");
        });
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        // Shortest text that reads back as the same number (`1.5`, `0.1`).
        self.write(|t| {
            let _ = write!(t, "{v}");
        });
        Ok(())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        // An empty string is absent, like null.
        if !v.is_empty() {
            self.write(|t| t.push_str(v));
        }
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        if self.slots.is_empty() {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(());
        }
        // `[a|b|c]`: MoEngage's array form, which list attributes parse.
        let start = self.out.text.len();
        self.out.text.push('[');
        let mut first = true;
        loop {
            if !first {
                self.out.text.push('|');
            }
            if seq
                .next_element_seed(ItemSeed {
                    text: &mut *self.out.text,
                })?
                .is_none()
            {
                if !first {
                    self.out.text.pop();
                }
                break;
            }
            first = false;
        }
        self.out.text.push(']');
        self.out.set(self.slots, start);
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        if let Some(nested) = self.nested {
            while let Some(slots) = map.next_key_seed(KeySeed(nested))? {
                match slots {
                    Some(slots) => map.next_value_seed(CellSeed {
                        slots,
                        nested: None,
                        out: self.out.reborrow(),
                    })?,
                    None => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            return Ok(());
        }
        // A wanted object deeper than two levels: its JSON text.
        let v = serde_json::Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
        self.write(|t| {
            let _ = write!(t, "{v}");
        });
        Ok(())
    }
}

/// One array item inside `[a|b|c]`: strings as they are, scalars as JSON, null as
/// nothing, nested arrays and objects as JSON text.
struct ItemSeed<'r> {
    text: &'r mut String,
}

impl<'de> DeserializeSeed<'de> for ItemSeed<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ItemSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.text.push_str(if v { "true" } else { "false" });
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        let _ = write!(self.text, "{v}");
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        let _ = write!(self.text, "{v}");
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        let _ = write!(self.text, "{v}");
        Ok(())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.text.push_str(v);
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        let v = serde_json::Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        let _ = write!(self.text, "{v}");
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        let v = serde_json::Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
        let _ = write!(self.text, "{v}");
        Ok(())
    }
}

/// Lists an object's dot paths in key order: `key` for a value, `key.child` for each
/// key of a nested object (two levels deep).
pub(super) struct PathsSeed<'o> {
    pub(super) out: &'o mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for PathsSeed<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PathsSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            let children = map.next_value_seed(ChildKeys)?;
            let paths: Vec<String> = match children {
                Some(keys) => keys.into_iter().map(|k| format!("{key}.{k}")).collect(),
                None => vec![key],
            };
            for p in paths {
                // Duplicate keys in one object name one column.
                if !self.out.contains(&p) {
                    self.out.push(p);
                }
            }
        }
        Ok(())
    }
}

/// A value's keys when it is an object, else None.
struct ChildKeys;

impl<'de> DeserializeSeed<'de> for ChildKeys {
    type Value = Option<Vec<String>>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ChildKeys {
    type Value = Option<Vec<String>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut keys = Vec::new();
        while let Some(k) = map.next_key::<String>()? {
            map.next_value::<IgnoredAny>()?;
            keys.push(k);
        }
        // An empty object still names a column, so the preview shows it.
        Ok((!keys.is_empty()).then_some(keys))
    }
}
