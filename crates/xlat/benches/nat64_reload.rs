//! What a reload (SIGHUP) of pool4 costs on a large NAT64 table: N UDP
//! sessions (1 million by default, each with its own BIB entry) over 16
//! pool4 addresses, then pool4 gains an address, loses half of its
//! addresses, and filtering switches to address-dependent. Reports how long
//! each step holds the state (that is, the shard's lock in the driver), and
//! the purge rounds that delete the removed addresses' sessions.
//!
//!     cargo bench -p sixgate-xlat --bench nat64_reload [-- SESSIONS]

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use sixgate_xlat::nat64::{
    Config, Filtering, Limits, Pool4, Pool4Entry, Proto, SplitMix64, State, Taddr4, Taddr6,
    TcpFlags, Timeouts,
};

/// Session slots looked at per purge round (the driver's `PURGE_ROUND`).
const ROUND: usize = 4096;

fn config(entries: &[&str], n: u32) -> Config {
    let entries: Vec<Pool4Entry> = entries
        .iter()
        .map(|e| e.parse().expect("pool4 entry"))
        .collect();
    Config {
        pool4: Pool4::new(&entries).expect("pool4"),
        timeouts: Timeouts::default(),
        limits: Limits {
            max_sessions: n,
            max_sessions_per_source: 1000,
            ..Limits::default()
        },
        filtering: Filtering::EndpointIndependent,
        static_bib: Vec::new(),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let n: u32 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let old = config(
        &[
            "192.0.2.0/28 udp 1024-65535",
            "192.0.2.0 tcp",
            "192.0.2.0 icmp",
        ],
        n,
    );
    let mut state = State::new(old.clone(), SplitMix64::new(0x5eed)).expect("state");
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
    for i in 0..n {
        state
            .outbound(0, Proto::Udp, host(i), remote(i), TcpFlags::NONE)
            .expect("session");
    }
    println!("sessions:                     {n}");

    let added = config(
        &[
            "192.0.2.0/28 udp 1024-65535",
            "192.0.2.16 udp 1024-65535",
            "192.0.2.0 tcp",
            "192.0.2.0 icmp",
        ],
        n,
    );
    let start = Instant::now();
    let done = state.reconfigure(&[], &added).expect("add");
    println!(
        "add one address:              {:.3} ms ({} BIB entries deleted)",
        ms(start.elapsed()),
        done.bib_doomed
    );

    let halved = config(
        &[
            "192.0.2.0/29 udp 1024-65535",
            "192.0.2.0 tcp",
            "192.0.2.0 icmp",
        ],
        n,
    );
    let start = Instant::now();
    let done = state.reconfigure(&[], &halved).expect("remove");
    let remove = start.elapsed();
    println!(
        "remove 9 of 17 addresses:     {:.3} ms (sweep needed: {})",
        ms(remove),
        done.pool4_sweep
    );
    let (mut purged, mut times) = (0u64, Vec::new());
    let start = Instant::now();
    loop {
        let t = Instant::now();
        let (k, more) = state.purge_at_most(ROUND);
        times.push(t.elapsed());
        purged += k;
        if !more {
            break;
        }
    }
    let total = start.elapsed();
    times.sort_unstable();
    let at = |percent: usize| times[(times.len() - 1) * percent / 100];
    println!(
        "sweep + purge:                {purged} sessions in {} rounds of {ROUND} slots, {:.1} ms in all; \
         per round median {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        times.len(),
        ms(total),
        ms(at(50)),
        ms(at(99)),
        ms(at(100))
    );
    println!("sessions left:                {}", state.session_count());

    let mut adf = halved.clone();
    adf.filtering = Filtering::AddressDependent;
    let start = Instant::now();
    state.reconfigure(&[], &adf).expect("filtering");
    println!(
        "filtering -> address-dependent: {:.1} ms (index of {} sessions built)",
        ms(start.elapsed()),
        state.session_count()
    );
}
