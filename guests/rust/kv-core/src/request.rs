//! [`Request`]: what a client can ask of the key-value server, parsed from JSON.

mod scan;

use serde::Deserialize;
use serde_json::Value;

/// One request, tagged by its `op` field.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Stores `value` under `key`; replies with the value it replaced, or `null`.
    Put {
        /// The key to store under.
        key: String,
        /// Any JSON value, `null` included.
        value: Value,
    },
    /// Replies with the value under `key`, or `null`.
    Get {
        /// The key to read.
        key: String,
    },
    /// Removes `key`; replies with the value it held, or `null`.
    Delete {
        /// The key to remove.
        key: String,
    },
    /// Replies with every key, sorted.
    Keys,
    /// Replies with the number of keys.
    Count,
}

/// A request as its fields, for the second fast path of [`Request::parse`] (after
/// [`scan`]): serde reads an internally tagged enum through a buffer of every field, a flat
/// struct in one pass. A request this path cannot read goes through the enum, so that
/// errors read the same whatever the path.
///
/// It reads no field but these three: serde_json skips a field that a struct ignores
/// without checking its numbers, escapes, UTF-8 or depth (serde-rs/json#486), so `"x":1e400`
/// beside an `op` and a `key` would be served here, where the enum, like the Python,
/// JavaScript and C kvs, refuses it ("number out of range"). A request with any other field
/// takes the enum's path, whose buffer reads every field. The three it reads count their
/// depth as the enum does.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Flat<'a> {
    #[serde(borrow)]
    op: std::borrow::Cow<'a, str>,
    key: Option<String>,
    /// `Some(Value::Null)` for `"value": null`, `None` when there is no `value`.
    #[serde(default, deserialize_with = "present")]
    value: Option<Value>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl Flat<'_> {
    fn parse(bytes: &[u8]) -> Option<Request> {
        let flat: Flat = serde_json::from_slice(bytes).ok()?;
        Some(match (&*flat.op, flat.key, flat.value) {
            ("put", Some(key), Some(value)) => Request::Put { key, value },
            ("get", Some(key), _) => Request::Get { key },
            ("delete", Some(key), _) => Request::Delete { key },
            ("keys", ..) => Request::Keys,
            ("count", ..) => Request::Count,
            _ => return None,
        })
    }
}

/// The deepest value a put may store, in arrays and objects nested in one another. serde_json
/// reads at most 127 levels in one document, and a state holds each value two levels down
/// (`{"entries":{"key":value}}`): a deeper value could be put (a request holds it one level
/// down), but the state holding it could not be read back. Every swap would be refused for as
/// long as the key stayed, and a hibernating process would exit on waking, losing its state.
pub const MAX_VALUE_DEPTH: usize = 125;

impl Request {
    /// Parses a request. The error is `unknown request: ` and what was wrong: not JSON, no
    /// or an unknown `op`, a missing or mistyped field; or, for a put whose value nests more
    /// than [`MAX_VALUE_DEPTH`] arrays and objects, `value nested too deep: ...`.
    pub fn parse(bytes: &[u8]) -> Result<Request, String> {
        if let Some(request) = scan::scan(bytes) {
            return Ok(request);
        }
        if is_array(bytes) {
            return Err(array_refused(bytes));
        }
        let request = match Flat::parse(bytes) {
            Some(request) => request,
            None => hotswap_guest::json::decode(bytes)
                .map_err(|why| format!("unknown request: {why}"))?,
        };
        match &request {
            Request::Put { value, .. } if depth(value) > MAX_VALUE_DEPTH => Err(format!(
                "value nested too deep: a state keeps at most {MAX_VALUE_DEPTH} levels of arrays and objects"
            )),
            _ => Ok(request),
        }
    }

    /// True for the requests that change the state (and so make sense without a reply).
    pub fn is_mutation(&self) -> bool {
        matches!(self, Request::Put { .. } | Request::Delete { .. })
    }
}

/// Whether `bytes` is a JSON array, by its first byte after any whitespace.
fn is_array(bytes: &[u8]) -> bool {
    bytes.iter().find(|b| !b" \t\n\r".contains(b)) == Some(&b'[')
}

/// Why an array is not a request. serde reads a struct and an internally tagged enum from an
/// array too, the fields in order (`["get","a"]` would be a get), but a request is an
/// object, and the Python, JavaScript and C kvs refuse an array: so does this one, in their
/// words, once it is known to be JSON at all.
fn array_refused(bytes: &[u8]) -> String {
    match hotswap_guest::json::decode::<Value>(bytes) {
        Ok(_) => "unknown request: invalid type: sequence, expected internally tagged enum Request"
            .to_string(),
        Err(why) => format!("unknown request: {why}"),
    }
}

/// How many arrays and objects `value` nests in one another: 0 for anything else. The parser
/// bounds the recursion (127 levels).
fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(members) => 1 + members.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_every_op() {
        let put = Request::parse(br#"{"op":"put","key":"a","value":{"x":[1]}}"#);
        assert_eq!(
            put,
            Ok(Request::Put {
                key: "a".into(),
                value: json!({"x": [1]})
            })
        );
        assert_eq!(
            Request::parse(br#"{"op":"get","key":"a"}"#),
            Ok(Request::Get { key: "a".into() })
        );
        assert_eq!(
            Request::parse(br#"{"op":"delete","key":"a"}"#),
            Ok(Request::Delete { key: "a".into() })
        );
        assert_eq!(Request::parse(br#"{"op":"keys"}"#), Ok(Request::Keys));
        assert_eq!(Request::parse(br#"{"op":"count"}"#), Ok(Request::Count));
    }

    #[test]
    fn a_put_of_null_is_a_put() {
        assert_eq!(
            Request::parse(br#"{"op":"put","key":"a","value":null}"#),
            Ok(Request::Put {
                key: "a".into(),
                value: Value::Null
            })
        );
    }

    #[test]
    fn both_paths_agree_on_every_well_formed_request() {
        let requests: [&[u8]; 7] = [
            br#"{"op":"put","key":"a","value":{"x":[1]}}"#,
            br#"{"op":"put","key":"a","value":null}"#,
            br#"{"value":2,"key":"b","op":"put"}"#,
            br#"{"op":"get","key":"a","value":1}"#,
            br#"{"op":"delete","key":"a"}"#,
            br#"{"op":"keys","key":"ignored"}"#,
            br#"{"op":"count"}"#,
        ];
        for request in requests {
            let slow: Request = hotswap_guest::json::decode(request).unwrap();
            assert_eq!(Flat::parse(request), Some(slow), "{request:?}");
        }
        let not_well_formed: [&[u8]; 4] = [
            br#"{"op":"get"}"#,
            br#"{"op":"put","key":"a"}"#,
            br#"{"op":"get","key":null}"#,
            br#"{"op":"frobnicate","key":"a"}"#,
        ];
        for request in not_well_formed {
            assert_eq!(Flat::parse(request), None, "{request:?}");
        }
    }

    #[test]
    fn a_field_nested_too_deep_is_refused_even_where_it_is_ignored() {
        let nested = |levels: usize| format!("{}{}", "[".repeat(levels), "]".repeat(levels));
        // The request object is one level: 126 more is as deep as serde_json reads.
        let deepest = format!(r#"{{"op":"get","key":"a","x":{}}}"#, nested(126));
        assert_eq!(
            Request::parse(deepest.as_bytes()),
            Ok(Request::Get { key: "a".into() })
        );
        // In a field no request uses, and in a get's `value`, which a get ignores but the
        // flat path reads.
        for field in ["x", "value"] {
            let too_deep = format!(r#"{{"op":"get","key":"a","{field}":{}}}"#, nested(127));
            let error = Request::parse(too_deep.as_bytes()).unwrap_err();
            assert!(
                error.starts_with("unknown request: ")
                    && error.contains("recursion limit exceeded"),
                "{field}: {error}"
            );
        }
        // Many brackets that do not nest are read as any other value.
        let wide = format!(
            r#"{{"op":"put","key":"a","value":[{}[]]}}"#,
            "[],".repeat(200)
        );
        let Ok(Request::Put { value, .. }) = Request::parse(wide.as_bytes()) else {
            panic!("{wide} is a put");
        };
        assert_eq!(value.as_array().map(Vec::len), Some(201));
    }

    #[test]
    fn a_malformed_field_is_refused_even_where_it_is_ignored() {
        // In serde_json's words, which the JavaScript and C kvs use too.
        let cases: [(&[u8], &str); 4] = [
            (
                br#"{"op":"get","key":"a","x":1e400}"#,
                "unknown request: not JSON: number out of range at line 1 column 31",
            ),
            (
                br#"{"op":"get","key":"a","x":"\ud800"}"#,
                "unknown request: not JSON: unexpected end of hex escape at line 1 column 34",
            ),
            (
                b"{\"op\":\"get\",\"key\":\"a\",\"x\":\"\xff\"}",
                "unknown request: not JSON: invalid unicode code point at line 1 column 28",
            ),
            (
                br#"{"op":"get","key":"a","value":1e400}"#,
                "unknown request: not JSON: number out of range at line 1 column 35",
            ),
        ];
        for (request, expected) in cases {
            assert_eq!(
                Request::parse(request),
                Err(expected.to_string()),
                "{}",
                String::from_utf8_lossy(request)
            );
        }
        // A well-formed field it ignores is still ignored.
        assert_eq!(
            Request::parse(br#"{"op":"get","key":"a","x":[1e300,"\u00e9"]}"#),
            Ok(Request::Get { key: "a".into() })
        );
        assert_eq!(
            Request::parse(br#"{"op":"put","key":"a","value":{"b":[2]},"x":2}"#),
            Ok(Request::Put {
                key: "a".into(),
                value: json!({"b": [2]})
            })
        );
    }

    #[test]
    fn an_array_is_not_a_request() {
        // serde would read these as a get, a put and a keys.
        for request in [
            r#"["get","a"]"#,
            r#" ["put","a",1]"#,
            r#"["keys"]"#,
            "[1]",
            "[]",
        ] {
            assert_eq!(
                Request::parse(request.as_bytes()),
                Err(
                    "unknown request: invalid type: sequence, expected internally tagged enum Request"
                        .to_string()
                ),
                "{request}"
            );
        }
        assert_eq!(
            Request::parse(br#"["get",1e400]"#),
            Err("unknown request: not JSON: number out of range at line 1 column 12".to_string())
        );
    }

    #[test]
    fn names_what_was_wrong() {
        let cases: [(&[u8], &str); 6] = [
            (b"put a 1", "unknown request: not JSON"),
            (
                br#"{"op":"frobnicate"}"#,
                "unknown request: unknown variant `frobnicate`",
            ),
            (br#"{"key":"a"}"#, "unknown request: missing field `op`"),
            (br#"{"op":"get"}"#, "unknown request: missing field `key`"),
            (
                br#"{"op":"put","key":"a"}"#,
                "unknown request: missing field `value`",
            ),
            (br#"{"op":"get","key":7}"#, "unknown request: invalid type"),
        ];
        for (request, expected) in cases {
            let error = Request::parse(request).unwrap_err();
            assert!(
                error.starts_with(expected),
                "{error:?} should start with {expected:?}"
            );
        }
    }
}
