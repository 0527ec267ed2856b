//! [`Entries`]: the key-value server's state, and what each request does to it.
//!
//! Pure data and pure functions, with no host call, so that the behaviour of every kv version
//! is tested natively with `cargo test`.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Request;

/// The state of a kv process: `{"entries":{"a":42}}`, the same in every version.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Entries {
    /// Every key and its value, in key order.
    #[serde(deserialize_with = "in_bulk")]
    pub entries: BTreeMap<String, Value>,
}

/// What `init` accepts: nothing, `null`, or a state to start from, whose `entries` may be
/// left out.
#[derive(Deserialize)]
struct InitArgs {
    #[serde(default, deserialize_with = "in_bulk")]
    entries: BTreeMap<String, Value>,
}

/// Reads a JSON object into a map built in one pass from its sorted pairs, instead of one
/// insert per key. A state arrives in key order, as [`Entries`] writes it, and inserting
/// each key searched the tree again: for a 1 MiB state (57,000 keys), those searches' string
/// comparisons were about half the CPU of a swap. A later duplicate key wins, as with inserts.
/// The price is memory for a moment: the pairs, and the scratch space of the (stable) sort
/// that finds them sorted, are held beside the tree being built, so a state close to the
/// instance's memory limit has less room than it had with inserts.
fn in_bulk<'de, D: Deserializer<'de>>(input: D) -> Result<BTreeMap<String, Value>, D::Error> {
    struct Pairs;

    impl<'de> Visitor<'de> for Pairs {
        type Value = BTreeMap<String, Value>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object of entries")
        }

        fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
            let mut pairs: Vec<(String, Value)> = Vec::new();
            while let Some(pair) = map.next_entry()? {
                pairs.push(pair);
            }
            // A stable sort that finds the pairs sorted already, then a bulk build.
            Ok(pairs.into_iter().collect())
        }
    }

    input.deserialize_map(Pairs)
}

impl Entries {
    /// The state of a fresh process, from its spawn arguments: empty for no arguments or
    /// `null`, else a state as [`snapshot`](hotswap_guest::GenServer::snapshot) writes it,
    /// `{"entries":{...}}` (an empty object will do).
    pub fn from_init_args(args: &[u8]) -> Result<Entries, String> {
        if args.iter().all(u8::is_ascii_whitespace) {
            return Ok(Entries::default());
        }
        let args: Option<InitArgs> = hotswap_guest::json::decode(args).map_err(|why| {
            format!("bad init arguments (want nothing, null or {{\"entries\":{{...}}}}): {why}")
        })?;
        Ok(Entries {
            entries: args.map(|args| args.entries).unwrap_or_default(),
        })
    }

    /// Carries out `request` and returns the reply.
    pub fn apply(&mut self, request: Request) -> Value {
        match request {
            Request::Put { key, value } => self.entries.insert(key, value).unwrap_or(Value::Null),
            Request::Get { key } => self.entries.get(&key).cloned().unwrap_or(Value::Null),
            Request::Delete { key } => self.entries.remove(&key).unwrap_or(Value::Null),
            Request::Keys => self.entries.keys().cloned().collect(),
            Request::Count => self.entries.len().into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(entries: &mut Entries, request: Value) -> Value {
        let request = Request::parse(request.to_string().as_bytes()).unwrap();
        entries.apply(request)
    }

    #[test]
    fn put_get_delete_reply_with_the_value_before() {
        let mut kv = Entries::default();
        assert_eq!(run(&mut kv, json!({"op":"get","key":"a"})), Value::Null);
        assert_eq!(
            run(&mut kv, json!({"op":"put","key":"a","value":42})),
            Value::Null
        );
        assert_eq!(
            run(&mut kv, json!({"op":"put","key":"a","value":[1]})),
            json!(42)
        );
        assert_eq!(run(&mut kv, json!({"op":"get","key":"a"})), json!([1]));
        assert_eq!(run(&mut kv, json!({"op":"delete","key":"a"})), json!([1]));
        assert_eq!(run(&mut kv, json!({"op":"delete","key":"a"})), Value::Null);
        assert_eq!(run(&mut kv, json!({"op":"count"})), json!(0));
    }

    #[test]
    fn keys_are_sorted_and_counted() {
        let mut kv = Entries::default();
        for key in ["b", "c", "a"] {
            run(&mut kv, json!({"op":"put","key":key,"value":true}));
        }
        assert_eq!(run(&mut kv, json!({"op":"keys"})), json!(["a", "b", "c"]));
        assert_eq!(run(&mut kv, json!({"op":"count"})), json!(3));
    }

    #[test]
    fn the_state_is_entries_as_json() {
        let mut kv = Entries::default();
        run(&mut kv, json!({"op":"put","key":"a","value":42}));
        assert_eq!(
            serde_json::to_value(&kv).unwrap(),
            json!({"entries":{"a":42}})
        );
        let back: Entries = serde_json::from_value(json!({"entries":{"a":42}})).unwrap();
        assert_eq!(back, kv);
    }

    #[test]
    fn a_state_in_any_key_order_reads_back_the_same_and_the_last_duplicate_wins() {
        let sorted: Entries = serde_json::from_str(r#"{"entries":{"a":1,"b":2,"c":3}}"#).unwrap();
        let shuffled: Entries = serde_json::from_str(r#"{"entries":{"c":3,"a":1,"b":2}}"#).unwrap();
        assert_eq!(sorted, shuffled);
        assert_eq!(sorted.entries.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
        let twice: Entries = serde_json::from_str(r#"{"entries":{"a":1,"b":2,"a":3}}"#).unwrap();
        assert_eq!(
            twice.entries,
            BTreeMap::from([("a".into(), json!(3)), ("b".into(), json!(2))])
        );
        let wrong = serde_json::from_str::<Entries>(r#"{"entries":[1]}"#).unwrap_err();
        assert!(
            wrong.to_string().contains("an object of entries"),
            "{wrong}"
        );
    }

    #[test]
    fn init_takes_nothing_null_or_a_state() {
        assert_eq!(Entries::from_init_args(b""), Ok(Entries::default()));
        assert_eq!(Entries::from_init_args(b" null "), Ok(Entries::default()));
        assert_eq!(Entries::from_init_args(b"{}"), Ok(Entries::default()));
        let seeded = Entries::from_init_args(br#"{"entries":{"a":1}}"#).unwrap();
        assert_eq!(seeded.entries.get("a"), Some(&json!(1)));
        let refused = Entries::from_init_args(b"[1]").unwrap_err();
        assert!(refused.starts_with("bad init arguments"), "{refused}");
    }
}
