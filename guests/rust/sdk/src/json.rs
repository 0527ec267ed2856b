//! JSON payloads: decode a request, encode a reply, describe bytes for a log line.
//!
//! Payloads and states are bytes to the node; most guests choose JSON so that a person can type
//! a request on the command line and any language can read another's state. These helpers
//! turn `serde_json`'s errors into the `String` errors of the WIT, and say whether the bytes
//! were not JSON at all or JSON of the wrong shape.

use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::error::Category;

/// Decodes `bytes` as a `T`. The error says either `not JSON: ...` or what in the JSON did not
/// fit `T` (a missing field, an unknown variant, a wrong type), with its position.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|error| match error.classify() {
        Category::Data => error.to_string(),
        Category::Syntax | Category::Eof | Category::Io => format!("not JSON: {error}"),
    })
}

/// Encodes `value` as JSON bytes. Fails only for values that JSON cannot hold, such as a map
/// whose keys are not strings.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, String> {
    serde_json::to_vec(value).map_err(|error| format!("cannot encode as JSON: {error}"))
}

/// The size of the state last written or adopted by this instance. The next state is likely
/// about as large, and a buffer of that size spares the encoder of a large state a dozen
/// reallocations (each a copy, and fresh pages to fault in).
static STATE_SIZE: AtomicUsize = AtomicUsize::new(0);

/// Encodes a state as JSON bytes, like [`encode`], into a buffer sized after the last state.
pub fn encode_state<T: Serialize + ?Sized>(state: &T) -> Result<Vec<u8>, String> {
    let mut out = state_buffer();
    serde_json::to_writer(&mut out, state)
        .map_err(|error| format!("cannot encode as JSON: {error}"))?;
    note_state_size(out.len());
    Ok(out)
}

/// An empty buffer for a state about as large as the last one (an eighth more).
fn state_buffer() -> Vec<u8> {
    let last = STATE_SIZE.load(Ordering::Relaxed);
    Vec::with_capacity(last.saturating_add(last / 8))
}

/// Records the size of a state this instance adopted or wrote (see [`encode_state`]).
pub(crate) fn note_state_size(bytes: usize) {
    STATE_SIZE.store(bytes, Ordering::Relaxed);
}

/// The longest a description gets, in characters, before it is cut.
const DESCRIBE_LIMIT: usize = 200;

/// `bytes` as text for a log line or an error: the UTF-8 text (invalid sequences replaced),
/// cut after a couple of hundred characters.
pub fn describe(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    match text.char_indices().nth(DESCRIBE_LIMIT) {
        Some((cut, _)) => format!("{}... ({} bytes)", &text[..cut], bytes.len()),
        None => text.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Point {
        x: i32,
    }

    #[test]
    fn says_whether_the_bytes_were_json() {
        let not_json = decode::<Point>(b"{x").unwrap_err();
        assert!(not_json.starts_with("not JSON: "), "{not_json}");
        let truncated = decode::<Point>(b"").unwrap_err();
        assert!(truncated.starts_with("not JSON: "), "{truncated}");
        let wrong_shape = decode::<Point>(br#"{"y":1}"#).unwrap_err();
        assert!(
            wrong_shape.starts_with("missing field `x`"),
            "{wrong_shape}"
        );
        assert_eq!(decode::<Point>(br#"{"x":1}"#), Ok(Point { x: 1 }));
    }

    #[test]
    fn encodes_and_refuses_what_json_cannot_hold() {
        assert_eq!(encode(&[1, 2]), Ok(b"[1,2]".to_vec()));
        let map = std::collections::BTreeMap::from([((1, 2), 3)]);
        assert!(encode(&map).is_err());
    }

    #[test]
    fn describes_long_and_binary_payloads() {
        assert_eq!(describe(b"hi"), "hi");
        assert_eq!(describe(&[0x68, 0xff]), "h\u{fffd}");
        let long = describe(&[b'a'; 1000]);
        assert!(long.ends_with("... (1000 bytes)"));
        assert_eq!(long.len(), DESCRIBE_LIMIT + "... (1000 bytes)".len());
    }
}
