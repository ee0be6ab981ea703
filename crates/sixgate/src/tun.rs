//! A Linux TUN device: open by name, set its MTU, bring it up, read and
//! write whole IP packets.
//!
//! One non-blocking file descriptor per queue (one queue unless asked for
//! more with [`Tun::open_queues`]), no packet information header
//! (`IFF_NO_PI`): each `read` returns exactly one IPv4 or IPv6 packet and each
//! `write` injects one into the kernel's stack. The device lives as long as
//! its [`Tun`] values (it is not made persistent), so the kernel deletes it
//! and every route through it when the process ends, however it ends.
//!
//! # Threading model
//!
//! The packet loop of a TUN part runs on a dedicated OS thread per queue,
//! not on the tokio runtime: translation is synchronous CPU work, the loop
//! drains the device until `EAGAIN` and then sleeps in `poll(2)` on the
//! device and on a [`Waker`] (an `eventfd`), which the async side triggers to
//! stop it. That keeps the hot path free of task scheduling and wake-up
//! bookkeeping, gives each queue a core of its own (one `Tun` per queue,
//! one thread each), and still stops promptly on shutdown: the `eventfd`
//! stays readable once written, so one wake stops every queue's thread. `recv`/`send` take `&self`, so NAT64 can share one device
//! between a reading thread and a timer task if it needs to.
//!
//! All `unsafe` of the binary lives in this module, each block with its
//! `SAFETY` argument.

use std::ffi::c_short;
use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt as _;
use std::sync::atomic::{AtomicBool, Ordering};

/// Largest interface name the kernel takes, without the trailing NUL.
pub const MAX_NAME_LEN: usize = libc::IFNAMSIZ - 1;

/// The largest packet a TUN device hands out (the IPv4/IPv6 length fields
/// top out at 64 KiB); a receive buffer of this size never truncates.
pub const MAX_PACKET: usize = 65_536;

/// The MTUs a translator's TUN device may have: IPv6 needs at least 1280
/// (RFC 8200 §5; the kernel turns IPv6 off on a smaller device), and an IP
/// packet is at most 65535 bytes.
pub const MTU_RANGE: std::ops::RangeInclusive<u32> = 1280..=65_535;

/// Refuses an MTU outside [`MTU_RANGE`], naming the config key.
pub fn check_mtu(key: &str, mtu: u32) -> Result<(), crate::config::Invalid> {
    if MTU_RANGE.contains(&mtu) {
        return Ok(());
    }
    Err(crate::config::Invalid::new(
        key,
        format!(
            "{mtu} is outside {}..={} (IPv6 needs at least 1280, RFC 8200 §5)",
            MTU_RANGE.start(),
            MTU_RANGE.end()
        ),
    ))
}

/// A TUN device could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TunError {
    #[error("invalid interface name {name:?}: {reason}")]
    Name { name: String, reason: &'static str },
    #[error(
        "cannot open /dev/net/tun: {0} (is the tun module there, and do we have CAP_NET_ADMIN?)"
    )]
    Open(io::Error),
    #[error("cannot create tun device {name}: {source}")]
    Create { name: String, source: io::Error },
    #[error("tun {name}: cannot {what}: {source}")]
    Configure {
        name: String,
        what: &'static str,
        source: io::Error,
    },
}

/// Checks an interface name: 1 to 15 bytes, no NUL, `/`, whitespace or `:`
/// (the characters the kernel's `dev_valid_name` refuses, plus `:` which
/// would read as an alias), and not `.` or `..`.
pub fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    if name.len() > MAX_NAME_LEN {
        return Err("it is longer than 15 bytes");
    }
    if name == "." || name == ".." {
        return Err("it cannot be . or ..");
    }
    if name
        .bytes()
        .any(|b| b == 0 || b == b'/' || b == b':' || b.is_ascii_whitespace())
    {
        return Err("it contains NUL, '/', ':' or whitespace");
    }
    Ok(())
}

/// An open TUN device (one queue).
#[derive(Debug)]
pub struct Tun {
    file: File,
    name: String,
}

impl Tun {
    /// Creates (or attaches to) the TUN device `name`, one queue, in
    /// non-blocking mode. A name with `%d` lets the kernel pick the number;
    /// [`Tun::name`] tells which it picked.
    #[allow(dead_code)] // the one-queue entry point, for parts that need no more (NAT64)
    pub fn open(name: &str) -> Result<Self, TunError> {
        Self::open_queue(name, libc::IFF_TUN | libc::IFF_NO_PI)
    }

    /// Creates the TUN device `name` with `queues` queues (`IFF_MULTI_QUEUE`
    /// when more than one): one file descriptor each, all of the same
    /// device. The kernel spreads packets over the queues by flow hash, so
    /// one thread per queue translates flows in parallel.
    ///
    /// With `offload`, every packet read or written starts with a
    /// [`VnetHdr`] (`IFF_VNET_HDR`), and the device takes and hands out TCP
    /// and UDP segmentation offload super-packets and partial checksums
    /// (`TUNSETOFFLOAD`: `TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 |
    /// TUN_F_TSO_ECN`, plus `TUN_F_USO4 | TUN_F_USO6` where the kernel has
    /// them, 6.2 on).
    pub fn open_queues(name: &str, queues: usize, offload: bool) -> Result<Vec<Self>, TunError> {
        let mut flags = libc::IFF_TUN | libc::IFF_NO_PI;
        if queues > 1 {
            flags |= libc::IFF_MULTI_QUEUE;
        }
        if offload {
            flags |= libc::IFF_VNET_HDR;
        }
        let first = Self::open_queue(name, flags)?;
        if offload {
            first.set_offload()?;
        }
        // With `%d` in the name, the other queues attach to the device the
        // kernel created for the first one.
        let actual = first.name.clone();
        let mut all = Vec::with_capacity(queues.max(1));
        all.push(first);
        for _ in 1..queues {
            all.push(Self::open_queue(&actual, flags)?);
        }
        Ok(all)
    }

    fn set_offload(&self) -> Result<(), TunError> {
        let tcp = libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6 | libc::TUN_F_TSO_ECN;
        let udp = libc::TUN_F_USO4 | libc::TUN_F_USO6;
        // Kernels before 6.2 refuse the UDP bits (EINVAL): TCP alone then.
        if self.offload_features(tcp | udp).is_ok() {
            return Ok(());
        }
        self.offload_features(tcp)
            .map_err(|err| self.error("enable offloads", err))
    }

    fn offload_features(&self, features: libc::c_uint) -> io::Result<()> {
        // SAFETY: the fd is an open TUN device; TUNSETOFFLOAD takes its
        // argument by value (an unsigned int of feature bits), no pointer.
        let rc = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                libc::TUNSETOFFLOAD,
                libc::c_ulong::from(features),
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn open_queue(name: &str, flags: libc::c_int) -> Result<Self, TunError> {
        check_name(name).map_err(|reason| TunError::Name {
            name: name.to_owned(),
            reason,
        })?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")
            .map_err(TunError::Open)?;
        let mut req = ifreq(name);
        // The flags field is a C short; the TUN flags are all below 0x8000.
        req.ifr_ifru.ifru_flags = c_short::try_from(flags).map_err(|_| TunError::Create {
            name: name.to_owned(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "flags do not fit a short"),
        })?;
        // SAFETY: the fd is an open /dev/net/tun; TUNSETIFF reads and writes
        // one `struct ifreq`, and `req` is a valid, exclusively borrowed ifreq
        // that outlives the call.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &raw mut req) };
        if rc < 0 {
            return Err(TunError::Create {
                name: name.to_owned(),
                source: io::Error::last_os_error(),
            });
        }
        Ok(Self {
            file,
            name: name_of(&req),
        })
    }

    /// The device's name as the kernel has it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sets the device's MTU.
    pub fn set_mtu(&self, mtu: u32) -> Result<(), TunError> {
        let mut req = ifreq(&self.name);
        req.ifr_ifru.ifru_mtu = i32::try_from(mtu).map_err(|_| {
            self.error(
                "set the mtu",
                io::Error::new(io::ErrorKind::InvalidInput, "mtu out of range"),
            )
        })?;
        self.interface_ioctl(libc::SIOCSIFMTU, &mut req, "set the mtu")
    }

    /// Brings the device up (`ip link set NAME up`).
    pub fn set_up(&self) -> Result<(), TunError> {
        let mut req = ifreq(&self.name);
        self.interface_ioctl(libc::SIOCGIFFLAGS, &mut req, "read its flags")?;
        // SAFETY: SIOCGIFFLAGS has just filled the `ifru_flags` member, so
        // reading that member of the union reads initialised memory.
        let flags = unsafe { req.ifr_ifru.ifru_flags };
        let up = c_short::try_from(libc::IFF_UP).expect("IFF_UP is 1");
        req.ifr_ifru.ifru_flags = flags | up;
        self.interface_ioctl(libc::SIOCSIFFLAGS, &mut req, "bring it up")
    }

    /// Reads one packet into `buf`. `WouldBlock` when none is waiting. A
    /// packet longer than `buf` is truncated by the kernel: use a buffer of
    /// [`MAX_PACKET`] bytes.
    #[inline]
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.file).read(buf)
    }

    /// Writes one packet. The kernel takes it whole or not at all.
    #[inline]
    pub fn send(&self, packet: &[u8]) -> io::Result<()> {
        let n = (&self.file).write(packet)?;
        if n == packet.len() {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "short write to tun",
            ))
        }
    }

    /// Writes one packet given in pieces (`writev`), for a [`VnetHdr`] in
    /// front of a packet without copying them together.
    #[inline]
    pub fn send_parts(&self, parts: &[io::IoSlice<'_>]) -> io::Result<()> {
        let want: usize = parts.iter().map(|p| p.len()).sum();
        let n = (&self.file).write_vectored(parts)?;
        if n == want {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "short write to tun",
            ))
        }
    }

    /// Sleeps until a packet is waiting or `waker` is woken.
    pub fn wait(&self, waker: &Waker) -> io::Result<Ready> {
        let mut fds = [
            libc::pollfd {
                fd: self.file.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: waker.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        loop {
            if waker.is_woken() {
                return Ok(Ready::Woken);
            }
            // SAFETY: `fds` is a valid array of 2 pollfd structs that lives
            // across the call; poll writes only their `revents` fields.
            let rc = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
            if rc < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err);
            }
            if fds[1].revents != 0 || waker.is_woken() {
                return Ok(Ready::Woken);
            }
            let revents = fds[0].revents;
            if revents & libc::POLLIN != 0 {
                return Ok(Ready::Packets);
            }
            if revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
                return Err(io::Error::other(format!(
                    "tun {}: poll reported error/hang-up (revents {revents:#x})",
                    self.name
                )));
            }
        }
    }

    fn interface_ioctl(
        &self,
        request: libc::c_ulong,
        req: &mut libc::ifreq,
        what: &'static str,
    ) -> Result<(), TunError> {
        let sock = control_socket().map_err(|err| self.error(what, err))?;
        // SAFETY: `sock` is an open socket; the SIOC[GS]IF* requests used
        // here read and write one `struct ifreq`, and `req` is a valid,
        // exclusively borrowed ifreq that outlives the call.
        let rc = unsafe {
            libc::ioctl(
                sock.as_raw_fd(),
                ioctl_request(request),
                std::ptr::from_mut(req),
            )
        };
        if rc < 0 {
            return Err(self.error(what, io::Error::last_os_error()));
        }
        Ok(())
    }

    fn error(&self, what: &'static str, source: io::Error) -> TunError {
        TunError::Configure {
            name: self.name.clone(),
            what,
            source,
        }
    }
}

impl std::os::fd::AsRawFd for Tun {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

/// The `struct virtio_net_hdr` that precedes every packet on a device
/// opened with offloads (10 bytes, native byte order, which is what the
/// kernel uses for TUN unless told otherwise).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VnetHdr {
    pub flags: u8,
    pub gso_type: u8,
    pub hdr_len: u16,
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
}

impl VnetHdr {
    pub const LEN: usize = 10;
    /// `flags`: the checksum from `csum_start` on is still to be computed;
    /// the field at `csum_start + csum_offset` holds the pseudo-header sum.
    pub const NEEDS_CSUM: u8 = 1;
    pub const GSO_NONE: u8 = 0;
    pub const GSO_TCPV4: u8 = 1;
    pub const GSO_TCPV6: u8 = 4;
    /// UDP segmentation: `gso_size` is the payload of each datagram.
    pub const GSO_UDP_L4: u8 = 5;
    pub const GSO_ECN: u8 = 0x80;

    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let b = bytes.get(..Self::LEN)?;
        let u16_at = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        Some(Self {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u16_at(2),
            gso_size: u16_at(4),
            csum_start: u16_at(6),
            csum_offset: u16_at(8),
        })
    }

    pub fn to_bytes(self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
        b
    }
}

/// What [`Tun::wait`] woke up for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    /// At least one packet can be read.
    Packets,
    /// [`Waker::wake`] was called: stop.
    Woken,
}

/// Wakes a thread sleeping in [`Tun::wait`], and keeps saying "stop" after.
#[derive(Debug)]
pub struct Waker {
    fd: OwnedFd,
    woken: AtomicBool,
}

impl Waker {
    pub fn new() -> io::Result<Self> {
        // SAFETY: eventfd takes no pointers; it returns a new fd or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            // SAFETY: `fd` was just returned by eventfd, is open, and is
            // owned by nothing else.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            woken: AtomicBool::new(false),
        })
    }

    /// Tells the packet thread to stop (idempotent).
    pub fn wake(&self) {
        self.woken.store(true, Ordering::Release);
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live local buffer to our eventfd.
        // A failure (the counter is saturated) still leaves it readable,
        // which is all `wait` needs.
        let _ = unsafe { libc::write(self.fd.as_raw_fd(), one.as_ptr().cast(), one.len()) };
    }

    /// Whether [`Waker::wake`] has been called: a cheap check the
    /// packet loop makes between packets, so a busy device still stops.
    #[inline]
    pub fn is_woken(&self) -> bool {
        self.woken.load(Ordering::Acquire)
    }
}

/// The libc crate types the `SIOC*` numbers as `c_ulong`, while `ioctl`
/// takes a `c_ulong` request on glibc and a `c_int` on musl (the static
/// build of the container image). The numbers are 16 bits wide.
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::unnecessary_cast
)]
fn ioctl_request(request: libc::c_ulong) -> libc::Ioctl {
    request as libc::Ioctl
}

/// An `AF_INET` datagram socket, the handle the interface ioctls need.
fn control_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket takes no pointers; it returns a new fd or -1.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket, is open, and is owned by
    // nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A zeroed `ifreq` carrying `name` (checked by the caller: at most 15
/// bytes, no NUL), NUL-terminated.
fn ifreq(name: &str) -> libc::ifreq {
    // SAFETY: ifreq is a C struct of integers, byte arrays and a union of
    // those; all-zero bytes are a valid value of each.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes().take(MAX_NAME_LEN)) {
        // A byte of the name reinterpreted as C `char` (signed on x86).
        #[allow(clippy::cast_possible_wrap)]
        let c = src as libc::c_char;
        *dst = c;
    }
    req
}

/// The NUL-terminated name the kernel wrote back into an `ifreq`.
fn name_of(req: &libc::ifreq) -> String {
    let bytes: Vec<u8> = req
        .ifr_name
        .iter()
        .take_while(|&&c| c != 0)
        // A C `char` reinterpreted as the byte it holds.
        .map(|&c| {
            #[allow(clippy::cast_sign_loss)]
            let b = c as u8;
            b
        })
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_kernel_refuses_are_refused_here() {
        assert!(check_name("siit0").is_ok());
        assert!(check_name("sixgate%d").is_ok());
        assert!(check_name("abcdefghijklmno").is_ok());
        assert_eq!(check_name(""), Err("it is empty"));
        assert_eq!(
            check_name("abcdefghijklmnop"),
            Err("it is longer than 15 bytes")
        );
        assert!(check_name("a/b").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name("a:1").is_err());
        assert!(check_name("..").is_err());
    }

    /// Root only: moves the calling test thread into a network namespace of
    /// its own (unshare affects only this thread), so the device and its
    /// address never touch the host's network.
    fn private_netns() -> bool {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            assert!(
                std::env::var_os("SIXGATE_REQUIRE_ROOT_TESTS").is_none(),
                "the TUN tests need root (SIXGATE_REQUIRE_ROOT_TESTS is set)"
            );
            eprintln!("skipping: the TUN tests need root");
            return false;
        }
        // SAFETY: unshare takes no pointers; CLONE_NEWNET gives this thread
        // (and the processes it starts) a fresh network namespace.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "unshare: {}", io::Error::last_os_error());
        true
    }

    fn run(args: &[&str]) {
        let out = std::process::Command::new(args[0])
            .args(&args[1..])
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// IPv4 header checksum (RFC 1071) of `header`.
    fn ipv4_checksum(header: &[u8]) -> u16 {
        let mut sum: u32 = header
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
            .sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !u16::try_from(sum).unwrap_or(0)
    }

    #[test]
    fn packets_cross_the_device_both_ways_and_the_waker_stops_a_wait() {
        if !private_netns() {
            return;
        }
        let tun = Tun::open("sgtest%d").expect("open");
        assert!(tun.name().starts_with("sgtest"), "{}", tun.name());
        tun.set_mtu(1400).expect("mtu");
        tun.set_up().expect("up");
        run(&["ip", "link", "set", "lo", "up"]);
        run(&["ip", "addr", "add", "10.99.0.1/24", "dev", tun.name()]);
        let link = std::process::Command::new("ip")
            .args(["-o", "link", "show", tun.name()])
            .output()
            .expect("ip link show");
        let link = String::from_utf8_lossy(&link.stdout);
        assert!(link.contains("mtu 1400"), "{link}");
        assert!(link.contains(",UP"), "{link}");

        // Kernel -> device: a datagram to a host "behind" the device.
        let sock = std::net::UdpSocket::bind("10.99.0.1:0").expect("bind");
        let port = sock.local_addr().expect("addr").port();
        sock.send_to(b"to the tun", "10.99.0.2:4000").expect("send");
        let waker = Waker::new().expect("eventfd");
        let mut buf = vec![0u8; MAX_PACKET];
        let packet = loop {
            match tun.recv(&mut buf) {
                Ok(n) => {
                    let p = &buf[..n];
                    // Skip what else the kernel sends (IPv6 MLD and such).
                    if p[0] >> 4 == 4 && p[9] == 17 && p[16..20] == [10, 99, 0, 2] {
                        break p.to_vec();
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    assert_eq!(tun.wait(&waker).expect("wait"), Ready::Packets);
                }
                Err(err) => panic!("recv: {err}"),
            }
        };
        assert!(packet.ends_with(b"to the tun"));

        // Device -> kernel: the reply, addresses and ports swapped, UDP
        // checksum 0 (none, allowed over IPv4).
        let mut reply = packet.clone();
        reply[12..16].copy_from_slice(&[10, 99, 0, 2]);
        reply[16..20].copy_from_slice(&[10, 99, 0, 1]);
        reply[20..22].copy_from_slice(&4000u16.to_be_bytes());
        reply[22..24].copy_from_slice(&port.to_be_bytes());
        reply[26..28].copy_from_slice(&[0, 0]);
        reply[10..12].copy_from_slice(&[0, 0]);
        let checksum = ipv4_checksum(&reply[..20]);
        reply[10..12].copy_from_slice(&checksum.to_be_bytes());
        tun.send(&reply).expect("send to tun");
        sock.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        let mut got = [0u8; 64];
        let (n, from) = sock.recv_from(&mut got).expect("the reply");
        assert_eq!(&got[..n], b"to the tun");
        assert_eq!(from.to_string(), "10.99.0.2:4000");

        // A thread asleep on an idle device wakes up when told to stop.
        let tun = std::sync::Arc::new(tun);
        let waker = std::sync::Arc::new(waker);
        let sleeper = {
            let (tun, waker) = (tun.clone(), waker.clone());
            std::thread::spawn(move || {
                // Drain whatever is queued, then sleep.
                let mut buf = vec![0u8; MAX_PACKET];
                loop {
                    match tun.recv(&mut buf) {
                        Ok(_) => continue,
                        Err(_) => match tun.wait(&waker).expect("wait") {
                            Ready::Woken => return,
                            Ready::Packets => continue,
                        },
                    }
                }
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(100));
        waker.wake();
        sleeper.join().expect("the sleeper stopped");
        assert!(waker.is_woken());
    }

    #[test]
    fn queues_of_one_device_share_its_name() {
        if !private_netns() {
            return;
        }
        let queues = Tun::open_queues("sgmq%d", 3, true).expect("open 3 queues");
        assert_eq!(queues.len(), 3);
        assert!(queues.iter().all(|q| q.name() == queues[0].name()));
        let link = std::process::Command::new("ip")
            .args(["-d", "link", "show", queues[0].name()])
            .output()
            .expect("ip link show");
        let link = String::from_utf8_lossy(&link.stdout);
        assert!(link.contains("multi_queue"), "{link}");
        assert!(link.contains("vnet_hdr on"), "{link}");
    }

    #[test]
    fn vnet_header_round_trips() {
        let hdr = VnetHdr {
            flags: VnetHdr::NEEDS_CSUM,
            gso_type: VnetHdr::GSO_TCPV6 | VnetHdr::GSO_ECN,
            hdr_len: 72,
            gso_size: 1428,
            csum_start: 40,
            csum_offset: 16,
        };
        assert_eq!(VnetHdr::parse(&hdr.to_bytes()), Some(hdr));
        assert_eq!(VnetHdr::parse(&[0; 9]), None);
    }

    #[test]
    fn ifreq_name_round_trips() {
        let req = ifreq("siit0");
        assert_eq!(name_of(&req), "siit0");
        assert_eq!(req.ifr_name[5], 0);
    }
}
