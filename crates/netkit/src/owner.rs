//! Ownership of the kernel objects rcni makes for an attachment: every rule and set element
//! carries a comment that starts with a tag derived from (network, container ID, ifname), so
//! DEL and GC find exactly that attachment's objects without any other state.

use sha2::{Digest, Sha512};

/// The attachment an object belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub network: String,
    pub container_id: String,
    pub ifname: String,
}

impl Owner {
    pub fn new(network: &str, container_id: &str, ifname: &str) -> Self {
        Owner { network: network.into(), container_id: container_id.into(), ifname: ifname.into() }
    }

    /// `rcni:` and 16 hex digits of SHA-512 over the three parts.
    pub fn tag(&self) -> String {
        let mut h = Sha512::new();
        for part in [&self.network, &self.container_id, &self.ifname] {
            h.update(part.as_bytes());
            h.update([0u8]);
        }
        let d = h.finalize();
        let hex: String = d[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("rcni:{hex}")
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
        let tag = self.tag();
        comment.is_some_and(|c| c == tag || c.starts_with(&format!("{tag} ")))
    }
}

/// A name usable inside nftables object names for a network: the network name itself when it is
/// short and plain, else a hash of it.
pub fn network_id(network: &str) -> String {
    if network.len() <= 48 && network.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.') {
        network.replace(['.', '-'], "_")
    } else {
        let d = Sha512::digest(network.as_bytes());
        d[..8].iter().map(|b| format!("{b:02x}")).collect::<String>()
    }
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
    fn network_ids() {
        assert_eq!(network_id("cni-net.1"), "cni_net_1");
        assert_eq!(network_id(&"x".repeat(60)).len(), 16);
    }

    #[test]
    fn hashed_names_match_the_reference() {
        // vectors from the reference's naming (net + container ID)
        assert_eq!(hashed_name("bwp", "mynetctr1", 15), "bwp5145007e2a84");
        assert_eq!(hashed_name("CNI-", "cnitestc1", 28), "CNI-46bb1c480eb67d49ead3efb5");
    }
}
