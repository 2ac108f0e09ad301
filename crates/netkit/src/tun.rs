//! TUN/TAP devices through `/dev/net/tun` and its ioctls (`TUNSETIFF`, `TUNSETOWNER`,
//! `TUNSETGROUP`, `TUNSETPERSIST`): the kernel has no netlink request that creates them. Run
//! inside the namespace the device belongs in ([`crate::NetNs::run`]).

use crate::error::{Error, Result};
use std::fs::OpenOptions;
use std::os::fd::AsRawFd;

pub const TUN_DEVICE: &str = "/dev/net/tun";

// <linux/if_tun.h>: _IOW('T', n, int)
const TUNSETIFF: u64 = 0x4004_54ca;
const TUNSETPERSIST: u64 = 0x4004_54cb;
const TUNSETOWNER: u64 = 0x4004_54cc;
const TUNSETGROUP: u64 = 0x4004_54ce;
pub const IFF_TAP: u16 = 0x0002;
pub const IFF_NO_PI: u16 = 0x1000;
pub const IFF_VNET_HDR: u16 = 0x4000;
pub const IFF_MULTI_QUEUE: u16 = 0x0100;

/// A persistent TAP device to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tap {
    pub name: String,
    pub multi_queue: bool,
    pub owner: Option<u32>,
    pub group: Option<u32>,
}

impl Tap {
    /// The `TUNSETIFF` flags: TAP, no packet information, virtio-net header (as the reference's
    /// netlink path), plus multi-queue when asked.
    pub fn flags(&self) -> u16 {
        IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | if self.multi_queue { IFF_MULTI_QUEUE } else { 0 }
    }
}

/// `struct ifreq` with the name and `ifr_flags` set (40 bytes on 64-bit Linux).
pub fn ifreq(name: &str, flags: u16) -> Result<[u8; 40]> {
    if name.is_empty() || name.len() >= 16 || name.contains('\0') {
        return Err(Error::msg(format!("tap device name {name:?}"), "must be 1 to 15 bytes"));
    }
    let mut req = [0u8; 40];
    req[..name.len()].copy_from_slice(name.as_bytes());
    req[16..18].copy_from_slice(&flags.to_ne_bytes());
    Ok(req)
}

fn open_tun(op: &str) -> Result<std::fs::File> {
    OpenOptions::new().read(true).write(true).open(TUN_DEVICE).map_err(|e| {
        let what = if e.kind() == std::io::ErrorKind::NotFound {
            format!("{TUN_DEVICE} is missing: this kernel or container has no TUN/TAP support (CONFIG_TUN)")
        } else {
            format!("opening {TUN_DEVICE}")
        };
        Error::io(format!("{op}: {what}"), e)
    })
}

fn ioctl(fd: i32, req: u64, arg: libc::c_ulong, op: &dyn Fn() -> String) -> Result<()> {
    // SAFETY: the tun ioctls used here take an integer argument, or a pointer to a 40-byte
    // ifreq that the caller keeps alive across the call.
    let r = unsafe { libc::ioctl(fd, req as _, arg) };
    if r < 0 {
        return Err(Error::os(op(), nix::errno::Errno::last()));
    }
    Ok(())
}

/// Creates the persistent device in the calling thread's namespace (EBUSY if the name exists).
/// A failure after `TUNSETIFF` leaves nothing: the device is not persistent yet.
pub fn create_tap(tap: &Tap) -> Result<()> {
    let op = || format!("creating tap device {}", tap.name);
    let f = open_tun(&op())?;
    let fd = f.as_raw_fd();
    let mut req = ifreq(&tap.name, tap.flags())?;
    ioctl(fd, TUNSETIFF, req.as_mut_ptr() as libc::c_ulong, &op)?;
    if let Some(uid) = tap.owner {
        ioctl(fd, TUNSETOWNER, uid as libc::c_ulong, &|| format!("setting owner {uid} of tap {}", tap.name))?;
    }
    if let Some(gid) = tap.group {
        ioctl(fd, TUNSETGROUP, gid as libc::c_ulong, &|| format!("setting group {gid} of tap {}", tap.name))?;
    }
    ioctl(fd, TUNSETPERSIST, 1, &|| format!("making tap {} persistent", tap.name))?;
    Ok(())
}
