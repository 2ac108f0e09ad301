//! Ownership of the kernel objects rcni makes for an attachment: every rule and set element
//! carries a comment that starts with a tag derived from (network, container ID, ifname), so
//! DEL and GC find exactly that attachment's objects without any other state.

use sha2::{Digest, Sha512};
use std::collections::HashSet;

/// The attachment an object belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub network: String,
    pub container_id: String,
    pub ifname: String,
    /// Computed once: owners are compared with every element of a set during scans.
    tag: String,
}

impl Owner {
    pub fn new(network: &str, container_id: &str, ifname: &str) -> Self {
        let mut h = Sha512::new();
        for part in [network, container_id, ifname] {
            h.update(part.as_bytes());
            h.update([0u8]);
        }
        let d = h.finalize();
        let hex: String = d[..8].iter().map(|b| format!("{b:02x}")).collect();
        Owner { network: network.into(), container_id: container_id.into(), ifname: ifname.into(), tag: format!("rcni:{hex}") }
    }

    /// `rcni:` and 16 hex digits of SHA-512 over the three parts.
    pub fn tag(&self) -> String {
        self.tag.clone()
    }

    /// The comment written on objects: the tag, then the owner in words (cut to nft's limit).
    pub fn comment(&self) -> String {
        let mut c = format!("{} net={} id={} if={}", self.tag(), self.network, self.container_id, self.ifname);
        if c.len() > 127 {
            let mut cut = 127;
            while !c.is_char_boundary(cut) {
                cut -= 1;
            }
            c.truncate(cut);
        }
        c
    }

    /// Whether a comment was written for this owner.
    pub fn owns(&self, comment: Option<&str>) -> bool {
        comment.and_then(|c| c.strip_prefix(self.tag.as_str())).is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
    }
}

/// The tags of a network's valid attachments (`(containerID, ifname)` pairs), for GC.
pub fn valid_tags<'a>(network: &str, attachments: impl IntoIterator<Item = &'a (String, String)>) -> HashSet<String> {
    attachments.into_iter().map(|(id, ifname)| Owner::new(network, id, ifname).tag()).collect()
}

/// The tag and network of a comment written by [`Owner::comment`]; `None` for anything else, or
/// when the network was cut off.
pub fn parse_comment(comment: &str) -> Option<(&str, &str)> {
    let (tag, rest) = comment.split_once(' ')?;
    let hex = tag.strip_prefix("rcni:")?;
    if hex.len() != 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let (network, _) = rest.strip_prefix("net=")?.split_once(" id=")?;
    Some((tag, network))
}

/// GC's test: `comment` marks an object of an attachment of `network` whose tag is not among
/// `valid_tags`. Objects of other networks, of other tools, or with a comment that does not name
/// its network in full are never stale.
pub fn is_stale(comment: Option<&str>, network: &str, valid_tags: &HashSet<String>) -> bool {
    comment.and_then(parse_comment).is_some_and(|(tag, net)| net == network && !valid_tags.contains(tag))
}

/// The longest network name used verbatim in object names (rcni's longest object name is then
/// `hp_` + 48 + `_` + 8 = 60 bytes, well within nftables' 255).
const PLAIN_MAX: usize = 48;

fn hex16(input: &str) -> String {
    Sha512::digest(input.as_bytes())[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// A name usable inside nftables object names for a network, distinct for distinct networks:
/// a valid network name (an ASCII letter or digit, then letters, digits, `_`, `.`, `-`; what
/// libcni accepts) of at most 48 bytes is its own id, verbatim; any other name is `_` and 16 hex
/// digits of SHA-512 of it, which no verbatim id can be (those start with a letter or digit).
/// nft's syntax takes these characters in names, so `nft list ruleset` stays readable.
pub fn network_id(network: &str) -> String {
    let mut chars = network.chars();
    let plain = network.len() <= PLAIN_MAX
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if plain {
        network.to_string()
    } else {
        format!("_{}", hex16(network))
    }
}

/// The id rcni gave `network` before [`network_id`] became injective (it folded `.` and `-` into
/// `_`, so `a-b`, `a.b` and `a_b` shared objects, and hashed long names without a marker), when
/// that differs from today's: DEL, CHECK and GC also look there for the elements of attachments
/// made before an upgrade. Objects of that naming may be shared by several networks, so only
/// owner-matched elements are ever taken from them.
pub fn legacy_network_id(network: &str) -> Option<String> {
    let old = if network.len() <= PLAIN_MAX && network.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
        network.replace(['.', '-'], "_")
    } else {
        hex16(network)
    };
    (old != network_id(network)).then_some(old)
}

/// A name as the reference plugins derive them (Go's `utils.FormatHashWithPrefix`): `prefix`
/// followed by the lowercase hex of SHA-512(`input`), cut to `max_len` characters.
pub fn hashed_name(prefix: &str, input: &str, max_len: usize) -> String {
    let d = Sha512::digest(input.as_bytes());
    let mut s = prefix.to_string();
    s.extend(d.iter().map(|b| format!("{b:02x}")));
    s.truncate(max_len);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_comments() {
        let o = Owner::new("mynet", "ctr1", "eth0");
        assert!(o.tag().starts_with("rcni:") && o.tag().len() == 21);
        assert_ne!(o.tag(), Owner::new("mynet", "ctr1", "eth1").tag());
        assert_ne!(Owner::new("a", "bc", "d").tag(), Owner::new("ab", "c", "d").tag(), "parts are separated");
        assert!(o.owns(Some(&o.comment())));
        assert!(!Owner::new("mynet", "ctr2", "eth0").owns(Some(&o.comment())));
        assert!(!o.owns(None));
        let long = Owner::new(&"n".repeat(100), &"c".repeat(64), "eth0");
        assert_eq!(long.comment().len(), 127);
        assert!(long.owns(Some(&long.comment())));
    }

    #[test]
    fn stale_objects_are_this_networks_invalid_ones() {
        let a = Owner::new("net-a", "c1", "eth0");
        let b = Owner::new("net-a", "c2", "eth0");
        let other = Owner::new("net-a2", "c1", "eth0");
        assert_eq!(parse_comment(&a.comment()), Some((a.tag().as_str(), "net-a")));
        let valid = valid_tags("net-a", &[("c2".to_string(), "eth0".to_string())]);
        assert!(is_stale(Some(&a.comment()), "net-a", &valid));
        assert!(!is_stale(Some(&b.comment()), "net-a", &valid), "valid");
        assert!(!is_stale(Some(&other.comment()), "net-a", &valid), "another network");
        assert!(!is_stale(Some(&a.comment()), "net", &valid), "network names match whole");
        assert!(!is_stale(Some("rcni masq net=net-a"), "net-a", &valid), "network-wide rules");
        assert!(!is_stale(Some(&a.tag()), "net-a", &valid), "a bare tag does not name its network");
        assert!(!is_stale(Some("rcni:zzzzzzzzzzzzzzzz net=net-a id=c1 if=eth0"), "net-a", &valid));
        assert!(!is_stale(None, "net-a", &valid));
        let long = Owner::new(&"n".repeat(120), "c1", "eth0");
        assert_eq!(parse_comment(&long.comment()), None, "a cut-off network is never matched");
    }

    #[test]
    fn network_ids() {
        assert_eq!(network_id("cni-net.1"), "cni-net.1", "a valid network name is its own id");
        assert_eq!(network_id("mynet"), "mynet");
        assert!(network_id(&"x".repeat(60)).len() <= 20);
        assert_eq!(legacy_network_id("cni-net.1").as_deref(), Some("cni_net_1"), "the naming before ids were injective");
        assert_eq!(legacy_network_id("mynet"), None, "unchanged");
        assert_eq!(legacy_network_id("a_b"), None);
        assert_eq!(legacy_network_id(&"x".repeat(60)).map(|s| s.len()), Some(16));
    }

    #[test]
    fn network_ids_are_injective() {
        let long = "x".repeat(60);
        let longer = "x".repeat(61);
        let hashed = network_id(&long);
        // names that an id scheme could fold together: separators, case, a name spelled like
        // another name's hashed id, names around the length limit
        let names = [
            "a-b",
            "a.b",
            "a_b",
            "ab",
            "a__b",
            "a-_b",
            "A-b",
            long.as_str(),
            longer.as_str(),
            hashed.as_str(),
            hashed.trim_start_matches('_'),
            &"y".repeat(48),
            &"y".repeat(49),
        ];
        let distinct: HashSet<&str> = names.iter().copied().collect();
        let ids: HashSet<String> = distinct.iter().map(|n| network_id(n)).collect();
        assert_eq!(ids.len(), distinct.len(), "{:?}", names.iter().map(|n| (n, network_id(n))).collect::<Vec<_>>());
        for n in names {
            let id = network_id(n);
            assert!(!id.is_empty() && id.len() <= 48, "{n}: {id}");
            assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')), "{n}: {id}");
        }
    }

    #[test]
    fn hashed_names_match_the_reference() {
        // vectors from the reference's naming (net + container ID)
        assert_eq!(hashed_name("bwp", "mynetctr1", 15), "bwp5145007e2a84");
        assert_eq!(hashed_name("CNI-", "cnitestc1", 28), "CNI-46bb1c480eb67d49ead3efb5");
    }
}
