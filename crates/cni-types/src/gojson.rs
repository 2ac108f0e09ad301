//! JSON output that matches Go's `encoding/json` byte for byte where it matters: the result cache
//! (`cniCacheV1`) and the JSON plugins print.
//!
//! Go escapes `<`, `>`, `&`, U+2028 and U+2029 inside strings (`\u003c` …) and indents with the
//! prefix/indent the caller chose. Map keys come out sorted because `serde_json::Map` is ordered by
//! key (the crate is built without `preserve_order`), which is also what Go does for maps.

use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter, PrettyFormatter};
use std::io;

/// A formatter that adds Go's HTML-safe string escaping to an inner formatter.
struct GoEscape<F>(F);

macro_rules! delegate {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {
        $(fn $name<W: ?Sized + io::Write>(&mut self, w: &mut W $(, $arg: $ty)*) -> io::Result<()> {
            self.0.$name(w $(, $arg)*)
        })*
    };
}

impl<F: Formatter> Formatter for GoEscape<F> {
    delegate! {
        begin_array();
        end_array();
        begin_array_value(first: bool);
        end_array_value();
        begin_object();
        end_object();
        begin_object_key(first: bool);
        end_object_key();
        begin_object_value();
        end_object_value();
    }

    fn write_string_fragment<W: ?Sized + io::Write>(&mut self, w: &mut W, fragment: &str) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let esc: &[u8] = match c {
                '<' => b"\\u003c",
                '>' => b"\\u003e",
                '&' => b"\\u0026",
                '\u{2028}' => b"\\u2028",
                '\u{2029}' => b"\\u2029",
                _ => continue,
            };
            w.write_all(&fragment.as_bytes()[start..i])?;
            w.write_all(esc)?;
            start = i + c.len_utf8();
        }
        w.write_all(&fragment.as_bytes()[start..])
    }
}

fn write<T: Serialize + ?Sized, F: Formatter>(value: &T, fmt: F) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoEscape(fmt));
    // Serializing our own types and serde_json values into memory cannot fail.
    value.serialize(&mut ser).expect("in-memory JSON serialization");
    out
}

/// Compact JSON, as Go's `json.Marshal`.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    write(value, CompactFormatter)
}

/// JSON indented by four spaces, as Go's `json.MarshalIndent(v, "", "    ")`.
pub fn to_vec_pretty<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    write(value, PrettyFormatter::with_indent(b"    "))
}

/// [`to_vec_pretty`] as a string.
pub fn to_string_pretty<T: Serialize + ?Sized>(value: &T) -> String {
    String::from_utf8(to_vec_pretty(value)).expect("JSON is UTF-8")
}

/// Go's `%q` formatting of a string (`strconv.Quote`), used in error texts that mirror Go's.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn html_escaping_and_sorted_keys() {
        let v = json!({"z": "a<b>&c\u{2028}", "a": [1, 2.5, "x"], "m": {"y": 1, "b": null}});
        assert_eq!(String::from_utf8(to_vec(&v)).unwrap(), r#"{"a":[1,2.5,"x"],"m":{"b":null,"y":1},"z":"a\u003cb\u003e\u0026c\u2028"}"#);
    }

    #[test]
    fn control_characters_like_go() {
        let v = json!("a\nb\t\u{1}");
        assert_eq!(String::from_utf8(to_vec(&v)).unwrap(), r#""a\nb\t\u0001""#);
    }

    #[test]
    fn pretty_four_spaces() {
        let v = json!({"b": [], "a": {}, "c": [1]});
        assert_eq!(to_string_pretty(&v), "{\n    \"a\": {},\n    \"b\": [],\n    \"c\": [\n        1\n    ]\n}");
    }

    #[test]
    fn go_quote() {
        assert_eq!(quote("a\"b\\c\n\x01é"), r#""a\"b\\c\n\x01é""#);
    }
}
