//! For tests that pin netlink messages to the kernel's format (here and in the plugins): a
//! message's bytes as sent, and a search for an attribute's bytes in them.

use netlink_packet_core::Emitable;

/// The bytes `m` is sent as.
pub fn emitted(m: &impl Emitable) -> Vec<u8> {
    let mut buf = vec![0u8; m.buffer_len()];
    m.emit(&mut buf);
    buf
}

/// Whether `needle` (an attribute as the kernel lays it out) occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
