//! DESIGN.md hot-path rule: no allocation per packet. A counting global
//! allocator (this test binary only) checks that, once the `Output` buffer
//! exists, translating packets of every kind allocates nothing.

mod oracle;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use oracle::*;
use sixgate_xlat::{Output, Verdict};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Set on the test's own thread only: the test harness allocates on its
    /// threads at any time, and those allocations are not ours.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator, which
// upholds the GlobalAlloc contract; the counter has no effect on memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: `ptr` came from `System` with this layout.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn translating_allocates_nothing_per_packet() {
    let siit = siit();
    let inner4 = udp4(H6_V4, H4, 63, true, &[1; 40]);
    let inner6 = udp6(H4_V6, H6, 63, &[1; 40]);
    let packets = [
        (udp4(H4, H6_V4, 64, true, &[3; 32]), Verdict::FourToSix),
        (udp4(H4, H6_V4, 64, false, &[3; 60000]), Verdict::FourToSix),
        (tcp4(H4, H6_V4, &[4; 1460]), Verdict::FourToSix),
        (
            icmp4_raw(H4, H6_V4, 3, 4, [0, 0, 5, 0xdc], &inner4),
            Verdict::FourToSix,
        ),
        (udp6(H6, H4_V6, 64, &[6; 32]), Verdict::SixToFour),
        (tcp6(H6, H4_V6, &[7; 1440]), Verdict::SixToFour),
        (
            icmp6_raw(H6, H4_V6, 2, 0, 1400u32.to_be_bytes(), &inner6),
            Verdict::SixToFour,
        ),
        (
            udp6(H6, "2001:db8:64::c000:220", 64, b"hairpin"),
            Verdict::Hairpin,
        ),
        (
            udp6(H6, H4_V6, 1, &[6; 32]),
            Verdict::IcmpError(sixgate_xlat::DropReason::HopLimitExpired),
        ),
    ];
    let mut out = Output::new();
    let mut verdicts = [None; 9];
    COUNTING.with(|c| c.set(true));
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..3 {
        for (slot, (p, _)) in verdicts.iter_mut().zip(&packets) {
            *slot = Some(siit.translate(p, &mut out));
        }
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    COUNTING.with(|c| c.set(false));
    for (got, (_, want)) in verdicts.iter().zip(&packets) {
        assert_eq!(*got, Some(*want));
    }
    assert_eq!(allocations, 0, "allocations while translating");
}
