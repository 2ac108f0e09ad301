//! UDP sockets that live in a network namespace and on one device (the DHCP client's): made on a
//! thread inside the namespace through [`NetNs::run`], so the socket stays in that namespace
//! after the thread is back in its own, and bound to the device with `SO_BINDTODEVICE`, so what
//! it sends to the limited broadcast address leaves through that device even without an address
//! or a route there, and it receives only what arrives on it.

use crate::error::{Error, Result};
use crate::netns::NetNs;
use std::net::{SocketAddrV4, UdpSocket};
use std::os::fd::FromRawFd;

fn setopt(fd: i32, level: i32, name: i32, val: &[u8], what: &str) -> Result<()> {
    // SAFETY: `val` is a live buffer of the length passed; the kernel only reads it.
    let r = unsafe { libc::setsockopt(fd, level, name, val.as_ptr().cast(), val.len() as libc::socklen_t) };
    if r < 0 {
        return Err(Error::io(format!("setting {what} on a UDP socket"), std::io::Error::last_os_error()));
    }
    Ok(())
}

/// A UDP socket in `ns`, bound to `ifname` and `0.0.0.0:port`, with `SO_BROADCAST` and
/// `SO_REUSEADDR` (one socket per device on the same port, as a DHCP client on two interfaces of
/// one namespace needs).
pub fn bound_to_device(ns: &NetNs, ifname: &str, port: u16) -> Result<UdpSocket> {
    #[cfg(feature = "fuzzing")]
    crate::fuzzing::refuse(&format!("opening a UDP socket on {ifname}"))?;
    if ifname.is_empty() || ifname.len() >= libc::IFNAMSIZ || ifname.contains('\0') {
        return Err(Error::msg("opening a UDP socket", format!("invalid interface name {ifname:?}")));
    }
    ns.run(|| {
        // SAFETY: plain socket(2); the descriptor is owned by the UdpSocket right after.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(Error::io("creating a UDP socket", std::io::Error::last_os_error()));
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        let sock = unsafe { UdpSocket::from_raw_fd(fd) };
        let one = 1i32.to_ne_bytes();
        setopt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, &one, "SO_REUSEADDR")?;
        setopt(fd, libc::SOL_SOCKET, libc::SO_BROADCAST, &one, "SO_BROADCAST")?;
        setopt(fd, libc::SOL_SOCKET, libc::SO_BINDTODEVICE, ifname.as_bytes(), "SO_BINDTODEVICE")?;
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr { s_addr: 0 },
            sin_zero: [0; 8],
        };
        // SAFETY: `addr` is a valid sockaddr_in of the size passed.
        let r = unsafe {
            libc::bind(fd, (&addr as *const libc::sockaddr_in).cast(), std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t)
        };
        if r < 0 {
            return Err(Error::io(
                format!("binding a UDP socket to {} on {ifname}", SocketAddrV4::new(0.into(), port)),
                std::io::Error::last_os_error(),
            ));
        }
        Ok(sock)
    })?
}
