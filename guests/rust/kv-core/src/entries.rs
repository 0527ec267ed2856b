//! [`Entries`]: the key-value server's state, and what each request does to it.
//!
//! Pure data and pure functions, with no host call, so that the behaviour of every kv version
//! is tested natively with `cargo test`.
//!
//! The entries are a [`TextMap`]: each is kept as the state writes it, `"key":value`, in pages
//! of a few KiB, so that a reply echoes a value's stored text and writing the state (in the
//! pause of a hot swap) copies a few hundred runs of bytes, not a tree of values.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Request;
use crate::text_map::TextMap;

/// The state of a kv process: `{"entries":{"a":42}}`, the same in every version.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Entries {
    /// Every key and its value, in key order.
    entries: TextMap,
}

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(input: D) -> Result<Self, D::Error> {
        let entries = StateObject::read(input, "struct Entries", true)?;
        Ok(Entries { entries })
    }
}

/// What a request answers, written as JSON only when it is read: the reply to a cast is
/// dropped unwritten.
#[derive(Debug)]
pub struct Reply<'a>(Answer<'a>);

#[derive(Debug)]
enum Answer<'a> {
    /// No value was there.
    Null,
    /// The JSON text of the value a get read.
    Read(&'a [u8]),
    /// The JSON text of the value a put replaced or a delete removed.
    Taken(Vec<u8>),
    /// Every key, in order.
    Keys(Vec<&'a str>),
    /// How many keys there are.
    Count(usize),
}

impl Reply<'_> {
    /// The reply as JSON, borrowed from the stored entry when it is one's value.
    pub fn json(&self) -> Result<Cow<'_, [u8]>, String> {
        Ok(match &self.0 {
            Answer::Null => Cow::Borrowed(b"null"),
            Answer::Read(value) => Cow::Borrowed(value),
            Answer::Taken(value) => Cow::Borrowed(value),
            Answer::Keys(keys) => Cow::Owned(hotswap_guest::json::encode(keys)?),
            Answer::Count(count) => Cow::Owned(count.to_string().into_bytes()),
        })
    }

    /// The reply as JSON, owned: what a call answers.
    pub fn to_json(&self) -> Result<Vec<u8>, String> {
        self.json().map(Cow::into_owned)
    }
}

/// What `init` accepts: nothing, `null`, or a state to start from, whose `entries` may be
/// left out.
struct InitArgs {
    entries: TextMap,
}

impl<'de> Deserialize<'de> for InitArgs {
    fn deserialize<D: Deserializer<'de>>(input: D) -> Result<Self, D::Error> {
        let entries = StateObject::read(input, "struct InitArgs", false)?;
        Ok(InitArgs { entries })
    }
}

/// Reads a state object, `{"entries":{...}}`, for [`Entries`] and [`InitArgs`], as serde's
/// derive would but for two things the Python, JavaScript and C kvs do differently: an array
/// is refused (a derived struct takes its fields in order from one, so `[{"a":1}]` would be
/// a state), and another field is read, not skipped (serde_json skips what a struct ignores
/// without checking its numbers, escapes or UTF-8). `entries` twice is refused, as the
/// derive refuses it.
struct StateObject {
    expecting: &'static str,
    entries_required: bool,
}

impl StateObject {
    /// The entries of the state object `input`; none when `entries_required` is false and
    /// the object has no `entries`.
    fn read<'de, D: Deserializer<'de>>(
        input: D,
        expecting: &'static str,
        entries_required: bool,
    ) -> Result<TextMap, D::Error> {
        let visitor = StateObject {
            expecting,
            entries_required,
        };
        Ok(input.deserialize_map(visitor)?.unwrap_or_default())
    }
}

impl<'de> Visitor<'de> for StateObject {
    type Value = Option<TextMap>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let mut entries = None;
        while let Some(name) = map.next_key::<String>()? {
            if name == "entries" {
                if entries.is_some() {
                    return Err(M::Error::duplicate_field("entries"));
                }
                entries = Some(map.next_value_seed(InBulk)?);
            } else {
                map.next_value::<Value>()?;
            }
        }
        if entries.is_none() && self.entries_required {
            return Err(M::Error::missing_field("entries"));
        }
        Ok(entries)
    }
}

/// [`in_bulk`] as a seed, for [`StateObject`].
struct InBulk;

impl<'de> DeserializeSeed<'de> for InBulk {
    type Value = TextMap;

    fn deserialize<D: Deserializer<'de>>(self, input: D) -> Result<TextMap, D::Error> {
        in_bulk(input)
    }
}

/// Reads a JSON object into a map, each value written as text as soon as it is read, so that
/// no more than one parsed value is held at a time. A state arrives in key order, as
/// [`Entries`] writes it: each member is then written after the last, with no search
/// ([`TextMap::push`]); inserting each key searched the tree again, and for a 0.9 MB state
/// (57,000 keys) those searches' string comparisons were about half the CPU of a swap. A
/// state in another order is read too, one insert per key; a later duplicate key wins.
///
/// Each value is parsed and written again, so that the text kept is serde_json's whatever the
/// writer of the state (another language, an operator's `replace-state`) left in it: spaces,
/// escapes, `1E2` for `100.0`. That is done in `code-change`, which an optimistic swap runs
/// before its pause; a swap that falls back to the classic way pays it in the pause.
fn in_bulk<'de, D: Deserializer<'de>>(input: D) -> Result<TextMap, D::Error> {
    struct Pairs;

    impl<'de> Visitor<'de> for Pairs {
        type Value = TextMap;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object of entries")
        }

        fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
            let mut entries = TextMap::default();
            while let Some((key, value)) = map.next_entry::<String, Value>()? {
                entries
                    .push(key, &value)
                    .map_err(serde::de::Error::custom)?;
            }
            Ok(entries)
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

    /// How many keys are held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.entries.len() == 0
    }

    /// Carries out `request` and returns its reply. Fails only for a value that JSON cannot
    /// hold, which a parsed request never has.
    pub fn apply(&mut self, request: Request) -> Result<Reply<'_>, String> {
        Ok(Reply(match request {
            Request::Put { key, value } => self
                .entries
                .insert(key, &value)?
                .map_or(Answer::Null, Answer::Taken),
            Request::Get { key } => self.entries.get(&key).map_or(Answer::Null, Answer::Read),
            Request::Delete { key } => self
                .entries
                .remove(&key)
                .map_or(Answer::Null, Answer::Taken),
            Request::Keys => Answer::Keys(self.entries.keys().collect()),
            Request::Count => Answer::Count(self.entries.len()),
        }))
    }

    /// How many bytes [`write_json`](Self::write_json) writes.
    pub fn json_len(&self) -> usize {
        br#"{"entries":{}}"#.len() + self.entries.members_len()
    }

    /// Writes the state as JSON at the end of `out`: the same bytes as `serde_json::to_vec`,
    /// put together from the stored entries.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(br#"{"entries":{"#);
        self.entries.write_members(out);
        out.extend_from_slice(b"}}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AccessLog;
    use serde_json::json;

    fn run(entries: &mut Entries, request: Value) -> Value {
        let request = Request::parse(request.to_string().as_bytes()).unwrap();
        serde_json::from_slice(&entries.apply(request).unwrap().to_json().unwrap()).unwrap()
    }

    /// Values whose JSON text a careless writer would get wrong: nested objects out of key
    /// order, floats, escapes, large integers.
    fn awkward_values() -> Vec<Value> {
        vec![
            json!(null),
            json!(true),
            json!(0),
            json!(-1),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(1.5),
            json!(-0.0),
            json!(1e300),
            json!("quote \" backslash \\ newline \n tab \t bell \u{7} del \u{7f} é 🦀"),
            json!([1, [2, {"z": 1, "a": [null]}], ""]),
            json!({"b": {"d": 1, "c": 2}, "a": []}),
        ]
    }

    /// Keys that need escaping, or nearly do.
    fn awkward_keys() -> Vec<String> {
        let mut keys: Vec<String> = (0u8..0x80).map(|b| char::from(b).to_string()).collect();
        keys.extend(["", "plain", "a\"b", "back\\slash", "é", "🦀 crab"].map(String::from));
        keys
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
        assert_eq!((kv.len(), kv.is_empty()), (3, false));
    }

    #[test]
    fn a_reply_is_serde_jsons_text_of_the_value_whatever_the_request_spelled() {
        let mut kv = Entries::default();
        let put = br#"{"op":"put","key":"a","value": { "b" : 1E2, "a" : "\u00e9\/" } }"#;
        assert_eq!(
            kv.apply(Request::parse(put).unwrap())
                .unwrap()
                .to_json()
                .unwrap(),
            b"null"
        );
        let get = Request::parse(br#"{"op":"get","key":"a"}"#).unwrap();
        assert_eq!(
            kv.apply(get).unwrap().to_json().unwrap(),
            r#"{"a":"é/","b":100.0}"#.as_bytes()
        );
        for value in awkward_values() {
            let put = Request::Put {
                key: "k".into(),
                value: value.clone(),
            };
            kv.apply(put).unwrap();
            let get = kv
                .apply(Request::Get { key: "k".into() })
                .unwrap()
                .to_json()
                .unwrap();
            assert_eq!(get, serde_json::to_vec(&value).unwrap(), "{value}");
        }
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
    fn write_json_writes_what_serde_json_writes() {
        let mut kv = Entries::default();
        let mut expected = serde_json::Map::new();
        for (i, key) in awkward_keys().into_iter().enumerate() {
            let values = awkward_values();
            let value = values[i % values.len()].clone();
            kv.apply(Request::Put {
                key: key.clone(),
                value: value.clone(),
            })
            .unwrap();
            expected.insert(key, value);
        }
        let mut written = b"left alone".to_vec();
        kv.write_json(&mut written);
        let expected = serde_json::to_vec(&json!({ "entries": expected })).unwrap();
        assert_eq!(written.strip_prefix(b"left alone"), Some(&expected[..]));
        assert_eq!(kv.json_len(), expected.len());
        assert_eq!(serde_json::to_vec(&kv).unwrap(), expected);
        let mut empty = Vec::new();
        Entries::default().write_json(&mut empty);
        assert_eq!(empty, br#"{"entries":{}}"#);
        assert_eq!(Entries::default().json_len(), empty.len());
    }

    #[test]
    fn a_written_state_reads_back_and_writes_again_byte_for_byte() {
        let mut kv = Entries::default();
        for (i, key) in awkward_keys().into_iter().enumerate() {
            let values = awkward_values();
            let value = values[i % values.len()].clone();
            kv.apply(Request::Put { key, value }).unwrap();
        }
        let written = kv.snapshot();
        let adopted = Entries::from_init_args(&written).unwrap();
        assert_eq!(adopted, kv);
        assert_eq!(adopted.snapshot(), written);
    }

    #[test]
    fn keys_reply_with_serde_jsons_escapes() {
        let mut kv = Entries::default();
        for key in awkward_keys() {
            kv.apply(Request::Put {
                key,
                value: Value::Null,
            })
            .unwrap();
        }
        let mut keys = awkward_keys();
        keys.sort();
        let reply = kv.apply(Request::Keys).unwrap().to_json().unwrap();
        assert_eq!(reply, serde_json::to_vec(&keys).unwrap());
    }

    #[test]
    fn entries_beside_other_fields_are_written_by_serde_json_as_kv_writes_them() {
        #[derive(Serialize, Deserialize)]
        struct Wider {
            #[serde(flatten)]
            kv: Entries,
            mode: u8,
        }
        let state = br#"{"entries":{"b":{"y":1.0,"x":[]},"a":"\u0041"},"mode":7}"#;
        let wider: Wider = serde_json::from_slice(state).unwrap();
        assert_eq!(wider.mode, 7);
        assert_eq!(
            serde_json::to_vec(&wider).unwrap(),
            br#"{"entries":{"a":"A","b":{"x":[],"y":1.0}},"mode":7}"#
        );
    }

    #[test]
    fn the_deepest_value_a_put_keeps_reads_back_from_the_state_and_a_deeper_one_is_refused() {
        let nested = |levels: usize| format!("{}{}", "[".repeat(levels), "]".repeat(levels));
        let put = |levels: usize| {
            let value = format!(r#"{{"a":{}}}"#, nested(levels - 1));
            format!(r#"{{"op":"put","key":"k","value":{value}}}"#)
        };
        let mut kv = Entries::default();
        let deepest = put(crate::request::MAX_VALUE_DEPTH);
        assert_eq!(
            kv.call(deepest.as_bytes(), AccessLog::Off),
            Ok(b"null".to_vec())
        );
        let adopted = Entries::from_init_args(&kv.snapshot()).unwrap();
        assert_eq!(adopted, kv);
        let too_deep = put(crate::request::MAX_VALUE_DEPTH + 1);
        assert_eq!(
            kv.call(too_deep.as_bytes(), AccessLog::Off),
            Err(
                "value nested too deep: a state keeps at most 125 levels of arrays and objects"
                    .into()
            )
        );
        // Without the refusal, the state would not read back.
        let mut unchecked = Entries::default();
        let value: Value = serde_json::from_str(&nested(126)).unwrap();
        unchecked
            .apply(Request::Put {
                key: "k".into(),
                value,
            })
            .unwrap();
        let refused = Entries::from_init_args(&unchecked.snapshot()).unwrap_err();
        assert!(refused.contains("recursion limit exceeded"), "{refused}");
    }

    #[test]
    fn a_state_from_another_writer_is_kept_as_serde_json_would_write_it() {
        let foreign = br#"{ "entries" : { "b" : { "y" : 1.0e0 , "x" : [ ] }, "a" : "\u0041" } }"#;
        let adopted: Entries = serde_json::from_slice(foreign).unwrap();
        let mut written = Vec::new();
        adopted.write_json(&mut written);
        assert_eq!(written, br#"{"entries":{"a":"A","b":{"x":[],"y":1.0}}}"#);
        let spelled_twice: Entries =
            serde_json::from_slice(br#"{"entries":{"a":1,"\u0061":2}}"#).unwrap();
        assert_eq!(spelled_twice.snapshot(), br#"{"entries":{"a":2}}"#);
    }

    #[test]
    fn a_state_in_any_key_order_reads_back_the_same_and_the_last_duplicate_wins() {
        let sorted: Entries = serde_json::from_str(r#"{"entries":{"a":1,"b":2,"c":3}}"#).unwrap();
        let shuffled: Entries = serde_json::from_str(r#"{"entries":{"c":3,"a":1,"b":2}}"#).unwrap();
        assert_eq!(sorted, shuffled);
        assert_eq!(sorted.entries.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
        let twice: Entries = serde_json::from_str(r#"{"entries":{"a":1,"b":2,"a":3}}"#).unwrap();
        assert_eq!(
            serde_json::to_value(&twice).unwrap(),
            json!({"entries":{"a":3,"b":2}})
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
        let mut seeded = Entries::from_init_args(br#"{"entries":{"a":1}}"#).unwrap();
        assert_eq!(run(&mut seeded, json!({"op":"get","key":"a"})), json!(1));
        let refused = Entries::from_init_args(b"[1]").unwrap_err();
        assert!(refused.starts_with("bad init arguments"), "{refused}");
    }

    #[test]
    fn a_state_is_an_object_whose_every_field_is_read() {
        let state = |text: &str| hotswap_guest::json::decode::<Entries>(text.as_bytes());
        // A derived struct would take `entries` from the first element of an array.
        assert_eq!(
            state(r#"[{"a":1}]"#),
            Err("invalid type: sequence, expected struct Entries at line 1 column 0".into())
        );
        let init = Entries::from_init_args(br#"[{"a":1}]"#).unwrap_err();
        assert!(
            init.ends_with("invalid type: sequence, expected struct InitArgs at line 1 column 0"),
            "{init}"
        );
        // A field beside `entries` is read like the rest, and kept out of the state.
        assert_eq!(
            state(r#"{"entries":{},"x":1e400}"#),
            Err("not JSON: number out of range at line 1 column 23".into())
        );
        let mut adopted = state(r#"{"x":[{"entries":{}}],"entries":{"a":1}}"#).unwrap();
        assert_eq!(run(&mut adopted, json!({"op":"keys"})), json!(["a"]));
        assert_eq!(
            state(r#"{"entries":{},"entries":{}}"#),
            Err("duplicate field `entries` at line 1 column 23".into())
        );
        assert_eq!(
            state("{}"),
            Err("missing field `entries` at line 1 column 2".into())
        );
    }
}
