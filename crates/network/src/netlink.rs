//! A synchronous rtnetlink socket: links (bridges, veths), addresses, routes.
//!
//! The message types are `netlink-packet-route`'s and the socket is `netlink-sys`'s; the
//! request/answer loop below is hand-written because the `rtnetlink` crate over them is
//! async-only and brings a second version of `nix`. Synchronous calls suit berth: a netlink
//! socket belongs to the network namespace of the thread that opens it, so configuring the
//! inside of a container's namespace is "open a socket on a thread that entered it"
//! ([`crate::netns::NetNs::run`]), with no runtime to carry across.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::RawFd;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::error::{Error, Result};

/// An rtnetlink socket in the calling thread's network namespace.
pub struct Netlink {
    socket: Socket,
    seq: u32,
}

impl std::fmt::Debug for Netlink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Netlink").field("seq", &self.seq).finish()
    }
}

/// One link as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub up: bool,
    /// The bridge it is enslaved to, if any.
    pub controller: Option<u32>,
    pub mtu: Option<u32>,
    /// `veth`, `bridge`, ... (none for physical or loopback devices).
    pub kind: Option<String>,
}

impl Netlink {
    pub fn open() -> Result<Self> {
        let what = || "open an rtnetlink socket".to_string();
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(|source| Error::Netlink {
            what: what(),
            source,
        })?;
        socket.bind_auto().map_err(|source| Error::Netlink {
            what: what(),
            source,
        })?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(|source| Error::Netlink {
                what: what(),
                source,
            })?;
        Ok(Netlink { socket, seq: 0 })
    }

    /// Sends one request and collects the answer: the messages of a dump, or nothing for an
    /// acknowledged change. A kernel error becomes [`Error::Netlink`] naming `what`.
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        what: &str,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = flags | NLM_F_REQUEST;
        header.sequence_number = self.seq;
        let mut req = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        req.finalize();
        let mut buf = vec![0u8; req.buffer_len()];
        req.serialize(&mut buf);
        self.socket.send(&buf, 0).map_err(|source| Error::Netlink {
            what: what.to_string(),
            source,
        })?;
        let mut out = Vec::new();
        let mut rbuf: Vec<u8> = Vec::with_capacity(1 << 16);
        loop {
            rbuf.clear();
            self.socket
                .recv(&mut rbuf, 0)
                .map_err(|source| Error::Netlink {
                    what: what.to_string(),
                    source,
                })?;
            let mut off = 0;
            while off < rbuf.len() {
                let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&rbuf[off..]).map_err(
                    |e| Error::Decode {
                        what: what.to_string(),
                        detail: e.to_string(),
                    },
                )?;
                let len = m.header.length as usize;
                if len == 0 {
                    return Err(Error::Decode {
                        what: what.to_string(),
                        detail: "zero-length message".into(),
                    });
                }
                off += len;
                if m.header.sequence_number != self.seq {
                    continue;
                }
                match m.payload {
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(out),
                            Some(code) => Err(Error::Netlink {
                                what: what.to_string(),
                                source: std::io::Error::from_raw_os_error(-code.get()),
                            }),
                        }
                    }
                    NetlinkPayload::Done(_) => return Ok(out),
                    // A non-dump answer with data is followed by its ACK.
                    NetlinkPayload::InnerMessage(inner) => out.push(inner),
                    NetlinkPayload::Noop | NetlinkPayload::Overrun(_) => {}
                    _ => {}
                }
            }
        }
    }

    fn change(&mut self, msg: RouteNetlinkMessage, extra: u16, what: &str) -> Result<()> {
        self.request(msg, NLM_F_ACK | extra, what).map(|_| ())
    }

    /// Every link in this namespace.
    pub fn links(&mut self) -> Result<Vec<Link>> {
        let out = self.request(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
            "list links",
        )?;
        Ok(out
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(to_link(&l)),
                _ => None,
            })
            .collect())
    }

    /// The link called `name` (asked of the kernel by name, not found in a dump).
    pub fn link(&mut self, name: &str) -> Result<Link> {
        let mut q = LinkMessage::default();
        q.attributes.push(LinkAttribute::IfName(name.into()));
        let out = match self.request(
            RouteNetlinkMessage::GetLink(q),
            NLM_F_ACK,
            &format!("look up link {name}"),
        ) {
            Err(Error::Netlink { source, .. }) if source.raw_os_error() == Some(libc::ENODEV) => {
                return Err(Error::NotFound(format!("link {name}")))
            }
            r => r?,
        };
        out.iter()
            .find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(to_link(l)),
                _ => None,
            })
            .filter(|l| l.name == name)
            .ok_or_else(|| Error::NotFound(format!("link {name}")))
    }

    fn index(&mut self, name: &str) -> Result<u32> {
        Ok(self.link(name)?.index)
    }

    /// Creates a bridge (which must not exist yet).
    pub fn add_bridge(&mut self, name: &str, mtu: Option<u32>) -> Result<()> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.into()));
        if let Some(mtu) = mtu {
            m.attributes.push(LinkAttribute::Mtu(mtu));
        }
        m.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        self.change(
            RouteNetlinkMessage::NewLink(m),
            NLM_F_CREATE | NLM_F_EXCL,
            &format!("create bridge {name}"),
        )
    }

    /// Creates a veth pair `name` ↔ `peer` in this namespace.
    pub fn add_veth(&mut self, name: &str, peer: &str, mtu: Option<u32>) -> Result<()> {
        self.veth(name, peer, Vec::new(), mtu)
    }

    /// Creates a veth pair whose `peer` end is born inside the network namespace open at
    /// `netns_fd`, with `peer_mac`: one request, with no move of a device between namespaces
    /// afterwards (a move waits for an RCU grace period in the kernel).
    pub fn add_veth_into(
        &mut self,
        name: &str,
        peer: &str,
        netns_fd: RawFd,
        peer_mac: Option<[u8; 6]>,
        mtu: Option<u32>,
    ) -> Result<()> {
        let mut extra = vec![LinkAttribute::NetNsFd(netns_fd)];
        if let Some(mac) = peer_mac {
            extra.push(LinkAttribute::Address(mac.to_vec()));
        }
        self.veth(name, peer, extra, mtu)
    }

    fn veth(
        &mut self,
        name: &str,
        peer: &str,
        peer_extra: Vec<LinkAttribute>,
        mtu: Option<u32>,
    ) -> Result<()> {
        let mut p = LinkMessage::default();
        p.attributes.push(LinkAttribute::IfName(peer.into()));
        p.attributes.extend(peer_extra);
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.into()));
        if let Some(mtu) = mtu {
            m.attributes.push(LinkAttribute::Mtu(mtu));
            p.attributes.push(LinkAttribute::Mtu(mtu));
        }
        m.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))),
        ]));
        self.change(
            RouteNetlinkMessage::NewLink(m),
            NLM_F_CREATE | NLM_F_EXCL,
            &format!("create veth {name}/{peer}"),
        )
    }

    fn set(&mut self, name: &str, f: impl FnOnce(&mut LinkMessage), what: &str) -> Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = self.index(name)?;
        f(&mut m);
        self.change(RouteNetlinkMessage::SetLink(m), 0, what)
    }

    /// Brings a link up.
    pub fn set_up(&mut self, name: &str) -> Result<()> {
        self.set(
            name,
            |m| {
                m.header.flags = LinkFlags::Up;
                m.header.change_mask = LinkFlags::Up;
            },
            &format!("bring {name} up"),
        )
    }

    /// Enslaves a link to a bridge.
    pub fn set_controller(&mut self, name: &str, bridge: &str) -> Result<()> {
        let b = self.index(bridge)?;
        self.set(
            name,
            |m| m.attributes.push(LinkAttribute::Controller(b)),
            &format!("attach {name} to {bridge}"),
        )
    }

    /// Moves a link into the network namespace open at `fd`.
    pub fn set_netns(&mut self, name: &str, fd: RawFd) -> Result<()> {
        self.set(
            name,
            |m| m.attributes.push(LinkAttribute::NetNsFd(fd)),
            &format!("move {name} into a network namespace"),
        )
    }

    /// Renames a (down) link.
    pub fn rename(&mut self, name: &str, new: &str) -> Result<()> {
        let new = new.to_string();
        self.set(
            name,
            |m| m.attributes.push(LinkAttribute::IfName(new)),
            &format!("rename {name}"),
        )
    }

    /// Sets a link's MAC address.
    pub fn set_mac(&mut self, name: &str, mac: [u8; 6]) -> Result<()> {
        self.set(
            name,
            |m| m.attributes.push(LinkAttribute::Address(mac.to_vec())),
            &format!("set the MAC address of {name}"),
        )
    }

    /// Deletes a link (a veth's peer goes with it). A link that is already gone is fine.
    pub fn del_link(&mut self, name: &str) -> Result<()> {
        let index = match self.index(name) {
            Ok(i) => i,
            Err(Error::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let mut m = LinkMessage::default();
        m.header.index = index;
        match self.change(
            RouteNetlinkMessage::DelLink(m),
            0,
            &format!("delete link {name}"),
        ) {
            Err(Error::Netlink { source, .. }) if source.raw_os_error() == Some(libc::ENODEV) => {
                Ok(())
            }
            r => r,
        }
    }

    /// Adds `addr/prefix` to a link (an address already there is fine).
    pub fn add_address(&mut self, name: &str, addr: IpAddr, prefix: u8) -> Result<()> {
        let mut m = AddressMessage::default();
        m.header.index = self.index(name)?;
        m.header.prefix_len = prefix;
        match addr {
            IpAddr::V4(v4) => {
                m.header.family = AddressFamily::Inet;
                m.attributes.push(AddressAttribute::Local(addr));
                if prefix < 31 {
                    let bits = u32::from(v4) | (u32::MAX >> prefix);
                    m.attributes
                        .push(AddressAttribute::Broadcast(Ipv4Addr::from(bits)));
                }
            }
            IpAddr::V6(_) => {
                m.header.family = AddressFamily::Inet6;
                // No duplicate address detection: the address is berth's to give, and must
                // work at once (a tentative address cannot be bound or routed for a second
                // or two).
                m.header.flags = AddressHeaderFlags::Nodad;
                m.attributes
                    .push(AddressAttribute::Flags(AddressFlags::Nodad));
            }
        }
        m.attributes.push(AddressAttribute::Address(addr));
        match self.change(
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_CREATE | NLM_F_EXCL,
            &format!("add address {addr}/{prefix} to {name}"),
        ) {
            Err(Error::Netlink { source, .. }) if source.raw_os_error() == Some(libc::EEXIST) => {
                Ok(())
            }
            r => r,
        }
    }

    /// The addresses on a link, with their prefix lengths.
    pub fn addresses(&mut self, name: &str) -> Result<Vec<(IpAddr, u8)>> {
        let index = self.index(name)?;
        let out = self.request(
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            NLM_F_DUMP,
            "list addresses",
        )?;
        Ok(out
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) if a.header.index == index => {
                    a.attributes.iter().find_map(|x| match x {
                        AddressAttribute::Address(ip) => Some((*ip, a.header.prefix_len)),
                        _ => None,
                    })
                }
                _ => None,
            })
            .collect())
    }

    /// Adds a default route through `gateway`.
    pub fn add_default_route(&mut self, gateway: IpAddr) -> Result<()> {
        let mut m = RouteMessage::default();
        m.header = RouteHeader {
            address_family: match gateway {
                IpAddr::V4(_) => AddressFamily::Inet,
                IpAddr::V6(_) => AddressFamily::Inet6,
            },
            table: RouteHeader::RT_TABLE_MAIN,
            protocol: RouteProtocol::Static,
            scope: RouteScope::Universe,
            kind: RouteType::Unicast,
            ..m.header
        };
        m.attributes.push(RouteAttribute::Gateway(match gateway {
            IpAddr::V4(v) => RouteAddress::Inet(v),
            IpAddr::V6(v) => RouteAddress::Inet6(v),
        }));
        self.change(
            RouteNetlinkMessage::NewRoute(m),
            NLM_F_CREATE | NLM_F_EXCL,
            &format!("add a default route via {gateway}"),
        )
    }

    /// The destinations (network, prefix) of every IPv4 route in the main table: what a new
    /// subnet must not overlap.
    pub fn ipv4_routes(&mut self) -> Result<Vec<(Ipv4Addr, u8)>> {
        let mut q = RouteMessage::default();
        q.header.address_family = AddressFamily::Inet;
        let out = self.request(RouteNetlinkMessage::GetRoute(q), NLM_F_DUMP, "list routes")?;
        Ok(out
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r)
                    if r.header.table == RouteHeader::RT_TABLE_MAIN
                        && r.header.address_family == AddressFamily::Inet =>
                {
                    let dst = r.attributes.iter().find_map(|a| match a {
                        RouteAttribute::Destination(RouteAddress::Inet(v)) => Some(*v),
                        _ => None,
                    });
                    Some((
                        dst.unwrap_or(Ipv4Addr::UNSPECIFIED),
                        r.header.destination_prefix_length,
                    ))
                }
                _ => None,
            })
            .collect())
    }
}

fn to_link(l: &LinkMessage) -> Link {
    let mut out = Link {
        index: l.header.index,
        name: String::new(),
        up: l.header.flags.contains(LinkFlags::Up),
        controller: None,
        mtu: None,
        kind: None,
    };
    for a in &l.attributes {
        match a {
            LinkAttribute::IfName(n) => out.name = n.clone(),
            LinkAttribute::Controller(c) => out.controller = Some(*c),
            LinkAttribute::Mtu(m) => out.mtu = Some(*m),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Kind(k) = i {
                        out.kind = Some(k.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    out
}
