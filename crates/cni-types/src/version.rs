//! CNI specification versions: parsing, comparison and the `cniVersions` selection rule.
//!
//! Versions stay strings (as they travel on the wire); these helpers interpret them the way
//! Go's `pkg/version` does: `""` means 0.1.0, up to three dot-separated integers, missing parts
//! are zero, four or more parts are an error.

use std::cmp::Ordering;

/// The newest spec version this implementation speaks.
pub const CURRENT: &str = "1.1.0";

/// Every released spec version, oldest first.
pub const ALL: &[&str] = &["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// Versions of plugins that predate VERSION (what a 0.1.0-era plugin is assumed to speak).
pub const LEGACY: &[&str] = &["0.1.0", "0.2.0"];

/// A version string that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid version {version:?}: {reason}")]
pub struct VersionError {
    pub version: String,
    pub reason: String,
}

/// `(major, minor, micro)` of a version string, with Go's leniency (`"1"` is 1.0.0, `"+1.0"` parses).
pub fn parse(version: &str) -> Result<(i64, i64, i64), VersionError> {
    if version.is_empty() {
        return Ok((0, 1, 0));
    }
    let parts: Vec<&str> = version.split('.').collect();
    if parts.len() >= 4 {
        return Err(VersionError { version: version.into(), reason: "too many parts".into() });
    }
    let mut out = [0i64; 3];
    for (i, part) in parts.iter().enumerate() {
        out[i] = part.parse::<i64>().map_err(|e| VersionError {
            version: version.into(),
            reason: format!("failed to convert {} version part {part:?}: {e}", ["major", "minor", "micro"][i]),
        })?;
    }
    Ok((out[0], out[1], out[2]))
}

/// Compares two version strings.
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    Ok(parse(a)?.cmp(&parse(b)?))
}

/// `a >= b`.
pub fn greater_than_or_equal(a: &str, b: &str) -> Result<bool, VersionError> {
    Ok(compare(a, b)? != Ordering::Less)
}

/// `a > b`.
pub fn greater_than(a: &str, b: &str) -> Result<bool, VersionError> {
    Ok(compare(a, b)? == Ordering::Greater)
}

/// The version a conflist runs at, from its `cniVersion` and optional `cniVersions`.
///
/// Without `cniVersions`, `cniVersion` is used verbatim (even if newer than we know). With it,
/// every entry must parse; entries newer than [`CURRENT`] are dropped, `cniVersion` joins the
/// candidates when it is not newer than [`CURRENT`], and the highest remaining one wins. An empty
/// candidate set leaves `cniVersion` as it was.
pub fn select(cni_version: &str, cni_versions: Option<&[String]>) -> Result<String, VersionError> {
    let Some(list) = cni_versions else {
        return Ok(cni_version.to_string());
    };
    let mut candidates: Vec<&str> = Vec::with_capacity(list.len() + 1);
    for v in list {
        if !greater_than(v, CURRENT)? {
            candidates.push(v);
        }
    }
    if !cni_version.is_empty() && !greater_than(cni_version, CURRENT)? {
        candidates.push(cni_version);
    }
    let mut best: Option<&str> = None;
    for c in candidates {
        best = match best {
            Some(b) if compare(b, c)? != Ordering::Less => Some(b),
            _ => Some(c),
        };
    }
    Ok(best.unwrap_or(cni_version).to_string())
}

/// The supported versions from `min` upwards (e.g. a plugin that needs CHECK starts at 0.4.0).
pub fn starting_from(min: &str) -> Vec<&'static str> {
    match ALL.iter().position(|v| *v == min) {
        Some(i) => ALL[i..].to_vec(),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parse_like_go() {
        assert_eq!(parse("").unwrap(), (0, 1, 0));
        assert_eq!(parse("1").unwrap(), (1, 0, 0));
        assert_eq!(parse("0.4").unwrap(), (0, 4, 0));
        assert_eq!(parse("1.2.3").unwrap(), (1, 2, 3));
        assert_eq!(parse("+1.0.0").unwrap(), (1, 0, 0));
        assert!(parse("1.0.f").unwrap_err().to_string().contains("micro"));
        assert!(parse("1.0.0.0").unwrap_err().to_string().contains("too many parts"));
        assert!(parse("x").is_err());
    }

    #[test]
    fn comparisons() {
        assert!(greater_than_or_equal("0.4.0", "0.4.0").unwrap());
        assert!(greater_than_or_equal("1.0.0", "0.4.0").unwrap());
        assert!(!greater_than_or_equal("0.3.1", "0.4.0").unwrap());
        assert!(!greater_than_or_equal("", "0.2.0").unwrap());
        assert!(greater_than("1.1.0", "1.0.0").unwrap());
        assert!(!greater_than("1.1.0", "1.1.0").unwrap());
    }

    #[test]
    fn selection_matches_upstream_scenarios() {
        // highest supported entry wins
        assert_eq!(select("", Some(&s(&["1.1.0", "0.4.0", "1.0.0"]))).unwrap(), "1.1.0");
        // entries newer than we know are ignored
        assert_eq!(select("", Some(&s(&["99.0.0", "1.0.0"]))).unwrap(), "1.0.0");
        assert_eq!(select("0.4.0", Some(&s(&["99.0.0"]))).unwrap(), "0.4.0");
        // invalid entry is an error
        assert!(select("", Some(&s(&["1.0.f"]))).is_err());
        // lone cniVersion is kept verbatim, even if unknown
        assert_eq!(select("1.2.3", None).unwrap(), "1.2.3");
        // empty list and no version stays empty
        assert_eq!(select("", Some(&[])).unwrap(), "");
        // cniVersion participates
        assert_eq!(select("1.0.0", Some(&s(&["0.3.1"]))).unwrap(), "1.0.0");
        // an invalid cniVersion alongside cniVersions is an error
        assert!(select("x.y", Some(&s(&["1.0.0"]))).is_err());
    }

    #[test]
    fn starting_from_min() {
        assert_eq!(starting_from("0.4.0"), vec!["0.4.0", "1.0.0", "1.1.0"]);
        assert!(starting_from("9.9.9").is_empty());
    }
}
