//! NAT64 state memory and speed: creates N UDP sessions (1 million by
//! default), each with its own BIB entry (the worst case for memory), then
//! reports bytes per session and the process RSS, and times creation,
//! lookups in both directions and expiry.
//!
//!     cargo bench -p sixgate-xlat --bench nat64_memory [-- SESSIONS]
//!
//! The bar (issue 3): 1 000 000 sessions within 256 MiB.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use sixgate_xlat::nat64::{
    Config, Filtering, Limits, Pool4, Pool4Entry, Proto, SplitMix64, State, Taddr4, Taddr6,
    TcpFlags, Timeouts, ENTRY_BYTES,
};

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let n: u32 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    // 16 addresses x 64 512 ports = 1 032 192 UDP ports.
    let entries: Vec<Pool4Entry> = [
        "192.0.2.0/28 udp 1024-65535",
        "192.0.2.0 tcp",
        "192.0.2.0 icmp",
    ]
    .iter()
    .map(|e| e.parse().expect("pool4 entry"))
    .collect();
    let config = Config {
        pool4: Pool4::new(&entries).expect("pool4"),
        timeouts: Timeouts::default(),
        limits: Limits {
            max_sessions: n,
            max_sessions_per_source: 1000,
            ..Limits::default()
        },
        filtering: Filtering::EndpointIndependent,
        static_bib: Vec::new(),
    };
    let rss_before = rss_kib();
    let mut state = State::new(config, SplitMix64::new(0x5eed)).expect("state");
    state.reserve(Proto::Udp, usize::try_from(n).unwrap_or(0));

    let host = |i: u32| {
        let h = i / 1000;
        Taddr6::new(
            Ipv6Addr::new(
                0x2001,
                0xdb8,
                0,
                0,
                0,
                0,
                (h >> 16) as u16,
                (h & 0xffff) as u16,
            ),
            1024 + (i % 1000) as u16,
        )
    };
    let remote = |i: u32| Taddr4::new(Ipv4Addr::new(198, 51, 100, (i % 200) as u8), 53);

    let start = Instant::now();
    let mut mapped = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
    for i in 0..n {
        let m = state
            .outbound(0, Proto::Udp, host(i), remote(i), TcpFlags::NONE)
            .expect("session");
        mapped.push(m.v4);
    }
    let create = start.elapsed();
    let rss_after = rss_kib();

    let start = Instant::now();
    for i in 0..n {
        state
            .outbound(1000, Proto::Udp, host(i), remote(i), TcpFlags::NONE)
            .expect("lookup 6->4");
    }
    let out_lookup = start.elapsed();
    let start = Instant::now();
    for (i, v4) in mapped.iter().enumerate() {
        let i = u32::try_from(i).unwrap_or(0);
        state
            .inbound(2000, Proto::Udp, remote(i), *v4, TcpFlags::NONE)
            .expect("lookup 4->6");
    }
    let in_lookup = start.elapsed();
    let mapped_bytes = mapped.capacity() * std::mem::size_of::<Taddr4>();
    drop(mapped);

    let heap = state.heap_bytes();
    let per = |d: Duration| d.as_nanos() as f64 / f64::from(n);
    println!("sessions:                    {n}");
    println!("session + BIB entry structs: {ENTRY_BYTES} bytes");
    println!(
        "table heap (by capacity):    {:.1} MiB = {:.1} bytes/session",
        heap as f64 / 1048576.0,
        heap as f64 / f64::from(n)
    );
    println!(
        "process RSS:                 {:.1} MiB before, {:.1} MiB after ({:.1} MiB of it the benchmark's own list of mappings)",
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0,
        mapped_bytes as f64 / 1048576.0
    );
    println!("create:                      {:.0} ns/session", per(create));
    println!(
        "lookup 6->4 (refresh):       {:.0} ns/packet",
        per(out_lookup)
    );
    println!(
        "lookup 4->6 (refresh):       {:.0} ns/packet",
        per(in_lookup)
    );

    let start = Instant::now();
    let expired = state.handle_timeout(2000 + 5 * 60 * 1000);
    let expire = start.elapsed();
    println!(
        "expire all:                  {expired} sessions in {:.0} ms ({:.0} ns/session)",
        expire.as_secs_f64() * 1000.0,
        per(expire)
    );
    let bar = 256.0 * 1024.0;
    println!(
        "bar: 1M sessions within 256 MiB RSS -> {} ({:.1} MiB)",
        if (rss_after as f64) <= bar {
            "met"
        } else {
            "NOT met"
        },
        rss_after as f64 / 1024.0
    );
}
