//! DHCPv4 messages (RFC 2131, options RFC 2132): decode any bytes into a [`Message`] or a reason,
//! encode a message the client sends, and read a lease out of an ACK ([`Lease::from_ack`]).
//! Written here rather than taken from a crate: `dhcproto`, the maintained one, brings
//! hickory-proto and with it ~40 crates (idna, icu, url) into every plugin process's binary,
//! for a fixed header and a list of type-length-value options.

use std::net::Ipv4Addr;

pub const SERVER_PORT: u16 = 67;
pub const CLIENT_PORT: u16 = 68;
const MAGIC: [u8; 4] = [99, 130, 83, 99];
/// op, htype … file: the fixed part before the magic cookie.
const FIXED: usize = 236;
/// Largest message the client reads or sends (a UDP payload on a 1500-byte link is 1472).
pub const MAX_LEN: usize = 1500;
pub const BROADCAST_FLAG: u16 = 0x8000;

/// Option codes the client uses.
pub mod opt {
    pub const PAD: u8 = 0;
    pub const SUBNET_MASK: u8 = 1;
    pub const ROUTER: u8 = 3;
    pub const DNS: u8 = 6;
    pub const HOST_NAME: u8 = 12;
    pub const DOMAIN_NAME: u8 = 15;
    pub const STATIC_ROUTE: u8 = 33;
    pub const REQUESTED_IP: u8 = 50;
    pub const LEASE_TIME: u8 = 51;
    pub const OVERLOAD: u8 = 52;
    pub const MESSAGE_TYPE: u8 = 53;
    pub const SERVER_ID: u8 = 54;
    pub const PARAMS: u8 = 55;
    pub const MESSAGE: u8 = 56;
    pub const MAX_SIZE: u8 = 57;
    pub const T1: u8 = 58;
    pub const T2: u8 = 59;
    pub const CLIENT_ID: u8 = 61;
    pub const CLASSLESS_ROUTE: u8 = 121;
    pub const END: u8 = 255;
}

/// Message types (option 53).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsgType {
    Discover = 1,
    Offer = 2,
    Request = 3,
    Decline = 4,
    Ack = 5,
    Nak = 6,
    Release = 7,
    Inform = 8,
}

impl MsgType {
    fn from_u8(b: u8) -> Option<Self> {
        use MsgType::*;
        Some(match b {
            1 => Discover,
            2 => Offer,
            3 => Request,
            4 => Decline,
            5 => Ack,
            6 => Nak,
            7 => Release,
            8 => Inform,
            _ => return None,
        })
    }
}

/// A DHCPv4 message. Options keep their order of first appearance; an option that appears more
/// than once is one option with the parts concatenated (RFC 3396).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// 1 request (client to server), 2 reply.
    pub op: u8,
    pub xid: u32,
    pub secs: u16,
    pub flags: u16,
    pub ciaddr: Ipv4Addr,
    pub yiaddr: Ipv4Addr,
    pub siaddr: Ipv4Addr,
    pub giaddr: Ipv4Addr,
    /// The client's hardware address (Ethernet: 6 bytes).
    pub chaddr: Vec<u8>,
    pub options: Vec<(u8, Vec<u8>)>,
}

fn ip(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

/// Adds one option's bytes to `out`, joining a repeated code (RFC 3396).
fn push_opt(out: &mut Vec<(u8, Vec<u8>)>, code: u8, data: &[u8]) {
    match out.iter_mut().find(|(c, _)| *c == code) {
        Some((_, v)) => v.extend_from_slice(data),
        None => out.push((code, data.to_vec())),
    }
}

/// Reads the options of one area (options field, `file`, `sname`) into `out`; the area ends at
/// END or its end (sname and file are padded with zeros, which read as PAD).
fn read_options(mut b: &[u8], out: &mut Vec<(u8, Vec<u8>)>) -> Result<(), String> {
    while let Some((&code, rest)) = b.split_first() {
        match code {
            opt::PAD => b = rest,
            opt::END => return Ok(()),
            _ => {
                let Some((&len, rest)) = rest.split_first() else {
                    return Err(format!("option {code} has no length"));
                };
                let len = len as usize;
                if rest.len() < len {
                    return Err(format!("option {code} is {len} bytes long but only {} remain", rest.len()));
                }
                push_opt(out, code, &rest[..len]);
                b = &rest[len..];
            }
        }
    }
    Ok(())
}

impl Message {
    /// A client request with no options yet.
    pub fn request(xid: u32, chaddr: &[u8]) -> Self {
        Message {
            op: 1,
            xid,
            secs: 0,
            flags: 0,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            yiaddr: Ipv4Addr::UNSPECIFIED,
            siaddr: Ipv4Addr::UNSPECIFIED,
            giaddr: Ipv4Addr::UNSPECIFIED,
            chaddr: chaddr.to_vec(),
            options: Vec::new(),
        }
    }

    /// Decodes a message; anything that is not a well-formed DHCP message (BOOTP without the
    /// magic cookie, a truncated option, an htype/hlen that does not fit) is an error.
    pub fn decode(b: &[u8]) -> Result<Self, String> {
        if b.len() < FIXED + MAGIC.len() {
            return Err(format!("{} bytes: shorter than a DHCP message ({} at least)", b.len(), FIXED + MAGIC.len()));
        }
        if b[FIXED..FIXED + 4] != MAGIC {
            return Err("no DHCP magic cookie (a BOOTP message?)".into());
        }
        let op = b[0];
        if op != 1 && op != 2 {
            return Err(format!("op {op} is neither request (1) nor reply (2)"));
        }
        let hlen = b[2] as usize;
        if hlen > 16 {
            return Err(format!("hardware address length {hlen} is more than 16"));
        }
        let mut options = Vec::new();
        read_options(&b[FIXED + 4..], &mut options)?;
        // option overload: more options in file (1), sname (2) or both (3), in that order
        let overload = options.iter().find(|(c, _)| *c == opt::OVERLOAD).map(|(_, v)| v.first().copied().unwrap_or(0));
        if let Some(o) = overload {
            if o & 1 != 0 {
                read_options(&b[108..236], &mut options)?;
            }
            if o & 2 != 0 {
                read_options(&b[44..108], &mut options)?;
            }
        }
        Ok(Message {
            op,
            xid: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            secs: u16::from_be_bytes([b[8], b[9]]),
            flags: u16::from_be_bytes([b[10], b[11]]),
            ciaddr: ip(&b[12..16]),
            yiaddr: ip(&b[16..20]),
            siaddr: ip(&b[20..24]),
            giaddr: ip(&b[24..28]),
            chaddr: b[28..28 + hlen].to_vec(),
            options,
        })
    }

    /// Encodes the message (htype Ethernet); an option longer than 255 bytes is split (RFC 3396).
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; FIXED];
        b[0] = self.op;
        b[1] = 1;
        let hlen = self.chaddr.len().min(16);
        b[2] = hlen as u8;
        b[4..8].copy_from_slice(&self.xid.to_be_bytes());
        b[8..10].copy_from_slice(&self.secs.to_be_bytes());
        b[10..12].copy_from_slice(&self.flags.to_be_bytes());
        b[12..16].copy_from_slice(&self.ciaddr.octets());
        b[16..20].copy_from_slice(&self.yiaddr.octets());
        b[20..24].copy_from_slice(&self.siaddr.octets());
        b[24..28].copy_from_slice(&self.giaddr.octets());
        b[28..28 + hlen].copy_from_slice(&self.chaddr[..hlen]);
        b.extend_from_slice(&MAGIC);
        for (code, data) in &self.options {
            if data.is_empty() {
                b.extend_from_slice(&[*code, 0]);
            }
            for part in data.chunks(255) {
                b.push(*code);
                b.push(part.len() as u8);
                b.extend_from_slice(part);
            }
        }
        b.push(opt::END);
        // some servers drop messages shorter than a BOOTP one (300 bytes)
        if b.len() < 300 {
            b.resize(300, 0);
        }
        b
    }

    pub fn option(&self, code: u8) -> Option<&[u8]> {
        self.options.iter().find(|(c, _)| *c == code).map(|(_, v)| v.as_slice())
    }

    /// Sets (replaces) an option.
    pub fn set(&mut self, code: u8, data: impl Into<Vec<u8>>) {
        let data = data.into();
        match self.options.iter_mut().find(|(c, _)| *c == code) {
            Some((_, v)) => *v = data,
            None => self.options.push((code, data)),
        }
    }

    pub fn msg_type(&self) -> Option<MsgType> {
        match self.option(opt::MESSAGE_TYPE) {
            Some([t]) => MsgType::from_u8(*t),
            _ => None,
        }
    }

    fn addr_opt(&self, code: u8) -> Option<Ipv4Addr> {
        match self.option(code) {
            Some(b) if b.len() == 4 => Some(ip(b)),
            _ => None,
        }
    }

    fn addrs_opt(&self, code: u8) -> Vec<Ipv4Addr> {
        match self.option(code) {
            Some(b) if !b.is_empty() && b.len() % 4 == 0 => b.chunks(4).map(ip).collect(),
            _ => Vec::new(),
        }
    }

    fn secs_opt(&self, code: u8) -> Option<u32> {
        match self.option(code) {
            Some(b) if b.len() == 4 => Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
            _ => None,
        }
    }

    pub fn server_id(&self) -> Option<Ipv4Addr> {
        self.addr_opt(opt::SERVER_ID)
    }

    /// Whether this is the server's answer to our request `xid` from hardware address `chaddr`.
    pub fn answers(&self, xid: u32, chaddr: &[u8]) -> bool {
        self.op == 2 && self.xid == xid && self.chaddr == chaddr
    }
}

/// A route the lease brings: destination, prefix length, router (unspecified: on-link).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseRoute {
    pub dst: Ipv4Addr,
    pub prefix: u8,
    pub gw: Ipv4Addr,
}

/// What an ACK grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub server: Ipv4Addr,
    /// First router of option 3.
    pub router: Option<Ipv4Addr>,
    /// Seconds; "infinite" (0xffffffff) is kept as is.
    pub lease_time: u32,
    pub t1: u32,
    pub t2: u32,
    /// Option 121 when present (it wins, RFC 3442), else option 33's host routes.
    pub classless: Vec<LeaseRoute>,
    pub static_routes: Vec<LeaseRoute>,
    pub dns: Vec<Ipv4Addr>,
    pub domain: Option<String>,
}

/// The lease time a server that names none grants, as the reference assumes (60 minutes).
pub const DEFAULT_LEASE_SECS: u32 = 3600;

fn prefix_of(mask: Ipv4Addr) -> Option<u8> {
    let m = u32::from(mask);
    let p = m.leading_ones();
    (m.checked_shl(p).unwrap_or(0) == 0).then_some(p as u8)
}

/// Option 121 (RFC 3442): width, significant octets of the destination, router; a malformed
/// list is ignored as a whole (the RFC: the client must not use a partial one).
pub fn parse_classless(b: &[u8]) -> Option<Vec<LeaseRoute>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let width = b[i];
        if width > 32 {
            return None;
        }
        let n = (width as usize).div_ceil(8);
        if i + 1 + n + 4 > b.len() {
            return None;
        }
        let mut d = [0u8; 4];
        d[..n].copy_from_slice(&b[i + 1..i + 1 + n]);
        let mask = if width == 0 { 0 } else { u32::MAX << (32 - width as u32) };
        let dst = Ipv4Addr::from(u32::from_be_bytes(d) & mask);
        let gw = ip(&b[i + 1 + n..i + 5 + n]);
        out.push(LeaseRoute { dst, prefix: width, gw });
        i += 5 + n;
    }
    Some(out)
}

impl Lease {
    /// The lease an ACK grants; an ACK without an address is refused.
    pub fn from_ack(m: &Message) -> Result<Self, String> {
        if m.yiaddr.is_unspecified() {
            return Err("the ACK offers no address (yiaddr 0.0.0.0)".into());
        }
        let prefix = match m.addr_opt(opt::SUBNET_MASK) {
            Some(mask) => prefix_of(mask).ok_or_else(|| format!("subnet mask {mask} is not contiguous"))?,
            // no mask: the class of the address (RFC 2131 leaves it to the client)
            None => match m.yiaddr.octets()[0] {
                0..=127 => 8,
                128..=191 => 16,
                _ => 24,
            },
        };
        let lease_time = m.secs_opt(opt::LEASE_TIME).unwrap_or(DEFAULT_LEASE_SECS);
        let half = lease_time / 2;
        let seven_eighths = (lease_time as u64 * 7 / 8) as u32;
        let mut t2 = m.secs_opt(opt::T2).filter(|&t| t <= lease_time).unwrap_or(seven_eighths);
        let t1 = m.secs_opt(opt::T1).filter(|&t| t <= t2).unwrap_or(half.min(t2));
        if t2 < t1 {
            t2 = t1;
        }
        let static_routes = match m.option(opt::STATIC_ROUTE) {
            Some(b) if !b.is_empty() && b.len() % 8 == 0 => b
                .chunks(8)
                .map(|c| LeaseRoute { dst: ip(&c[..4]), prefix: 32, gw: ip(&c[4..]) })
                .filter(|r| !r.dst.is_unspecified())
                .collect(),
            _ => Vec::new(),
        };
        let classless = m.option(opt::CLASSLESS_ROUTE).and_then(parse_classless).unwrap_or_default();
        let domain =
            m.option(opt::DOMAIN_NAME).map(|b| String::from_utf8_lossy(b).trim_end_matches('\0').to_string()).filter(|d| !d.is_empty());
        Ok(Lease {
            address: m.yiaddr,
            prefix,
            server: m.server_id().unwrap_or(m.siaddr),
            router: m.addrs_opt(opt::ROUTER).into_iter().next(),
            lease_time,
            t1,
            t2,
            classless,
            static_routes,
            dns: m.addrs_opt(opt::DNS),
            domain,
        })
    }

    /// The routes the reference returns: option 121's alone when present; else option 33's and a
    /// default route through the router.
    pub fn routes(&self) -> Vec<LeaseRoute> {
        if !self.classless.is_empty() {
            return self.classless.clone();
        }
        let mut r = self.static_routes.clone();
        if let Some(gw) = self.router {
            r.push(LeaseRoute { dst: Ipv4Addr::UNSPECIFIED, prefix: 0, gw });
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack() -> Message {
        let mut m = Message::request(0x1234_5678, &[2, 0, 0, 0, 0, 1]);
        m.op = 2;
        m.yiaddr = Ipv4Addr::new(10, 9, 0, 50);
        m.set(opt::MESSAGE_TYPE, [MsgType::Ack as u8]);
        m.set(opt::SERVER_ID, [10, 9, 0, 1]);
        m.set(opt::SUBNET_MASK, [255, 255, 255, 0]);
        m.set(opt::ROUTER, [10, 9, 0, 1, 10, 9, 0, 2]);
        m.set(opt::LEASE_TIME, 120u32.to_be_bytes());
        m.set(opt::T1, 15u32.to_be_bytes());
        m.set(opt::DNS, [10, 9, 0, 1, 8, 8, 8, 8]);
        m
    }

    #[test]
    fn round_trip_and_lease() {
        let m = ack();
        let b = m.encode();
        assert_eq!(b.len(), 300);
        let back = Message::decode(&b).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.msg_type(), Some(MsgType::Ack));
        assert!(back.answers(0x1234_5678, &[2, 0, 0, 0, 0, 1]));
        assert!(!back.answers(0x1234_5679, &[2, 0, 0, 0, 0, 1]));
        let l = Lease::from_ack(&back).unwrap();
        assert_eq!(
            (l.address, l.prefix, l.server, l.router),
            (Ipv4Addr::new(10, 9, 0, 50), 24, Ipv4Addr::new(10, 9, 0, 1), Some(Ipv4Addr::new(10, 9, 0, 1)))
        );
        // T1 from option 58, T2 7/8 of the lease
        assert_eq!((l.lease_time, l.t1, l.t2), (120, 15, 105));
        assert_eq!(l.dns, vec![Ipv4Addr::new(10, 9, 0, 1), Ipv4Addr::new(8, 8, 8, 8)]);
        assert_eq!(l.routes(), vec![LeaseRoute { dst: Ipv4Addr::UNSPECIFIED, prefix: 0, gw: Ipv4Addr::new(10, 9, 0, 1) }]);
    }

    #[test]
    fn timers_default_to_half_and_seven_eighths() {
        let mut m = ack();
        m.options.retain(|(c, _)| *c != opt::T1);
        let l = Lease::from_ack(&m).unwrap();
        assert_eq!((l.t1, l.t2), (60, 105));
        // a T1 past T2 is ignored
        m.set(opt::T1, 200u32.to_be_bytes());
        assert_eq!(Lease::from_ack(&m).unwrap().t1, 60);
        m.options.retain(|(c, _)| *c != opt::LEASE_TIME);
        assert_eq!(Lease::from_ack(&m).unwrap().lease_time, DEFAULT_LEASE_SECS);
    }

    #[test]
    fn classless_routes_win() {
        let mut m = ack();
        // 10.20.0.0/16 via 10.9.0.3; 0.0.0.0/0 via 10.9.0.1; 192.168.1.128/25 on-link
        m.set(opt::CLASSLESS_ROUTE, [16, 10, 20, 10, 9, 0, 3, 0, 10, 9, 0, 1, 25, 192, 168, 1, 128, 0, 0, 0, 0]);
        m.set(opt::STATIC_ROUTE, [10, 30, 0, 1, 10, 9, 0, 4]);
        let l = Lease::from_ack(&m).unwrap();
        assert_eq!(
            l.routes(),
            vec![
                LeaseRoute { dst: Ipv4Addr::new(10, 20, 0, 0), prefix: 16, gw: Ipv4Addr::new(10, 9, 0, 3) },
                LeaseRoute { dst: Ipv4Addr::UNSPECIFIED, prefix: 0, gw: Ipv4Addr::new(10, 9, 0, 1) },
                LeaseRoute { dst: Ipv4Addr::new(192, 168, 1, 128), prefix: 25, gw: Ipv4Addr::UNSPECIFIED },
            ]
        );
        // truncated: ignored as a whole, option 33 and the router then
        m.set(opt::CLASSLESS_ROUTE, [16, 10, 20, 10, 9, 0]);
        let l = Lease::from_ack(&m).unwrap();
        assert_eq!(l.routes().len(), 2);
        assert_eq!(l.routes()[0], LeaseRoute { dst: Ipv4Addr::new(10, 30, 0, 1), prefix: 32, gw: Ipv4Addr::new(10, 9, 0, 4) });
    }

    #[test]
    fn bad_input_is_refused() {
        let b = ack().encode();
        assert!(Message::decode(&b[..200]).unwrap_err().contains("shorter"));
        let mut c = b.clone();
        c[236] = 0;
        assert!(Message::decode(&c).unwrap_err().contains("cookie"));
        let mut c = b.clone();
        c[2] = 17;
        assert!(Message::decode(&c).is_err());
        // an option running past the end
        let mut c = b[..241].to_vec();
        c[240] = 53;
        c.push(9);
        assert!(Message::decode(&c).unwrap_err().contains("remain"));
        let mut m = ack();
        m.set(opt::SUBNET_MASK, [255, 0, 255, 0]);
        assert!(Lease::from_ack(&m).unwrap_err().contains("contiguous"));
        m.yiaddr = Ipv4Addr::UNSPECIFIED;
        assert!(Lease::from_ack(&m).is_err());
    }

    #[test]
    fn overload_and_split_options() {
        let mut m = ack();
        m.set(opt::HOST_NAME, vec![b'a'; 300]);
        let b = m.encode();
        assert_eq!(Message::decode(&b).unwrap().option(opt::HOST_NAME).unwrap().len(), 300);
        // an option in the file field, announced by option 52
        let mut b = ack().encode();
        let end = b.iter().rposition(|&x| x == opt::END).unwrap();
        b.splice(end..end, [opt::OVERLOAD, 1, 1]);
        b[108..114].copy_from_slice(&[opt::DOMAIN_NAME, 3, b'l', b'a', b'n', opt::END]);
        let m = Message::decode(&b).unwrap();
        assert_eq!(Lease::from_ack(&m).unwrap().domain.as_deref(), Some("lan"));
    }
}
