//! [`Request`]: what a client can ask of the key-value server, parsed from JSON.

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

impl Request {
    /// Parses a request. The error is `unknown request: ` and what was wrong: not JSON, no
    /// or an unknown `op`, a missing or mistyped field.
    pub fn parse(bytes: &[u8]) -> Result<Request, String> {
        hotswap_guest::json::decode(bytes).map_err(|why| format!("unknown request: {why}"))
    }

    /// True for the requests that change the state (and so make sense without a reply).
    pub fn is_mutation(&self) -> bool {
        matches!(self, Request::Put { .. } | Request::Delete { .. })
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
