//! `CNI_ARGS`: `K=V;K=V` pairs, with Go's `LoadArgs` rules.
//!
//! Each pair splits on `=` into exactly two parts (values cannot contain `=`). A plugin declares
//! the keys it understands; any other key is an error unless `IgnoreUnknown` is `1` or `true`
//! (any case) somewhere in the string.

use crate::gojson::quote;

/// A `CNI_ARGS` string that could not be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ArgsError(pub String);

/// Parsed `CNI_ARGS`, in their original order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CniArgs {
    pairs: Vec<(String, String)>,
}

fn parse_bool(pair: &str, value: &str) -> Result<bool, ArgsError> {
    match value.to_lowercase().as_str() {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        other => {
            Err(ArgsError(format!("ARGS: error parsing value of pair {}: boolean unmarshal error: invalid input {other}", quote(pair))))
        }
    }
}

impl CniArgs {
    /// Splits `s` into pairs; an empty string has none.
    pub fn parse(s: &str) -> Result<Self, ArgsError> {
        let mut pairs = Vec::new();
        if s.is_empty() {
            return Ok(CniArgs { pairs });
        }
        for pair in s.split(';') {
            let mut kv = pair.split('=');
            match (kv.next(), kv.next(), kv.next()) {
                (Some(k), Some(v), None) => pairs.push((k.to_string(), v.to_string())),
                _ => return Err(ArgsError(format!("ARGS: invalid pair {}", quote(pair)))),
            }
        }
        Ok(CniArgs { pairs })
    }

    /// Parses `s` and checks every key is one of `known` (plus `IgnoreUnknown`), unless unknown
    /// keys are allowed by `IgnoreUnknown=1|true`.
    pub fn parse_known(s: &str, known: &[&str]) -> Result<Self, ArgsError> {
        let args = Self::parse(s)?;
        let mut unknown = Vec::new();
        let mut ignore_unknown = false;
        for (k, v) in &args.pairs {
            if k == "IgnoreUnknown" {
                ignore_unknown = parse_bool(&format!("{k}={v}"), v)?;
            } else if !known.contains(&k.as_str()) {
                unknown.push(format!("{k}={v}"));
            }
        }
        if !unknown.is_empty() && !ignore_unknown {
            let list: Vec<String> = unknown.iter().map(|u| quote(u)).collect();
            return Err(ArgsError(format!("ARGS: unknown args [{}]", list.join(" "))));
        }
        Ok(args)
    }

    /// The last value given for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// All pairs in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// The `K=V;K=V` form.
    pub fn to_env_string(pairs: &[(String, String)]) -> String {
        let mut out = String::new();
        for (i, (k, v)) in pairs.iter().enumerate() {
            if i > 0 {
                out.push(';');
            }
            out.push_str(k);
            out.push('=');
            out.push_str(v);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pairs() {
        let a = CniArgs::parse("IP=10.0.0.2;K8S_POD_NAME=p;IgnoreUnknown=1").unwrap();
        assert_eq!(a.get("IP"), Some("10.0.0.2"));
        assert_eq!(a.pairs().len(), 3);
        assert!(CniArgs::parse("").unwrap().pairs().is_empty());
        assert_eq!(CniArgs::parse("A=b=c").unwrap_err().to_string(), r#"ARGS: invalid pair "A=b=c""#);
        assert_eq!(CniArgs::parse("A").unwrap_err().to_string(), r#"ARGS: invalid pair "A""#);
        assert_eq!(CniArgs::parse("A=1;").unwrap_err().to_string(), r#"ARGS: invalid pair """#);
        // empty key or value is a valid pair for LoadArgs (only cnitool is stricter)
        assert_eq!(CniArgs::parse("=x;y=").unwrap().pairs().len(), 2);
    }

    #[test]
    fn unknown_keys() {
        assert_eq!(
            CniArgs::parse_known("IP=1.2.3.4;FOO=bar;BAZ=1", &["IP"]).unwrap_err().to_string(),
            r#"ARGS: unknown args ["FOO=bar" "BAZ=1"]"#
        );
        assert!(CniArgs::parse_known("FOO=bar;IgnoreUnknown=TRUE", &["IP"]).is_ok());
        assert!(CniArgs::parse_known("IgnoreUnknown=1;FOO=bar", &["IP"]).is_ok());
        assert!(CniArgs::parse_known("IgnoreUnknown=0;FOO=bar", &["IP"]).is_err());
        assert_eq!(
            CniArgs::parse_known("IgnoreUnknown=yes", &[]).unwrap_err().to_string(),
            r#"ARGS: error parsing value of pair "IgnoreUnknown=yes": boolean unmarshal error: invalid input yes"#
        );
    }

    #[test]
    fn env_string() {
        let p = vec![("A".to_string(), "1".to_string()), ("B".to_string(), "2".to_string())];
        assert_eq!(CniArgs::to_env_string(&p), "A=1;B=2");
        assert_eq!(CniArgs::to_env_string(&[]), "");
    }
}
