//! The CNI error result and its well-known codes.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Well-known error codes (spec §Error, plus Go's 8 and 999).
pub mod code {
    /// Unknown error (Go's zero value).
    pub const UNKNOWN: u32 = 0;
    /// Incompatible CNI version.
    pub const INCOMPATIBLE_CNI_VERSION: u32 = 1;
    /// Unsupported field in network configuration (the message names the key and value).
    pub const UNSUPPORTED_FIELD: u32 = 2;
    /// Container unknown or does not exist (no cleanup needed).
    pub const UNKNOWN_CONTAINER: u32 = 3;
    /// Invalid necessary environment variables (the message names them).
    pub const INVALID_ENVIRONMENT_VARIABLES: u32 = 4;
    /// I/O failure.
    pub const IO_FAILURE: u32 = 5;
    /// Failed to decode content.
    pub const DECODING_FAILURE: u32 = 6;
    /// Invalid network config.
    pub const INVALID_NETWORK_CONFIG: u32 = 7;
    /// Invalid network namespace (Go's `ErrInvalidNetNS`; not in the spec's table).
    pub const INVALID_NETNS: u32 = 8;
    /// Try again later.
    pub const TRY_AGAIN_LATER: u32 = 11;
    /// Plugin not available (STATUS).
    pub const PLUGIN_NOT_AVAILABLE: u32 = 50;
    /// Plugin not available, existing containers may have limited connectivity (STATUS).
    pub const LIMITED_CONNECTIVITY: u32 = 51;
    /// Internal error (Go's `ErrInternal`).
    pub const INTERNAL: u32 = 999;
}

/// A CNI error result: `{"cniVersion", "code", "msg", "details"}`.
///
/// `Display` follows Go's `types.Error.Error()`: the message, then `"; " + details` when details
/// are present. Decoding is lenient like Go's (unknown keys ignored, missing keys empty).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CniError {
    #[serde(rename = "cniVersion", default, skip_serializing_if = "String::is_empty", deserialize_with = "crate::serde_util::nullable")]
    pub cni_version: String,
    #[serde(default)]
    pub code: u32,
    #[serde(default, deserialize_with = "crate::serde_util::nullable")]
    pub msg: String,
    #[serde(default, skip_serializing_if = "String::is_empty", deserialize_with = "crate::serde_util::nullable")]
    pub details: String,
}

impl CniError {
    pub fn new(code: u32, msg: impl Into<String>) -> Self {
        CniError { cni_version: String::new(), code, msg: msg.into(), details: String::new() }
    }

    pub fn with_details(code: u32, msg: impl Into<String>, details: impl Into<String>) -> Self {
        CniError { cni_version: String::new(), code, msg: msg.into(), details: details.into() }
    }

    /// Stamps the spec version the error is reported in.
    pub fn in_version(mut self, version: impl Into<String>) -> Self {
        self.cni_version = version.into();
        self
    }

    /// Code 2: an unsupported field; the message names it.
    pub fn unsupported_field(key: &str, detail: impl fmt::Display) -> Self {
        Self::new(code::UNSUPPORTED_FIELD, format!("unsupported field {key:?}: {detail}"))
    }

    /// Code 7: invalid network configuration.
    pub fn invalid_config(msg: impl Into<String>) -> Self {
        Self::new(code::INVALID_NETWORK_CONFIG, msg)
    }

    /// Code 6: content that could not be decoded.
    pub fn decoding(msg: impl Into<String>) -> Self {
        Self::new(code::DECODING_FAILURE, msg)
    }

    /// Code 5: an I/O failure.
    pub fn io(msg: impl Into<String>) -> Self {
        Self::new(code::IO_FAILURE, msg)
    }

    /// Code 999: anything else.
    pub fn internal(msg: impl Into<String>) -> Self {
        Self::new(code::INTERNAL, msg)
    }

    /// The JSON a plugin prints on stdout (indented by four spaces, like Go's skel).
    pub fn to_json_pretty(&self) -> String {
        crate::gojson::to_string_pretty(self)
    }
}

impl fmt::Display for CniError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)?;
        if !self.details.is_empty() {
            write!(f, "; {}", self.details)?;
        }
        Ok(())
    }
}

impl std::error::Error for CniError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_like_go() {
        assert_eq!(CniError::new(7, "bad").to_string(), "bad");
        assert_eq!(CniError::with_details(7, "bad", "why").to_string(), "bad; why");
    }

    #[test]
    fn lenient_decoding() {
        let e: CniError = serde_json::from_str(r#"{"code":50,"msg":"down","extra":1}"#).unwrap();
        assert_eq!(e.code, 50);
        assert_eq!(e.msg, "down");
        let e: CniError = serde_json::from_str(r#"{"msg":null}"#).unwrap();
        assert_eq!(e, CniError::default());
        assert!(serde_json::from_str::<CniError>(r#"{"code":-1}"#).is_err());
    }

    #[test]
    fn printed_form() {
        let e = CniError::with_details(4, "required env variables [CNI_IFNAME] missing", "").in_version("1.1.0");
        assert_eq!(
            e.to_json_pretty(),
            "{\n    \"cniVersion\": \"1.1.0\",\n    \"code\": 4,\n    \"msg\": \"required env variables [CNI_IFNAME] missing\"\n}"
        );
    }
}
