//! Results: parse in any version, convert to every other version, serialise. Nothing panics;
//! what a conversion produces parses back as the version it claims; a current-version result
//! survives a serialise/parse round trip unchanged, and serialises to the same bytes again.
#![no_main]

use cni_types::result::{decode_version, CniResult};
use cni_types::version::{ALL, CURRENT};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = decode_version(data);
    for v in ALL.iter().copied().chain(["", "0.5.0", "1.2.0"]) {
        let _ = CniResult::create(v, data);
    }
    let Ok(r) = CniResult::from_bytes(data) else { return };
    let _ = (r.version(), r.to_json(), r.to_json_pretty(), r.to_value());
    for to in ALL.iter().copied().chain([""]) {
        let Ok(c) = r.convert(to) else { continue };
        let bytes = c.to_json();
        let back = CniResult::create(to, &bytes).unwrap_or_else(|e| panic!("{} converted to {to:?} does not parse back: {e}", r.version()));
        let _ = back.convert(CURRENT);
    }
    if let Ok(cur) = r.to_current() {
        let one = CniResult::V1(cur);
        let bytes = one.to_json();
        let two = CniResult::from_bytes(&bytes).expect("a current-version result parses back");
        assert_eq!(one, two, "round trip of {}", String::from_utf8_lossy(&bytes));
        assert_eq!(bytes, two.to_json(), "serialising again gives the same bytes");
        assert_eq!(one.to_json_pretty(), two.to_json_pretty());
    }
});
