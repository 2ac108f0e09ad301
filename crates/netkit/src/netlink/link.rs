//! Links: lookup, creation of every kind the plugins need, and changes (up/down, MTU, MAC,
//! name, master, namespace, bridge port flags, bridge VLANs).

use super::Netlink;
use crate::error::{Error, Result};
use crate::netns::NetNs;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::link::{
    AfSpecBridge, BridgeVlanInfo, BridgeVlanInfoFlags, InfoBridge, InfoBridgePort, InfoData, InfoIpVlan, InfoKind, InfoMacVlan,
    InfoPortData, InfoPortKind, InfoVeth, InfoVlan, InfoVrf, InfoVxlan, IpVlanMode, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
    MacVlanMode as NlMacVlanMode, State,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

/// A link as the kernel reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// `veth`, `bridge`, `macvlan`, … (`None` for physical devices and `lo`).
    pub kind: Option<String>,
    pub mac: Vec<u8>,
    pub mtu: u32,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// Operationally up.
    pub oper_up: bool,
    pub promisc: bool,
    pub allmulti: bool,
    pub txqlen: u32,
    pub master: Option<u32>,
    /// `IFLA_LINK`: a veth's peer index, or a vlan/macvlan's parent.
    pub link: Option<u32>,
    /// `IFLA_LINK_NETNSID`: the namespace (as seen from this one) that `link` lives in.
    pub link_netnsid: Option<i32>,
    pub alias: Option<String>,
    /// Bridge port flags, when the link is a bridge port.
    pub hairpin: Option<bool>,
    pub isolated: Option<bool>,
    /// For bridges: whether VLAN filtering is on.
    pub vlan_filtering: Option<bool>,
    /// For VRFs: the routing table (`IFLA_VRF_TABLE`).
    pub vrf_table: Option<u32>,
    /// For macvlans: the mode.
    pub macvlan_mode: Option<MacvlanMode>,
    /// For ipvlans: the mode.
    pub ipvlan_mode: Option<IpvlanMode>,
    /// For vlans: the VLAN ID.
    pub vlan_id: Option<u16>,
    /// For vxlans: VNI, local address, underlay device, port, learning.
    pub vxlan: Option<Vxlan>,
}

/// A vxlan device's settings (`ip -d link show`): what [`LinkKind::Vxlan`] creates and what the
/// kernel reports back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vxlan {
    /// The VXLAN network identifier (24 bits).
    pub vni: u32,
    /// The source address of encapsulated packets (`local`).
    pub local: Option<std::net::Ipv4Addr>,
    /// The underlay device (`dev`, `IFLA_VXLAN_LINK`).
    pub underlay: Option<u32>,
    /// The UDP destination port (`dstport`); 0 lets the kernel pick its default, 8472.
    pub port: u16,
    /// Learning of remote MACs from received packets (off for a control-plane-programmed FDB).
    pub learning: bool,
}

impl Link {
    /// The peer of a veth: its index and, when it lives in another namespace, that namespace's
    /// id as seen from the namespace this link was read in.
    pub fn veth_peer(&self) -> Result<(u32, Option<i32>)> {
        if self.kind.as_deref() != Some("veth") {
            return Err(Error::msg(format!("finding the peer of link {}", self.name), "not a veth"));
        }
        match self.link {
            Some(p) if p != 0 => Ok((p, self.link_netnsid)),
            _ => Err(Error::msg(format!("finding the peer of link {}", self.name), "the kernel reports no peer")),
        }
    }
}

impl Link {
    /// The MAC as `aa:bb:cc:dd:ee:ff`.
    pub fn mac_string(&self) -> String {
        format_mac(&self.mac)
    }

    fn from_message(m: &LinkMessage) -> Link {
        let mut l = Link {
            index: m.header.index,
            up: m.header.flags.contains(LinkFlags::Up),
            promisc: m.header.flags.contains(LinkFlags::Promisc),
            allmulti: m.header.flags.contains(LinkFlags::Allmulti),
            ..Default::default()
        };
        for a in &m.attributes {
            match a {
                LinkAttribute::IfName(n) => l.name = n.clone(),
                LinkAttribute::Address(mac) => l.mac = mac.clone(),
                LinkAttribute::Mtu(v) => l.mtu = *v,
                LinkAttribute::TxQueueLen(v) => l.txqlen = *v,
                LinkAttribute::Controller(v) => l.master = Some(*v),
                LinkAttribute::Link(v) => l.link = Some(*v),
                LinkAttribute::LinkNetNsId(v) => l.link_netnsid = Some(*v),
                LinkAttribute::IfAlias(s) => l.alias = Some(s.clone()),
                LinkAttribute::OperState(s) => l.oper_up = *s == State::Up,
                LinkAttribute::LinkInfo(infos) => {
                    for i in infos {
                        match i {
                            LinkInfo::Kind(k) => l.kind = Some(k.to_string()),
                            LinkInfo::Data(InfoData::Bridge(opts)) => {
                                for o in opts {
                                    if let InfoBridge::VlanFiltering(v) = o {
                                        l.vlan_filtering = Some(*v);
                                    }
                                }
                            }
                            LinkInfo::Data(InfoData::Vrf(opts)) => {
                                for o in opts {
                                    if let InfoVrf::TableId(t) = o {
                                        l.vrf_table = Some(*t);
                                    }
                                }
                            }
                            LinkInfo::Data(InfoData::MacVlan(opts)) => {
                                for o in opts {
                                    if let InfoMacVlan::Mode(m) = o {
                                        l.macvlan_mode = MacvlanMode::from_netlink(*m);
                                    }
                                }
                            }
                            LinkInfo::Data(InfoData::IpVlan(opts)) => {
                                for o in opts {
                                    if let InfoIpVlan::Mode(m) = o {
                                        l.ipvlan_mode = IpvlanMode::from_netlink(*m);
                                    }
                                }
                            }
                            LinkInfo::Data(InfoData::Vxlan(opts)) => {
                                let mut v = Vxlan { vni: 0, local: None, underlay: None, port: 0, learning: true };
                                for o in opts {
                                    match o {
                                        InfoVxlan::Id(id) => v.vni = *id,
                                        InfoVxlan::Local(a) => v.local = Some(*a),
                                        InfoVxlan::Link(i) => v.underlay = Some(*i).filter(|i| *i != 0),
                                        InfoVxlan::Port(p) => v.port = *p,
                                        InfoVxlan::Learning(b) => v.learning = *b,
                                        _ => {}
                                    }
                                }
                                l.vxlan = Some(v);
                            }
                            LinkInfo::Data(InfoData::Vlan(opts)) => {
                                for o in opts {
                                    if let InfoVlan::Id(id) = o {
                                        l.vlan_id = Some(*id);
                                    }
                                }
                            }
                            LinkInfo::PortData(InfoPortData::BridgePort(opts)) => {
                                for o in opts {
                                    match o {
                                        InfoBridgePort::HairpinMode(v) => l.hairpin = Some(*v),
                                        InfoBridgePort::Isolated(v) => l.isolated = Some(*v),
                                        _ => {}
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        l
    }
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// Parses `aa:bb:cc:dd:ee:ff` (also `-` separated, any case).
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return None;
    }
    let mut out = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        if p.len() != 2 {
            return None;
        }
        out[i] = u8::from_str_radix(p, 16).ok()?;
    }
    Some(out)
}

/// macvlan modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacvlanMode {
    Private,
    Vepa,
    Bridge,
    Passthru,
}

impl MacvlanMode {
    fn from_netlink(m: NlMacVlanMode) -> Option<Self> {
        match m {
            NlMacVlanMode::Private => Some(MacvlanMode::Private),
            NlMacVlanMode::Vepa => Some(MacvlanMode::Vepa),
            NlMacVlanMode::Bridge => Some(MacvlanMode::Bridge),
            NlMacVlanMode::Passthrough => Some(MacvlanMode::Passthru),
            _ => None,
        }
    }
}

impl IpvlanMode {
    fn from_netlink(m: IpVlanMode) -> Option<Self> {
        match m {
            IpVlanMode::L2 => Some(IpvlanMode::L2),
            IpVlanMode::L3 => Some(IpvlanMode::L3),
            IpVlanMode::L3S => Some(IpvlanMode::L3s),
            _ => None,
        }
    }
}

/// The peer of a veth being created.
#[derive(Debug, Clone)]
pub struct VethPeer<'a> {
    pub name: String,
    /// Create the peer directly in this namespace (it never appears in the caller's).
    pub netns: Option<&'a NetNs>,
    pub mac: Option<[u8; 6]>,
    pub mtu: Option<u32>,
}

/// What kind of link to create.
#[derive(Debug, Clone)]
pub enum LinkKind<'a> {
    Veth(VethPeer<'a>),
    /// `vlan_filtering` is set only when given (the kernel default is off).
    Bridge {
        vlan_filtering: Option<bool>,
    },
    Macvlan {
        mode: MacvlanMode,
    },
    /// `mode`: l2, l3 or l3s.
    Ipvlan {
        mode: IpvlanMode,
    },
    Vlan {
        id: u16,
    },
    Dummy,
    Vrf {
        table: u32,
    },
    Ifb,
    /// A point-to-multipoint vxlan device without a multicast group: its FDB says where each
    /// MAC's VTEP is (`ip link add … type vxlan id VNI local IP dev DEV dstport PORT nolearning`).
    Vxlan(Vxlan),
}

/// ipvlan modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpvlanMode {
    L2,
    L3,
    L3s,
}

/// A link to create.
#[derive(Debug, Clone)]
pub struct LinkSpec<'a> {
    pub name: String,
    pub kind: LinkKind<'a>,
    pub mtu: Option<u32>,
    pub mac: Option<[u8; 6]>,
    /// `IFLA_LINK`: the parent of a vlan, macvlan or ipvlan.
    pub parent: Option<u32>,
    /// Create the link in this namespace instead of the socket's.
    pub netns: Option<&'a NetNs>,
    pub txqlen: Option<u32>,
    pub up: bool,
    /// macvlan only: `IFLA_MACVLAN_BC_QUEUE_LEN`, the broadcast/multicast queue length.
    pub bc_queue_len: Option<u32>,
}

impl<'a> LinkSpec<'a> {
    pub fn new(name: impl Into<String>, kind: LinkKind<'a>) -> Self {
        LinkSpec { name: name.into(), kind, mtu: None, mac: None, parent: None, netns: None, txqlen: None, up: false, bc_queue_len: None }
    }

    /// The `IFLA_INFO_KIND` of the link (`ipvlan`, `vlan`, …).
    pub fn kind_name(&self) -> &'static str {
        self.kind.name()
    }

    /// The RTM_NEWLINK message for this spec.
    pub fn message(&self) -> LinkMessage {
        let mut m = base(0);
        if self.up {
            m.header.flags = LinkFlags::Up;
            m.header.change_mask = LinkFlags::Up;
        }
        m.attributes.push(LinkAttribute::IfName(self.name.clone()));
        if let Some(mtu) = self.mtu {
            m.attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(mac) = self.mac {
            m.attributes.push(LinkAttribute::Address(mac.to_vec()));
        }
        if let Some(q) = self.txqlen {
            m.attributes.push(LinkAttribute::TxQueueLen(q));
        }
        if let Some(p) = self.parent {
            m.attributes.push(LinkAttribute::Link(p));
        }
        if let Some(ns) = self.netns {
            m.attributes.push(LinkAttribute::NetNsFd(ns.as_raw_fd()));
        }
        let (kind, data) = match &self.kind {
            LinkKind::Veth(peer) => {
                let mut p = base(0);
                p.attributes.push(LinkAttribute::IfName(peer.name.clone()));
                if let Some(mtu) = peer.mtu.or(self.mtu) {
                    p.attributes.push(LinkAttribute::Mtu(mtu));
                }
                if let Some(mac) = peer.mac {
                    p.attributes.push(LinkAttribute::Address(mac.to_vec()));
                }
                if let Some(ns) = peer.netns {
                    p.attributes.push(LinkAttribute::NetNsFd(ns.as_raw_fd()));
                }
                (InfoKind::Veth, Some(InfoData::Veth(InfoVeth::Peer(p))))
            }
            LinkKind::Bridge { vlan_filtering } => {
                (InfoKind::Bridge, vlan_filtering.map(|v| InfoData::Bridge(vec![InfoBridge::VlanFiltering(v)])))
            }
            LinkKind::Macvlan { mode } => {
                let mode = match mode {
                    MacvlanMode::Private => NlMacVlanMode::Private,
                    MacvlanMode::Vepa => NlMacVlanMode::Vepa,
                    MacvlanMode::Bridge => NlMacVlanMode::Bridge,
                    MacvlanMode::Passthru => NlMacVlanMode::Passthrough,
                };
                let mut data = vec![InfoMacVlan::Mode(mode)];
                if let Some(q) = self.bc_queue_len {
                    data.push(InfoMacVlan::BcQueueLen(q));
                }
                (InfoKind::MacVlan, Some(InfoData::MacVlan(data)))
            }
            LinkKind::Ipvlan { mode } => {
                let mode = match mode {
                    IpvlanMode::L2 => IpVlanMode::L2,
                    IpvlanMode::L3 => IpVlanMode::L3,
                    IpvlanMode::L3s => IpVlanMode::L3S,
                };
                (InfoKind::IpVlan, Some(InfoData::IpVlan(vec![InfoIpVlan::Mode(mode)])))
            }
            LinkKind::Vlan { id } => (InfoKind::Vlan, Some(InfoData::Vlan(vec![InfoVlan::Id(*id)]))),
            LinkKind::Dummy => (InfoKind::Dummy, None),
            LinkKind::Vrf { table } => (InfoKind::Vrf, Some(InfoData::Vrf(vec![InfoVrf::TableId(*table)]))),
            LinkKind::Ifb => (InfoKind::Ifb, None),
            LinkKind::Vxlan(v) => {
                let mut data = vec![InfoVxlan::Id(v.vni)];
                if let Some(a) = v.local {
                    data.push(InfoVxlan::Local(a));
                }
                if let Some(i) = v.underlay {
                    data.push(InfoVxlan::Link(i));
                }
                data.push(InfoVxlan::Port(v.port));
                data.push(InfoVxlan::Learning(v.learning));
                (InfoKind::Vxlan, Some(InfoData::Vxlan(data)))
            }
        };
        let mut info = vec![LinkInfo::Kind(kind)];
        if let Some(d) = data {
            info.push(LinkInfo::Data(d));
        }
        m.attributes.push(LinkAttribute::LinkInfo(info));
        m
    }
}

impl LinkKind<'_> {
    /// The `IFLA_INFO_KIND` string.
    pub fn name(&self) -> &'static str {
        match self {
            LinkKind::Veth(_) => "veth",
            LinkKind::Bridge { .. } => "bridge",
            LinkKind::Macvlan { .. } => "macvlan",
            LinkKind::Ipvlan { .. } => "ipvlan",
            LinkKind::Vlan { .. } => "vlan",
            LinkKind::Dummy => "dummy",
            LinkKind::Vrf { .. } => "vrf",
            LinkKind::Ifb => "ifb",
            LinkKind::Vxlan(_) => "vxlan",
        }
    }

    /// The kernel module that provides this kind of link (`CONFIG_…` built in or loaded).
    pub fn kernel_module(&self) -> &'static str {
        match self {
            LinkKind::Vlan { .. } => "8021q",
            LinkKind::Bridge { .. } => "bridge",
            k => k.name(),
        }
    }

    /// What a kernel without this kind lacks, in words: `the kernel has no ipvlan support
    /// (module ipvlan)`.
    pub fn missing_feature(&self) -> String {
        format!("the kernel has no {} support (module {})", self.name(), self.kernel_module())
    }
}

/// True when `e` is the kernel's answer to RTM_NEWLINK for a link kind it does not have:
/// EOPNOTSUPP with the extended ACK "Unknown device type" (or no message; older kernels send
/// none). Other EOPNOTSUPP answers carry their own message ("VLANs not supported on device").
pub fn is_unknown_link_kind(e: &Error) -> bool {
    match e {
        Error::Os { errno, detail, .. } if *errno == libc::EOPNOTSUPP => {
            detail.as_deref().is_none_or(|d| d == "Unknown device type" || d.starts_with("the kernel has no "))
        }
        _ => false,
    }
}

/// Bridge port options; `None` leaves a flag as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BridgePortOpts {
    pub hairpin: Option<bool>,
    pub isolated: Option<bool>,
    pub learning: Option<bool>,
}

fn base(index: u32) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.header.index = index;
    m
}

fn new_link(m: LinkMessage) -> RouteNetlinkMessage {
    RouteNetlinkMessage::NewLink(m)
}

impl Netlink {
    /// The link called `name`.
    pub fn link_by_name(&mut self, name: &str) -> Result<Link> {
        let mut m = base(0);
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        let op = || format!("looking up link {name}");
        match self.get(RouteNetlinkMessage::GetLink(m), &op)? {
            RouteNetlinkMessage::NewLink(l) => Ok(Link::from_message(&l)),
            other => Err(Error::msg(op(), format!("unexpected reply {other:?}"))),
        }
    }

    /// The link with index `index`.
    pub fn link_by_index(&mut self, index: u32) -> Result<Link> {
        let op = || format!("looking up link #{index}");
        match self.get(RouteNetlinkMessage::GetLink(base(index)), &op)? {
            RouteNetlinkMessage::NewLink(l) => Ok(Link::from_message(&l)),
            other => Err(Error::msg(op(), format!("unexpected reply {other:?}"))),
        }
    }

    /// Every link.
    pub fn links(&mut self) -> Result<Vec<Link>> {
        let msgs = self.dump(&|| RouteNetlinkMessage::GetLink(base(0)), &|| "listing links".to_string())?;
        Ok(msgs
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(Link::from_message(l)),
                _ => None,
            })
            .collect())
    }

    /// Creates a link; an existing link of that name is an error (EEXIST). A kernel without the
    /// link kind (here: vlan, ipvlan, dummy, vrf) answers EOPNOTSUPP, reported as such.
    pub fn add_link(&mut self, spec: &LinkSpec) -> Result<()> {
        let op = || format!("creating {} link {}", spec.kind_name(), spec.name);
        self.request(new_link(spec.message()), NLM_F_CREATE | NLM_F_EXCL, &op).map_err(|e| match e {
            Error::Os { op, errno, detail } if errno == libc::EOPNOTSUPP => {
                let missing = match spec.kind {
                    LinkKind::Bridge { vlan_filtering: Some(true) } => "this kernel lacks bridge VLAN filtering (802.1Q)".to_string(),
                    ref k if detail.as_deref().is_none_or(|d| d == "Unknown device type") => k.missing_feature(),
                    _ => detail.unwrap_or_default(),
                };
                Error::Os { op, errno, detail: Some(missing) }
            }
            e => e,
        })
    }

    /// Deletes a link (with a veth, its peer goes too).
    pub fn del_link(&mut self, index: u32) -> Result<()> {
        self.request(RouteNetlinkMessage::DelLink(base(index)), 0, &|| format!("deleting link #{index}"))
    }

    fn change(&mut self, m: LinkMessage, op: &dyn Fn() -> String) -> Result<()> {
        self.request(new_link(m), 0, op)
    }

    /// Sets the link administratively up or down.
    pub fn set_up(&mut self, index: u32, up: bool) -> Result<()> {
        let mut m = base(index);
        m.header.flags = if up { LinkFlags::Up } else { LinkFlags::empty() };
        m.header.change_mask = LinkFlags::Up;
        self.change(m, &|| format!("setting link #{index} {}", if up { "up" } else { "down" }))
    }

    pub fn set_promisc(&mut self, index: u32, on: bool) -> Result<()> {
        let mut m = base(index);
        m.header.flags = if on { LinkFlags::Promisc } else { LinkFlags::empty() };
        m.header.change_mask = LinkFlags::Promisc;
        self.change(m, &|| format!("setting promiscuous mode of link #{index}"))
    }

    pub fn set_allmulti(&mut self, index: u32, on: bool) -> Result<()> {
        let mut m = base(index);
        m.header.flags = if on { LinkFlags::Allmulti } else { LinkFlags::empty() };
        m.header.change_mask = LinkFlags::Allmulti;
        self.change(m, &|| format!("setting allmulticast of link #{index}"))
    }

    pub fn set_mtu(&mut self, index: u32, mtu: u32) -> Result<()> {
        let mut m = base(index);
        m.attributes.push(LinkAttribute::Mtu(mtu));
        self.change(m, &|| format!("setting MTU {mtu} on link #{index}"))
    }

    pub fn set_mac(&mut self, index: u32, mac: [u8; 6]) -> Result<()> {
        let mut m = base(index);
        m.attributes.push(LinkAttribute::Address(mac.to_vec()));
        self.change(m, &|| format!("setting MAC {} on link #{index}", format_mac(&mac)))
    }

    pub fn set_txqlen(&mut self, index: u32, len: u32) -> Result<()> {
        let mut m = base(index);
        m.attributes.push(LinkAttribute::TxQueueLen(len));
        self.change(m, &|| format!("setting txqueuelen {len} on link #{index}"))
    }

    pub fn set_alias(&mut self, index: u32, alias: &str) -> Result<()> {
        let mut m = base(index);
        m.attributes.push(LinkAttribute::IfAlias(alias.to_string()));
        self.change(m, &|| format!("setting alias of link #{index}"))
    }

    /// Renames a link (it must be down).
    pub fn rename(&mut self, index: u32, name: &str) -> Result<()> {
        let mut m = base(index);
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        self.change(m, &|| format!("renaming link #{index} to {name}"))
    }

    /// Enslaves a link to a master (a bridge, a VRF), or frees it with `None`.
    pub fn set_master(&mut self, index: u32, master: Option<u32>) -> Result<()> {
        let m = master_message(index, master.unwrap_or(0));
        self.change(m, &|| match master {
            Some(mi) => format!("attaching link #{index} to #{mi}"),
            None => format!("detaching link #{index} from its master"),
        })
    }

    /// Moves a link into another namespace.
    pub fn set_netns(&mut self, index: u32, ns: &NetNs) -> Result<()> {
        let mut m = base(index);
        m.attributes.push(LinkAttribute::NetNsFd(ns.as_raw_fd()));
        self.change(m, &|| format!("moving link #{index} to {}", ns.path().display()))
    }

    /// Whether this kernel makes VRF links (CONFIG_NET_VRF), asked without making one: a
    /// RTM_NEWLINK of kind `vrf` without its required table, which a kernel with VRFs refuses
    /// with EINVAL before creating anything and one without with EOPNOTSUPP.
    pub fn vrf_supported(&mut self) -> Result<bool> {
        let m = vrf_probe_message();
        match self.request(new_link(m), NLM_F_CREATE | NLM_F_EXCL, &|| "asking the kernel about VRF support".to_string()) {
            Err(Error::Os { errno, .. }) if errno == libc::EOPNOTSUPP => Ok(false),
            Err(Error::Os { errno, .. }) if errno == libc::EINVAL || errno == libc::EEXIST => Ok(true),
            Err(e) => Err(e),
            Ok(()) => {
                // (a kernel that took it after all: remove it again)
                if let Ok(l) = self.link_by_name(VRF_PROBE_NAME) {
                    let _ = self.del_link(l.index);
                }
                Ok(true)
            }
        }
    }

    /// Moves a link into another namespace, renamed to `name` there when given, in one request:
    /// the name never clashes in either namespace on the way (an existing `name` in `ns` fails
    /// the move, and nothing changes).
    pub fn move_to_netns(&mut self, index: u32, ns: &NetNs, name: Option<&str>) -> Result<()> {
        let m = move_message(index, ns.as_raw_fd(), name);
        self.change(m, &|| match name {
            Some(n) => format!("moving link #{index} to {} as {n}", ns.path().display()),
            None => format!("moving link #{index} to {}", ns.path().display()),
        })
    }

    /// Sets bridge port flags (hairpin, isolated, learning) of a link enslaved to a bridge.
    pub fn set_bridge_port(&mut self, index: u32, opts: BridgePortOpts) -> Result<()> {
        let mut data = Vec::new();
        if let Some(v) = opts.hairpin {
            data.push(InfoBridgePort::HairpinMode(v));
        }
        if let Some(v) = opts.isolated {
            data.push(InfoBridgePort::Isolated(v));
        }
        if let Some(v) = opts.learning {
            data.push(InfoBridgePort::Learning(v));
        }
        if data.is_empty() {
            return Ok(());
        }
        let mut m = base(index);
        m.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::PortKind(InfoPortKind::Bridge),
            LinkInfo::PortData(InfoPortData::BridgePort(data)),
        ]));
        self.change(m, &|| format!("setting bridge port flags on link #{index}"))
    }

    /// Adds VLAN `vid` to a bridge port (`pvid`: ingress untagged into it; `untagged`: egress
    /// untagged; `bridge_self`: on the bridge device itself). Needs 802.1Q support in the kernel.
    pub fn bridge_vlan_add(&mut self, index: u32, vid: u16, pvid: bool, untagged: bool, bridge_self: bool) -> Result<()> {
        let m = bridge_vlan_message(index, vid, pvid, untagged, bridge_self);
        self.request(RouteNetlinkMessage::SetLink(m), 0, &|| format!("adding VLAN {vid} to bridge port #{index}")).map_err(|e| {
            if e.is_not_supported() {
                e.context("this kernel lacks bridge VLAN filtering (802.1Q)")
            } else {
                e
            }
        })
    }

    /// Removes VLAN `vid` from a bridge port.
    pub fn bridge_vlan_del(&mut self, index: u32, vid: u16, bridge_self: bool) -> Result<()> {
        let m = bridge_vlan_message(index, vid, false, false, bridge_self);
        self.request(RouteNetlinkMessage::DelLink(m), 0, &|| format!("removing VLAN {vid} from bridge port #{index}"))
    }

    /// The VLANs configured on a bridge port (`bridge vlan show dev …`).
    pub fn bridge_vlans(&mut self, index: u32) -> Result<Vec<u16>> {
        let make = || {
            let mut m = base(0);
            m.header.interface_family = AddressFamily::Bridge;
            // IFLA_EXT_MASK = RTEXT_FILTER_BRVLAN
            m.attributes.push(LinkAttribute::ExtMask(vec![netlink_packet_route::link::LinkExtentMask::Brvlan]));
            RouteNetlinkMessage::GetLink(m)
        };
        let msgs = self.dump(&make, &|| format!("listing the VLANs of bridge port #{index}"))?;
        let mut out = Vec::new();
        for m in msgs {
            let RouteNetlinkMessage::NewLink(l) = m else { continue };
            if l.header.index != index {
                continue;
            }
            for a in &l.attributes {
                if let LinkAttribute::AfSpecBridge(spec) = a {
                    for s in spec {
                        if let AfSpecBridge::VlanInfo(v) = s {
                            out.push(v.vid);
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

const VRF_PROBE_NAME: &str = "rcni-vrfprobe";

/// [`Netlink::vrf_supported`]'s request: kind `vrf`, no `IFLA_VRF_TABLE`.
pub fn vrf_probe_message() -> LinkMessage {
    let mut m = base(0);
    m.attributes.push(LinkAttribute::IfName(VRF_PROBE_NAME.to_string()));
    m.attributes.push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Vrf)]));
    m
}

/// The RTM_NEWLINK message enslaving link `index` to `master` (0: freeing it).
pub fn master_message(index: u32, master: u32) -> LinkMessage {
    let mut m = base(index);
    m.attributes.push(LinkAttribute::Controller(master));
    m
}

/// The RTM_NEWLINK message moving link `index` to the namespace of `fd`, renamed to `name`.
pub fn move_message(index: u32, fd: i32, name: Option<&str>) -> LinkMessage {
    let mut m = base(index);
    if let Some(n) = name {
        m.attributes.push(LinkAttribute::IfName(n.to_string()));
    }
    m.attributes.push(LinkAttribute::NetNsFd(fd));
    m
}

/// The RTM_SETLINK/RTM_DELLINK message for a bridge VLAN change (`bridge vlan add|del`).
pub fn bridge_vlan_message(index: u32, vid: u16, pvid: bool, untagged: bool, bridge_self: bool) -> LinkMessage {
    let mut m = base(index);
    m.header.interface_family = AddressFamily::Bridge;
    let mut flags = BridgeVlanInfoFlags::empty();
    if pvid {
        flags |= BridgeVlanInfoFlags::Pvid;
    }
    if untagged {
        flags |= BridgeVlanInfoFlags::Untagged;
    }
    let mut spec = Vec::new();
    if bridge_self {
        spec.push(AfSpecBridge::Flags(netlink_packet_route::link::BridgeFlag::LowerDev));
    }
    spec.push(AfSpecBridge::VlanInfo(BridgeVlanInfo { flags, vid }));
    m.attributes.push(LinkAttribute::AfSpecBridge(spec));
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::wire::contains;
    use netlink_packet_core::{Emitable, Parseable};

    fn round_trip(m: &LinkMessage) -> (Vec<u8>, LinkMessage) {
        let mut buf = vec![0u8; m.buffer_len()];
        m.emit(&mut buf);
        let back = LinkMessage::parse(buf.as_slice()).unwrap();
        (buf, back)
    }

    fn info(m: &LinkMessage) -> Vec<LinkInfo> {
        m.attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::LinkInfo(i) => Some(i.clone()),
                _ => None,
            })
            .unwrap()
    }

    #[test]
    fn vlan_message() {
        let mut spec = LinkSpec::new("eth0.100", LinkKind::Vlan { id: 100 });
        spec.parent = Some(7);
        spec.mtu = Some(1400);
        let (bytes, back) = round_trip(&spec.message());
        assert!(contains(&bytes, b"vlan\0"));
        assert!(back.attributes.contains(&LinkAttribute::Link(7)));
        assert!(back.attributes.contains(&LinkAttribute::Mtu(1400)));
        assert_eq!(info(&back), vec![LinkInfo::Kind(InfoKind::Vlan), LinkInfo::Data(InfoData::Vlan(vec![InfoVlan::Id(100)]))]);
        // IFLA_VLAN_ID (1) as a u16 attribute: len 6, type 1, 100
        assert!(contains(&bytes, &[6, 0, 1, 0, 100, 0]));
    }

    #[test]
    fn ipvlan_dummy_vrf_macvlan_messages() {
        let mut spec = LinkSpec::new("ipv0", LinkKind::Ipvlan { mode: IpvlanMode::L3 });
        spec.parent = Some(2);
        let (bytes, back) = round_trip(&spec.message());
        assert!(contains(&bytes, b"ipvlan\0"));
        assert_eq!(info(&back)[1], LinkInfo::Data(InfoData::IpVlan(vec![InfoIpVlan::Mode(IpVlanMode::L3)])));
        // IFLA_IPVLAN_MODE (1) u16 = 1 (l3)
        assert!(contains(&bytes, &[6, 0, 1, 0, 1, 0]));

        let (bytes, back) = round_trip(&LinkSpec::new("d0", LinkKind::Dummy).message());
        assert!(contains(&bytes, b"dummy\0"));
        assert_eq!(info(&back), vec![LinkInfo::Kind(InfoKind::Dummy)]);

        let (bytes, back) = round_trip(&LinkSpec::new("vrf-blue", LinkKind::Vrf { table: 100 }).message());
        assert!(contains(&bytes, b"vrf\0"));
        assert_eq!(info(&back)[1], LinkInfo::Data(InfoData::Vrf(vec![InfoVrf::TableId(100)])));
        // IFLA_VRF_TABLE (1) u32 = 100
        assert!(contains(&bytes, &[8, 0, 1, 0, 100, 0, 0, 0]));

        let (_, back) = round_trip(&LinkSpec::new("mv0", LinkKind::Macvlan { mode: MacvlanMode::Bridge }).message());
        assert_eq!(info(&back)[1], LinkInfo::Data(InfoData::MacVlan(vec![InfoMacVlan::Mode(NlMacVlanMode::Bridge)])));
    }

    #[test]
    fn bridge_with_vlan_filtering_and_vlan_membership() {
        let (_, back) = round_trip(&LinkSpec::new("br0", LinkKind::Bridge { vlan_filtering: Some(true) }).message());
        assert_eq!(
            info(&back),
            vec![LinkInfo::Kind(InfoKind::Bridge), LinkInfo::Data(InfoData::Bridge(vec![InfoBridge::VlanFiltering(true)]))]
        );
        let (bytes, back) = round_trip(&bridge_vlan_message(5, 100, true, true, false));
        assert_eq!(back.header.interface_family, AddressFamily::Bridge);
        assert_eq!(back.header.index, 5);
        // IFLA_BRIDGE_VLAN_INFO (2): flags PVID|UNTAGGED (0x6), vid 100
        assert!(contains(&bytes, &[8, 0, 2, 0, 6, 0, 100, 0]));
        let (bytes, _) = round_trip(&bridge_vlan_message(5, 101, false, false, true));
        // IFLA_BRIDGE_FLAGS (0) = BRIDGE_FLAGS_SELF (2)
        assert!(contains(&bytes, &[6, 0, 0, 0, 2, 0]));
    }

    /// The kernel's format for the four link plugins' kinds (include/uapi/linux/if_link.h):
    /// IFLA_LINKINFO (18) nests IFLA_INFO_KIND (1, a NUL-terminated string) and IFLA_INFO_DATA
    /// (2), which holds IFLA_MACVLAN_MODE (1, u32: private 1, vepa 2, bridge 4, passthru 8),
    /// IFLA_IPVLAN_MODE (1, u16: l2 0, l3 1, l3s 2) or IFLA_VLAN_ID (1, u16). IFLA_LINK (5, u32)
    /// names the parent, IFLA_NET_NS_FD (28) the namespace to create in.
    #[test]
    fn link_plugin_kinds_in_the_kernel_format() {
        let kind_attr = |k: &str| {
            let mut v = vec![(4 + k.len() + 1) as u8, 0, 1, 0];
            v.extend_from_slice(k.as_bytes());
            v.push(0);
            v
        };
        for (mode, val) in [(MacvlanMode::Private, 1u8), (MacvlanMode::Vepa, 2), (MacvlanMode::Bridge, 4), (MacvlanMode::Passthru, 8)] {
            let mut spec = LinkSpec::new("veth0a1b2c3d", LinkKind::Macvlan { mode });
            spec.parent = Some(3);
            spec.mtu = Some(1400);
            spec.mac = Some([2, 0, 0, 0, 0, 9]);
            spec.bc_queue_len = Some(300);
            let (bytes, back) = round_trip(&spec.message());
            // IFLA_MACVLAN_BC_QUEUE_LEN (7) u32 = 300
            assert!(contains(&bytes, &[8, 0, 7, 0, 44, 1, 0, 0]));
            assert!(contains(&bytes, &kind_attr("macvlan")));
            assert!(contains(&bytes, &[8, 0, 1, 0, val, 0, 0, 0]), "IFLA_MACVLAN_MODE {mode:?}");
            assert!(contains(&bytes, &[8, 0, 5, 0, 3, 0, 0, 0]), "IFLA_LINK 3");
            assert!(back.attributes.contains(&LinkAttribute::Address(vec![2, 0, 0, 0, 0, 9])));
            assert_eq!(Link::from_message(&back).macvlan_mode, Some(mode));
        }
        for (mode, val) in [(IpvlanMode::L2, 0u8), (IpvlanMode::L3, 1), (IpvlanMode::L3s, 2)] {
            let mut spec = LinkSpec::new("veth0a1b2c3d", LinkKind::Ipvlan { mode });
            spec.parent = Some(4);
            let (bytes, back) = round_trip(&spec.message());
            assert!(contains(&bytes, &kind_attr("ipvlan")));
            assert!(contains(&bytes, &[6, 0, 1, 0, val, 0]), "IFLA_IPVLAN_MODE {mode:?}");
            assert!(contains(&bytes, &[8, 0, 5, 0, 4, 0, 0, 0]), "IFLA_LINK 4");
            assert_eq!(Link::from_message(&back).ipvlan_mode, Some(mode));
        }
        for id in [0u16, 1, 4094] {
            let mut spec = LinkSpec::new("veth0a1b2c3d", LinkKind::Vlan { id });
            spec.parent = Some(2);
            let (bytes, back) = round_trip(&spec.message());
            assert!(contains(&bytes, &kind_attr("vlan")));
            let [lo, hi] = id.to_le_bytes();
            assert!(contains(&bytes, &[6, 0, 1, 0, lo, hi]), "IFLA_VLAN_ID {id}");
            assert_eq!(Link::from_message(&back).vlan_id, Some(id));
        }
        // dummy: the kind alone, no IFLA_INFO_DATA, no parent
        let (bytes, back) = round_trip(&LinkSpec::new("eth0", LinkKind::Dummy).message());
        assert!(contains(&bytes, &kind_attr("dummy")));
        assert!(!back.attributes.iter().any(|a| matches!(a, LinkAttribute::Link(_))));
        // IFLA_LINKINFO holds exactly IFLA_INFO_KIND: 4 + 4 + "dummy\0" padded to 8 = 16 bytes
        assert!(contains(&bytes, &[16, 0, 18, 0, 10, 0, 1, 0]));
    }

    /// IFLA_INFO_DATA of a vxlan (include/uapi/linux/if_link.h): IFLA_VXLAN_ID (1, u32),
    /// IFLA_VXLAN_LINK (3, u32), IFLA_VXLAN_LOCAL (4, 4 bytes), IFLA_VXLAN_LEARNING (7, u8),
    /// IFLA_VXLAN_PORT (15, u16 in network byte order).
    #[test]
    fn vxlan_message() {
        let v = Vxlan { vni: 1, local: Some("10.131.0.1".parse().unwrap()), underlay: Some(3), port: 8472, learning: false };
        let mut spec = LinkSpec::new("flannel.1", LinkKind::Vxlan(v));
        spec.mtu = Some(1450);
        let (bytes, back) = round_trip(&spec.message());
        assert!(contains(&bytes, b"vxlan\0"));
        assert!(contains(&bytes, &[8, 0, 1, 0, 1, 0, 0, 0]), "IFLA_VXLAN_ID 1");
        assert!(contains(&bytes, &[8, 0, 3, 0, 3, 0, 0, 0]), "IFLA_VXLAN_LINK 3");
        assert!(contains(&bytes, &[8, 0, 4, 0, 10, 131, 0, 1]), "IFLA_VXLAN_LOCAL");
        assert!(contains(&bytes, &[5, 0, 7, 0, 0]), "IFLA_VXLAN_LEARNING 0");
        assert!(contains(&bytes, &[6, 0, 15, 0, 0x21, 0x18]), "IFLA_VXLAN_PORT 8472, big-endian");
        let l = Link::from_message(&back);
        assert_eq!(l.vxlan, Some(v));
        assert_eq!(l.mtu, 1450);
    }

    #[test]
    fn a_missing_link_kind_is_recognised_and_named() {
        let unknown =
            Error::Os { op: "creating ipvlan link x".into(), errno: libc::EOPNOTSUPP, detail: Some("Unknown device type".into()) };
        assert!(is_unknown_link_kind(&unknown));
        assert!(is_unknown_link_kind(&Error::Os { op: "x".into(), errno: libc::EOPNOTSUPP, detail: None }));
        let other = Error::Os { op: "x".into(), errno: libc::EOPNOTSUPP, detail: Some("VLANs not supported on device".into()) };
        assert!(!is_unknown_link_kind(&other));
        assert!(!is_unknown_link_kind(&Error::Os { op: "x".into(), errno: libc::EINVAL, detail: Some("Unknown device type".into()) }));
        assert_eq!(LinkKind::Ipvlan { mode: IpvlanMode::L2 }.missing_feature(), "the kernel has no ipvlan support (module ipvlan)");
        assert_eq!(LinkKind::Vlan { id: 5 }.missing_feature(), "the kernel has no vlan support (module 8021q)");
        assert_eq!(LinkKind::Dummy.missing_feature(), "the kernel has no dummy support (module dummy)");
        assert_eq!(LinkKind::Macvlan { mode: MacvlanMode::Bridge }.missing_feature(), "the kernel has no macvlan support (module macvlan)");
    }

    #[test]
    fn macs() {
        assert_eq!(parse_mac("0A:bb:cc:dd:ee:ff"), Some([0x0a, 0xbb, 0xcc, 0xdd, 0xee, 0xff]));
        assert_eq!(parse_mac("0a-bb-cc-dd-ee-ff"), Some([0x0a, 0xbb, 0xcc, 0xdd, 0xee, 0xff]));
        assert_eq!(parse_mac("0a:bb:cc:dd:ee"), None);
        assert_eq!(parse_mac("0a:bb:cc:dd:ee:fg"), None);
        assert_eq!(format_mac(&[0, 1, 0xab, 2, 3, 4]), "00:01:ab:02:03:04");
    }
}
