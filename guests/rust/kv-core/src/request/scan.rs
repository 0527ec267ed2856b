//! The fast path of [`Request::parse`]: the shape every client of the examples writes,
//! `{"op":"put","key":"k","value":1}`, read by a scanner instead of serde's derive.
//!
//! A cast of a put spent about a fifth of its CPU in serde's visitor for a 35-byte object
//! (perf of `call_profile 1000000 cast`, guest and host together). The scanner takes the
//! fields `op`, `key` and `value` in that order only, each once, with JSON whitespace
//! anywhere between tokens and no escape in the op or the key; serde_json reads the value.
//! Anything else gives `None` and takes the paths it took before, so that every request the
//! scanner does not take, and every error, reads as it did. That includes a value nested
//! deeper than [`MAX_VALUE_DEPTH`]: read on its own, serde_json would take one level more
//! than inside the request.

use serde_json::Value;

use super::{MAX_VALUE_DEPTH, Request, depth};

/// The request, when `bytes` has the common shape; `None` for anything else, well formed or
/// not.
pub(super) fn scan(bytes: &[u8]) -> Option<Request> {
    let mut scanner = Scanner { bytes, at: 0 };
    scanner.punctuation(b'{')?;
    scanner.field(b"op")?;
    let request = match scanner.plain_string()? {
        b"keys" => Request::Keys,
        b"count" => Request::Count,
        op @ (b"get" | b"delete" | b"put") => {
            scanner.punctuation(b',')?;
            scanner.field(b"key")?;
            let key = std::str::from_utf8(scanner.plain_string()?)
                .ok()?
                .to_owned();
            match op {
                b"get" => Request::Get { key },
                b"delete" => Request::Delete { key },
                _ => {
                    scanner.punctuation(b',')?;
                    scanner.field(b"value")?;
                    let value = scanner.value()?;
                    if depth(&value) > MAX_VALUE_DEPTH {
                        return None;
                    }
                    Request::Put { key, value }
                }
            }
        }
        _ => return None,
    };
    scanner.punctuation(b'}')?;
    scanner.end()?;
    Some(request)
}

/// A position in the request being read.
struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    /// Steps over the whitespace JSON allows between tokens.
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    /// Steps over `byte`, after any whitespace.
    fn punctuation(&mut self, byte: u8) -> Option<()> {
        self.skip_whitespace();
        (self.bytes.get(self.at) == Some(&byte)).then(|| self.at += 1)
    }

    /// Steps over `"name":`.
    fn field(&mut self, name: &[u8]) -> Option<()> {
        (self.plain_string()? == name).then_some(())?;
        self.punctuation(b':')
    }

    /// A string with no escape and no control character (which JSON forbids unescaped):
    /// the bytes between its quotes, which are then the string itself, if they are UTF-8.
    fn plain_string(&mut self) -> Option<&'a [u8]> {
        self.punctuation(b'"')?;
        let rest = self.bytes.get(self.at..)?;
        let length = rest
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        if rest[length] != b'"' {
            return None;
        }
        self.at += length + 1;
        Some(&rest[..length])
    }

    /// One JSON value, read by serde_json.
    fn value(&mut self) -> Option<Value> {
        let rest = self.bytes.get(self.at..)?;
        let mut values = serde_json::Deserializer::from_slice(rest).into_iter::<Value>();
        let value = values.next()?.ok()?;
        self.at += values.byte_offset();
        Some(value)
    }

    /// Whether only whitespace is left.
    fn end(&mut self) -> Option<()> {
        self.skip_whitespace();
        (self.at == self.bytes.len()).then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What serde's general path makes of `bytes`.
    fn general(bytes: &[u8]) -> Result<Request, String> {
        hotswap_guest::json::decode(bytes).map_err(|why| why.to_string())
    }

    #[test]
    fn scans_the_shape_clients_write() {
        let requests: [&str; 8] = [
            r#"{"op":"put","key":"k","value":1}"#,
            r#"{"op":"put","key":"","value":{"x":[1,2.5,"y",null,true]}}"#,
            r#"{"op":"put","key":"k","value":null}"#,
            r#"{ "op" : "get" , "key" : "ü k" }"#,
            "{\n\t\"op\":\"delete\",\r\n\"key\":\"a\"\n}\n",
            r#"{"op":"keys"}"#,
            r#"{"op":"count"}"#,
            r#"{"op":"put","key":"k","value":"\"quoted\" \u00fc"}"#,
        ];
        for request in requests {
            let scanned = scan(request.as_bytes());
            assert!(scanned.is_some(), "{request} should be scanned");
            assert_eq!(
                scanned.ok_or(()),
                general(request.as_bytes()).map_err(|_| ())
            );
        }
        let deepest = format!(
            r#"{{"op":"put","key":"a","value":{}1{}}}"#,
            "[".repeat(MAX_VALUE_DEPTH),
            "]".repeat(MAX_VALUE_DEPTH)
        );
        let scanned = scan(deepest.as_bytes());
        assert!(
            scanned.is_some(),
            "a value as deep as a state keeps is scanned"
        );
        assert_eq!(
            scanned.ok_or(()),
            general(deepest.as_bytes()).map_err(|_| ())
        );
    }

    #[test]
    fn leaves_every_other_request_to_serde() {
        // Deeper than a state keeps: the general path says so in its own words.
        let too_deep = format!(
            r#"{{"op":"put","key":"a","value":{}1{}}}"#,
            "[".repeat(MAX_VALUE_DEPTH + 1),
            "]".repeat(MAX_VALUE_DEPTH + 1)
        );
        let requests: [&[u8]; 19] = [
            br#"{"key":"k","op":"get"}"#,
            br#"{"op":"put","value":1,"key":"k"}"#,
            br#"{"op":"get","key":"k","value":1}"#,
            br#"{"op":"keys","key":"k"}"#,
            br#"{"op":"get","key":"a\"b"}"#,
            br#"{"op":"get","key":"\u0041"}"#,
            br#"{"op":"g\u0065t","key":"a"}"#,
            br#"{"op":"get","key":"a","key":"b"}"#,
            br#"{"op":"get","key":7}"#,
            br#"{"op":"get"}"#,
            br#"{"op":"put","key":"a"}"#,
            br#"{"op":"put","key":"a","value":}"#,
            br#"{"op":"put","key":"a","value":1 2}"#,
            br#"{"op":"get","key":"a"} x"#,
            br#"{"op":"frobnicate","key":"a"}"#,
            too_deep.as_bytes(),
            b"{\"op\":\"get\",\"key\":\"\xff\"}",
            b"{\"op\":\"get\xff\",\"key\":\"a\"}",
            b"{\"op\":\"get\",\"key\":\"a\tb\"}",
        ];
        for request in requests {
            assert_eq!(scan(request), None, "{}", String::from_utf8_lossy(request));
        }
    }

    #[test]
    fn agrees_with_serde_on_every_request_it_scans() {
        let ops = ["put", "get", "delete", "keys", "count", "nope"];
        let keys = [r#""a""#, r#""""#, r#""a\"b""#, r#""é""#, "7", "null"];
        let values = [
            "1",
            "-0",
            "1.5e3",
            "1E400",
            "null",
            r#""s""#,
            "[1,{\"a\":[]}]",
            "{}",
            "01",
            "tru",
        ];
        let gaps = ["", " ", "\n\t"];
        let mut scanned = 0;
        for op in ops {
            for key in keys {
                for value in values {
                    for gap in gaps {
                        let g = gap;
                        let forms = [
                            format!(
                                r#"{{{g}"op"{g}:{g}"{op}"{g},{g}"key"{g}:{g}{key}{g},{g}"value"{g}:{g}{value}{g}}}{g}"#
                            ),
                            format!(r#"{{{g}"op"{g}:{g}"{op}"{g},{g}"key"{g}:{g}{key}{g}}}"#),
                            format!(r#"{{"value":{value},"key":{key},"op":"{op}"}}"#),
                        ];
                        for form in forms {
                            if let Some(request) = scan(form.as_bytes()) {
                                scanned += 1;
                                assert_eq!(Ok(request), general(form.as_bytes()), "{form}");
                            }
                        }
                    }
                }
            }
        }
        assert!(scanned > 100, "only {scanned} scanned");
    }
}
