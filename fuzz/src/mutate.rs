//! Input generation: random bytes, byte-level mutations of valid seeds (flips, inserted
//! grammar tokens, deletions, duplications, splices, truncation, long repeats), and
//! structure-aware mutations of JSON documents (values swapped for edge cases, keys
//! added and removed, whole subtrees copied).

use rand::Rng;
use rand::rngs::StdRng;
use serde_json::{Map, Value};

use crate::seeds;

/// The largest input generated, so a run's rate stays even.
pub const MAX_INPUT: usize = 64 * 1024;

/// Bytes of any value, 0 to 300 of them.
pub fn random_bytes(rng: &mut StdRng) -> Vec<u8> {
    let len = rng.random_range(0..=300);
    (0..len).map(|_| rng.random()).collect()
}

/// Random text from the grammar's tokens and a few letters and digits.
pub fn random_tokens(rng: &mut StdRng, tokens: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..rng.random_range(0..=60) {
        if rng.random_bool(0.5) {
            out.extend_from_slice(pick::<&[u8]>(rng, tokens));
        } else {
            out.push(*pick(rng, b"ab1 .:-/0"));
        }
    }
    out
}

pub fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// A random position in `data` (0..=len).
fn pos(rng: &mut StdRng, data: &[u8]) -> usize {
    rng.random_range(0..=data.len())
}

/// A random range `start..end` in `data`, at most `max` long.
fn range(rng: &mut StdRng, data: &[u8], max: usize) -> (usize, usize) {
    let start = pos(rng, data);
    let len = rng.random_range(0..=max.min(data.len() - start));
    (start, start + len)
}

/// Applies 1 to 8 byte-level mutations. `seeds` is what a splice takes its other half
/// from; `tokens` what insertions insert.
pub fn mutate_bytes(rng: &mut StdRng, data: &mut Vec<u8>, seeds: &[&[u8]], tokens: &[&[u8]]) {
    for _ in 0..rng.random_range(1..=8) {
        match rng.random_range(0..12) {
            // Flip one bit.
            0 if !data.is_empty() => {
                let i = rng.random_range(0..data.len());
                data[i] ^= 1 << rng.random_range(0..8);
            }
            // Set a byte to anything.
            1 if !data.is_empty() => {
                let i = rng.random_range(0..data.len());
                data[i] = rng.random();
            }
            // Insert a grammar token (twice as likely: it is what finds parser bugs).
            2 | 3 => {
                let at = pos(rng, data);
                let token = pick(rng, tokens);
                data.splice(at..at, token.iter().copied());
            }
            // Delete a range.
            4 => {
                let (a, b) = range(rng, data, 16);
                data.drain(a..b);
            }
            // Duplicate a range somewhere else.
            5 => {
                let (a, b) = range(rng, data, 64);
                let part = data[a..b].to_vec();
                let at = pos(rng, data);
                data.splice(at..at, part);
            }
            // Truncate.
            6 => {
                let at = pos(rng, data);
                data.truncate(at);
            }
            // Insert a few random bytes.
            7 => {
                let at = pos(rng, data);
                let n = rng.random_range(1..=8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
                data.splice(at..at, bytes);
            }
            // Repeat a token or a range many times: long fields, rows and lines.
            8 => {
                let part = if rng.random_bool(0.5) || data.is_empty() {
                    pick(rng, tokens).to_vec()
                } else {
                    let (a, b) = range(rng, data, 32);
                    data[a..b].to_vec()
                };
                let times = if rng.random_bool(0.8) {
                    rng.random_range(2..=64)
                } else {
                    rng.random_range(64..=4096)
                };
                let at = pos(rng, data);
                let repeated: Vec<u8> = std::iter::repeat_n(part, times).flatten().collect();
                data.splice(at..at, repeated);
            }
            // Splice: this input's head, another seed's tail.
            9 => {
                let other = pick(rng, seeds);
                let at = pos(rng, data);
                let from = rng.random_range(0..=other.len());
                data.truncate(at);
                data.extend_from_slice(&other[from..]);
            }
            // Swap a range for a token.
            10 => {
                let (a, b) = range(rng, data, 8);
                let token = pick(rng, tokens);
                data.splice(a..b, token.iter().copied());
            }
            // Swap a digit for another, or a line break for the other kind.
            _ => {
                if let Some(i) = (0..4)
                    .map(|_| rng.random_range(0..data.len().max(1)))
                    .find(|&i| {
                        data.get(i)
                            .is_some_and(|b| b.is_ascii_digit() || *b == b'\n')
                    })
                {
                    data[i] = match data[i] {
                        b'\n' => b'\r',
                        _ => b'0' + rng.random_range(0..10),
                    };
                }
            }
        }
        data.truncate(MAX_INPUT);
    }
}

/// Applies 1 to 4 (most often 1) structure-aware mutations to a JSON document. Half keep
/// the value's type (a string for a string), so many results still parse and the
/// checks behind parsing run too.
pub fn mutate_value(rng: &mut StdRng, value: &mut Value) {
    let times = rng.random_range(1..=4).min(rng.random_range(1..=4));
    for _ in 0..times {
        let donor = value.clone();
        let op = if rng.random_bool(0.5) {
            10
        } else {
            rng.random_range(0..10)
        };
        at_random_node(rng, value, &mut |rng, node| {
            mutate_node(rng, op, node, &donor)
        });
    }
}

fn mutate_node(rng: &mut StdRng, op: u32, node: &mut Value, donor: &Value) {
    match op {
        // Another value of the same type.
        10 => match node {
            Value::String(s) => *s = (*pick(rng, seeds::STRINGS)).to_string(),
            Value::Number(_) => *node = random_number(rng),
            Value::Bool(b) => *b = !*b,
            Value::Array(items) if !items.is_empty() => {
                let i = rng.random_range(0..items.len());
                if rng.random_bool(0.5) {
                    let copy = items[i].clone();
                    items.push(copy);
                } else {
                    items.remove(i);
                }
            }
            other => *other = random_value(rng, donor),
        },
        // Replace the node with an edge-case value of any type.
        0..=3 => *node = random_value(rng, donor),
        // Add a key (an object) or an element (an array).
        4 | 5 => match node {
            Value::Object(map) => {
                let key = (*pick(rng, seeds::KEYS)).to_string();
                map.insert(key, random_value(rng, donor));
            }
            Value::Array(items) => {
                let at = rng.random_range(0..=items.len());
                let item = match items.first() {
                    Some(first) if rng.random_bool(0.5) => first.clone(),
                    _ => random_value(rng, donor),
                };
                items.insert(at, item);
            }
            other => *other = random_value(rng, donor),
        },
        // Remove a key or an element.
        6 | 7 => match node {
            Value::Object(map) if !map.is_empty() => {
                let i = rng.random_range(0..map.len());
                if let Some(key) = map.keys().nth(i).cloned() {
                    map.remove(&key);
                }
            }
            Value::Array(items) if !items.is_empty() => {
                items.remove(rng.random_range(0..items.len()));
            }
            other => *other = Value::Null,
        },
        // Edit a string: a token appended, cut, or repeated.
        8 => {
            if let Value::String(s) = node {
                match rng.random_range(0..3) {
                    0 => s.push_str(pick::<&str>(rng, seeds::STRINGS)),
                    1 => {
                        let chars = s.chars().count();
                        let cut = s
                            .char_indices()
                            .nth(rng.random_range(0..=chars))
                            .map_or(s.len(), |(i, _)| i);
                        s.truncate(cut);
                    }
                    _ => *s = s.repeat(rng.random_range(2..=300)),
                }
            } else {
                *node = random_value(rng, donor);
            }
        }
        // Rename a key to another field's name.
        _ => {
            if let Value::Object(map) = node
                && !map.is_empty()
            {
                let i = rng.random_range(0..map.len());
                if let Some(key) = map.keys().nth(i).cloned()
                    && let Some(v) = map.remove(&key)
                {
                    map.insert((*pick(rng, seeds::KEYS)).to_string(), v);
                }
            }
        }
    }
}

type Visit<'f> = &'f mut dyn FnMut(&mut StdRng, &mut Value);

/// Calls `f` on one node inside the tree (the root only when it is no container): each
/// level further down is as likely as stopping.
fn at_random_node(rng: &mut StdRng, value: &mut Value, f: Visit<'_>) {
    at_node(rng, value, f, true);
}

fn at_node(rng: &mut StdRng, value: &mut Value, f: Visit<'_>, root: bool) {
    let descend = root || rng.random_bool(0.5);
    let child = match value {
        Value::Object(map) if descend && !map.is_empty() => {
            let i = rng.random_range(0..map.len());
            map.values_mut().nth(i)
        }
        Value::Array(items) if descend && !items.is_empty() => {
            let i = rng.random_range(0..items.len());
            items.get_mut(i)
        }
        _ => None,
    };
    match child {
        Some(child) => at_node(rng, child, f, false),
        None => f(rng, value),
    }
}

/// An edge-case value: a string or number from the dictionaries, a bool, null, an empty
/// or small container, or a copy of a subtree of `donor`.
fn random_value(rng: &mut StdRng, donor: &Value) -> Value {
    match rng.random_range(0..10) {
        0..=3 => Value::String((*pick(rng, seeds::STRINGS)).to_string()),
        4 | 5 => random_number(rng),
        6 => Value::Bool(rng.random()),
        7 => match rng.random_range(0..3) {
            0 => Value::Null,
            1 => Value::Object(Map::new()),
            _ => Value::Array(Vec::new()),
        },
        _ => {
            let mut copy = donor.clone();
            let mut out = Value::Null;
            at_random_node(rng, &mut copy, &mut |_, node| out = node.clone());
            out
        }
    }
}

/// A number from the dictionary, sometimes negated: an integer when it is one.
fn random_number(rng: &mut StdRng) -> Value {
    let n = *pick(rng, seeds::NUMBERS);
    let n = if rng.random_bool(0.2) { -n } else { n };
    if n.fract() == 0.0 && n.abs() < 9.2e18 {
        Value::from(n as i64)
    } else if n.fract() == 0.0 && (0.0..1.9e19).contains(&n) {
        Value::from(n as u64)
    } else {
        serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}
