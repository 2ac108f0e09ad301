//! The dhcp daemon's request parser (`wire::parse_request`, one line from its unix socket) and
//! the plugin settings it reads out of the request's configuration (`dhcp::load`). Nothing
//! panics; a parsed request serialises to a line that parses back the same; settings always
//! ask for the lease timers (51, 58, 59) and never carry option 53 or 52, and every provided
//! option fits the messages the client builds.
//!
//! Input: the request line (text, JSON).
#![no_main]

use libfuzzer_sys::fuzz_target;
use plugins::dhcp::{load, wire};

fuzz_target!(|data: &[u8]| {
    let Ok(r) = wire::parse_request(data) else { return };
    let line = serde_json::to_vec(&r).expect("a request serialises");
    assert_eq!(wire::parse_request(&line).expect("a written request parses"), r);
    let conf = serde_json::to_vec(&r.config).unwrap();
    if let Ok(s) = load(&conf, &r.args) {
        for t in [51, 58, 59] {
            assert!(s.request.contains(&t), "{:?}", s.request);
        }
        for (code, v) in &s.provide {
            assert!(!matches!(*code, 0 | 52 | 53 | 255), "provides option {code}");
            assert!(v.len() <= 255 * 4);
        }
        assert!(!s.request.iter().any(|c| matches!(*c, 0 | 52 | 53 | 255)));
    }
});
