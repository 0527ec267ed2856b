//! [`Entries`]: the key-value server's state, and what each request does to it.
//!
//! Pure data and pure functions, with no host call, so that the behaviour of every kv version
//! is tested natively with `cargo test`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Request;

/// The state of a kv process: `{"entries":{"a":42}}`, the same in every version.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Entries {
    /// Every key and its value, in key order.
    pub entries: BTreeMap<String, Value>,
}

/// What `init` accepts: nothing, `null`, or a state to start from, whose `entries` may be
/// left out.
#[derive(Deserialize)]
struct InitArgs {
    #[serde(default)]
    entries: BTreeMap<String, Value>,
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
