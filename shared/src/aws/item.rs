//! DynamoDB item helpers: JSON documents as native maps (readable in the console),
//! and typed reads of attributes.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Map, Number, Value as Json};

use crate::model::values::{Value, push_datetime, push_number};

pub type Item = HashMap<String, AttributeValue>;

/// A JSON value as a DynamoDB attribute. Empty strings are kept (DynamoDB allows
/// them outside keys).
pub fn from_json(value: &Json) -> AttributeValue {
    match value {
        Json::Null => AttributeValue::Null(true),
        Json::Bool(b) => AttributeValue::Bool(*b),
        Json::Number(n) => AttributeValue::N(n.to_string()),
        Json::String(s) => AttributeValue::S(s.clone()),
        Json::Array(items) => AttributeValue::L(items.iter().map(from_json).collect()),
        Json::Object(map) => {
            AttributeValue::M(map.iter().map(|(k, v)| (k.clone(), from_json(v))).collect())
        }
    }
}

/// A DynamoDB attribute as JSON; sets become arrays, binary becomes null.
pub fn to_json(value: &AttributeValue) -> Json {
    match value {
        AttributeValue::S(s) => Json::String(s.clone()),
        AttributeValue::N(n) => parse_number(n),
        AttributeValue::Bool(b) => Json::Bool(*b),
        AttributeValue::L(items) => Json::Array(items.iter().map(to_json).collect()),
        AttributeValue::M(map) => Json::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect::<Map<_, _>>(),
        ),
        AttributeValue::Ss(items) => Json::Array(items.iter().cloned().map(Json::String).collect()),
        AttributeValue::Ns(items) => Json::Array(items.iter().map(|n| parse_number(n)).collect()),
        _ => Json::Null,
    }
}

fn parse_number(n: &str) -> Json {
    if let Ok(i) = n.parse::<i64>() {
        return Json::Number(i.into());
    }
    n.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map_or_else(|| Json::String(n.to_string()), Json::Number)
}

/// A typed value as a DynamoDB attribute: numbers in their shortest exact form,
/// date-times as UTC ISO-8601 strings, lists as lists of strings.
pub fn attribute(value: Value) -> AttributeValue {
    match value {
        Value::String(s) => AttributeValue::S(s),
        Value::Integer(i) => AttributeValue::N(itoa::Buffer::new().format(i).to_string()),
        Value::Number(n) => {
            let mut s = String::with_capacity(24);
            push_number(&mut s, n);
            AttributeValue::N(s)
        }
        Value::Boolean(b) => AttributeValue::Bool(b),
        Value::DateTime(t) => {
            let mut s = String::with_capacity(30);
            push_datetime(&mut s, &t);
            AttributeValue::S(s)
        }
        Value::List(items) => AttributeValue::L(items.into_iter().map(AttributeValue::S).collect()),
    }
}

/// An item's size as DynamoDB counts it for capacity: each attribute's name and value.
/// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html
pub fn item_bytes(item: &Item) -> usize {
    item.iter()
        .map(|(name, v)| name.len() + value_bytes(v))
        .sum()
}

/// A value's size: strings and binaries their bytes, a number one byte per two
/// significant digits and one more, a list or map 3 bytes and one an element besides
/// its elements (a map's also their names), booleans and nulls one byte.
fn value_bytes(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number_bytes(n),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Ss(items) => items.iter().map(String::len).sum(),
        AttributeValue::Ns(items) => items.iter().map(|n| number_bytes(n)).sum(),
        AttributeValue::Bs(items) => items.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(items) => 3 + items.iter().map(|v| 1 + value_bytes(v)).sum::<usize>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(k, v)| 1 + k.len() + value_bytes(v))
                .sum::<usize>()
        }
        _ => 1,
    }
}

fn number_bytes(n: &str) -> usize {
    let digits: String = n
        .chars()
        .take_while(|c| *c != 'e' && *c != 'E')
        .filter(char::is_ascii_digit)
        .collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
    significant.div_ceil(2) + 1
}

/// The write units one standard write of an item of `bytes` takes: one per KB begun.
/// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/provisioned-capacity-mode.html
pub fn write_units(bytes: usize) -> u64 {
    bytes.div_ceil(1024).max(1) as u64
}

/// An item as one JSON object.
pub fn item_to_json(item: &Item) -> Json {
    Json::Object(item.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
}

pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub fn get_s<'a>(item: &'a Item, key: &str) -> Option<&'a str> {
    item.get(key)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

pub fn get_n<T: std::str::FromStr>(item: &Item, key: &str) -> Option<T> {
    item.get(key)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_count_as_dynamodb_bills_them() {
        let item: Item = [
            ("id".to_string(), s("u1")),                         // 2 + 2
            ("n".to_string(), n("1200.50")),                     // 1 + 3 + 1 (12005: 5 digits)
            ("l".to_string(), AttributeValue::L(vec![s("ab")])), // 1 + 3 + 1 + 2
            ("b".to_string(), AttributeValue::Bool(true)),       // 1 + 1
        ]
        .into_iter()
        .collect();
        assert_eq!(item_bytes(&item), 4 + 5 + 7 + 2);
        assert_eq!(write_units(1), 1);
        assert_eq!(write_units(1024), 1);
        assert_eq!(write_units(1025), 2);
    }

    #[test]
    fn json_round_trip() {
        let doc = serde_json::json!({
            "a": "x", "b": 1, "c": 1.5, "d": true, "e": null, "f": [1, "two"], "g": {"h": ""}
        });
        assert_eq!(to_json(&from_json(&doc)), doc);
    }
}
