//! Validation of container IDs, network names and interface names, with the reference's codes.

use crate::error::{code, CniError};

fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphanumeric() => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Container IDs: `^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`; empty is code 3, bad characters code 4.
pub fn container_id(id: &str) -> Result<(), CniError> {
    if id.is_empty() {
        return Err(CniError::new(code::UNKNOWN_CONTAINER, "missing containerID"));
    }
    if !valid_name(id) {
        return Err(CniError::with_details(code::INVALID_ENVIRONMENT_VARIABLES, "invalid characters in containerID", id));
    }
    Ok(())
}

/// Network names: same pattern as container IDs; errors are code 7.
pub fn network_name(name: &str) -> Result<(), CniError> {
    if name.is_empty() {
        return Err(CniError::new(code::INVALID_NETWORK_CONFIG, "missing network name:"));
    }
    if !valid_name(name) {
        return Err(CniError::with_details(code::INVALID_NETWORK_CONFIG, "invalid characters found in network name", name));
    }
    Ok(())
}

/// Interface names: 1–15 bytes, not `.`/`..`, no `/`, `:` or whitespace; errors are code 4.
pub fn interface_name(ifname: &str) -> Result<(), CniError> {
    let e = |msg: &str, details: &str| Err(CniError::with_details(code::INVALID_ENVIRONMENT_VARIABLES, msg, details));
    if ifname.is_empty() {
        return e("interface name is empty", "");
    }
    if ifname.len() > 15 {
        return e("interface name is too long", "interface name should be less than 16 characters");
    }
    if ifname == "." || ifname == ".." {
        return e("interface name is . or ..", "");
    }
    if ifname.chars().any(|c| c == '/' || c == ':' || c.is_whitespace()) {
        return e("interface name contains / or : or whitespace characters", "");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ids() {
        assert!(container_id("abc-1.2_3").is_ok());
        assert_eq!(container_id("").unwrap_err().code, 3);
        let e = container_id("-abc").unwrap_err();
        assert_eq!((e.code, e.msg.as_str(), e.details.as_str()), (4, "invalid characters in containerID", "-abc"));
        assert_eq!(container_id("a/b").unwrap_err().code, 4);
        assert_eq!(container_id("a\n").unwrap_err().code, 4);
    }

    #[test]
    fn network_names() {
        assert!(network_name("my-net.1").is_ok());
        assert_eq!(network_name("").unwrap_err().msg, "missing network name:");
        assert_eq!(network_name("my net").unwrap_err().code, 7);
        assert_eq!(network_name("_x").unwrap_err().code, 7);
    }

    #[test]
    fn interface_names() {
        assert!(interface_name("eth0").is_ok());
        assert!(interface_name("a23456789012345").is_ok());
        for bad in ["", "a234567890123456", ".", "..", "a/b", "a:b", "a b", "a\tb", "a\u{a0}b"] {
            assert_eq!(interface_name(bad).unwrap_err().code, 4, "{bad:?}");
        }
    }
}
