//! NAT64 data path cost per packet, without the kernel: UDP packets of
//! 10 000 flows translated 6→4 and their replies 4→6, through the state.
//!
//!     cargo bench -p sixgate-xlat --bench nat64_translate [-- PACKETS]

use std::net::Ipv6Addr;
use std::time::Instant;

use sixgate_xlat::checksum;
use sixgate_xlat::nat64::{
    Config, Filtering, Limits, Packets, Pool4, Pool4Entry, SplitMix64, State, Timeouts, Translator,
    Verdict,
};
use sixgate_xlat::SiitConfig;

const FLOWS: u16 = 10_000;

/// An IPv6 UDP packet with a valid checksum and a 64-byte payload.
fn udp6(src: Ipv6Addr, sport: u16, dst: Ipv6Addr) -> Vec<u8> {
    let payload = [0x5a_u8; 64];
    let ulen = 8 + payload.len();
    let mut p = vec![0u8; 40 + ulen];
    p[0] = 0x60;
    p[4..6].copy_from_slice(&u16::try_from(ulen).unwrap_or(0).to_be_bytes());
    p[6] = 17;
    p[7] = 64;
    p[8..24].copy_from_slice(&src.octets());
    p[24..40].copy_from_slice(&dst.octets());
    p[40..42].copy_from_slice(&sport.to_be_bytes());
    p[42..44].copy_from_slice(&5001u16.to_be_bytes());
    p[44..46].copy_from_slice(&u16::try_from(ulen).unwrap_or(0).to_be_bytes());
    p[48..].copy_from_slice(&payload);
    let sum = checksum::pseudo_v6(src, dst, 17, u32::try_from(ulen).unwrap_or(0));
    let c = !checksum::fold(checksum::add(sum, &p[40..]));
    p[46..48].copy_from_slice(&c.to_be_bytes());
    p
}

fn main() {
    let n: u32 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let entries: Vec<Pool4Entry> = ["192.0.2.1 1024-65535"]
        .iter()
        .map(|e| e.parse().expect("pool4"))
        .collect();
    let config = Config {
        pool4: Pool4::new(&entries).expect("pool4"),
        timeouts: Timeouts::default(),
        limits: Limits {
            max_sessions_per_source: u32::from(FLOWS) + 1,
            ..Limits::default()
        },
        filtering: Filtering::EndpointIndependent,
        static_bib: Vec::new(),
    };
    let mut state = State::new(config, SplitMix64::new(1)).expect("state");
    let prefix = "64:ff9b:1::/96".parse().expect("prefix");
    let x = Translator::new(prefix, SiitConfig::default());
    let client: Ipv6Addr = "2001:db8:6::2".parse().expect("addr");
    let server: Ipv6Addr = "64:ff9b:1::c633:6402".parse().expect("addr");
    let mut out = Packets::new();

    // One packet per flow both ways, kept as templates.
    let mut outbound: Vec<Vec<u8>> = Vec::new();
    let mut inbound: Vec<Vec<u8>> = Vec::new();
    for f in 0..FLOWS {
        let p = udp6(client, 20000 + f, server);
        let mut q = p.clone();
        assert_eq!(
            x.translate(&mut state, 0, &mut q, &mut out),
            Verdict::SixToFour
        );
        let mut v4 = out.get(0).expect("one packet").to_vec();
        // The reply: swap addresses and ports (checksums stay valid: the
        // sums are symmetric).
        let (src, dst) = (v4[12..16].to_vec(), v4[16..20].to_vec());
        v4[12..16].copy_from_slice(&dst);
        v4[16..20].copy_from_slice(&src);
        let (sp, dp) = (v4[20..22].to_vec(), v4[22..24].to_vec());
        v4[20..22].copy_from_slice(&dp);
        v4[22..24].copy_from_slice(&sp);
        outbound.push(p);
        inbound.push(v4);
    }

    let mut buf = vec![0u8; 2048];
    for (label, set) in [("6->4", &outbound), ("4->6", &inbound)] {
        let start = Instant::now();
        let mut ok = 0u32;
        for i in 0..n {
            let p = &set[(i % u32::from(FLOWS)) as usize];
            let b = &mut buf[..p.len()];
            b.copy_from_slice(p);
            let v = x.translate(&mut state, 1000, b, &mut out);
            if matches!(v, Verdict::SixToFour | Verdict::FourToSix) {
                ok += 1;
            }
        }
        let took = start.elapsed();
        println!(
            "{label}: {n} packets ({ok} translated) over {FLOWS} flows in {:.0} ms: {:.0} ns/packet, {:.2} Mpps on one core",
            took.as_secs_f64() * 1e3,
            took.as_nanos() as f64 / f64::from(n),
            f64::from(n) / took.as_secs_f64() / 1e6
        );
    }
}
