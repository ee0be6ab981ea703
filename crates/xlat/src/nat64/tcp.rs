//! RFC 6146 §3.5.2.2: the TCP session state machine of a NAT64.
//!
//! The NAT64 follows only what it needs of the connection: SYNs from each
//! side, FINs from each side, and RSTs, so that a session lives for
//! TCP_TRANS while it opens or closes and for TCP_EST while it is
//! established.
//!
//! When an ESTABLISHED session reaches TCP_EST, the NAT64 probes the IPv6
//! endpoint (see [`probes_on_expiry`] and `State::take_probes`) and moves
//! the session to TRANS: a live endpoint answers, its answer is a packet of
//! the session and brings it back to ESTABLISHED; silence lets TRANS run
//! out and the session goes.
//!
//! A half-closed session (V4 FIN RCV, V6 FIN RCV) idle for TCP_EST moves to
//! TRANS too, without a probe (the RFC asks for the probe in ESTABLISHED
//! only): any packet within TCP_TRANS keeps it, silence deletes it.
//!
//! Deliberate departures, documented in `docs/nat64.md`:
//! - An RST in a half-closed state moves to TRANS, as in ESTABLISHED.
//! - A V4 SYN that finds no BIB entry is not stored for 6 s (simultaneous
//!   open); it is dropped and counted.

use std::fmt;

/// The TCP flags the state machine looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpFlags {
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
}

impl TcpFlags {
    pub const NONE: Self = Self {
        syn: false,
        fin: false,
        rst: false,
    };
    pub const SYN: Self = Self {
        syn: true,
        fin: false,
        rst: false,
    };
    pub const FIN: Self = Self {
        syn: false,
        fin: true,
        rst: false,
    };
    pub const RST: Self = Self {
        syn: false,
        fin: false,
        rst: true,
    };

    /// From the flags octet of a TCP header (byte 13).
    pub fn from_octet(octet: u8) -> Self {
        Self {
            fin: octet & 0x01 != 0,
            syn: octet & 0x02 != 0,
            rst: octet & 0x04 != 0,
        }
    }
}

/// RFC 6146 §3.5.2.2 states (CLOSED is the absence of a session).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum TcpState {
    V4Init = 1,
    V6Init = 2,
    Established = 3,
    V4FinRcv = 4,
    V6FinRcv = 5,
    V4FinV6FinRcv = 6,
    Trans = 7,
}

impl TcpState {
    pub(crate) fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::V4Init,
            2 => Self::V6Init,
            3 => Self::Established,
            4 => Self::V4FinRcv,
            5 => Self::V6FinRcv,
            6 => Self::V4FinV6FinRcv,
            7 => Self::Trans,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::V4Init => "V4_INIT",
            Self::V6Init => "V6_INIT",
            Self::Established => "ESTABLISHED",
            Self::V4FinRcv => "V4_FIN_RCV",
            Self::V6FinRcv => "V6_FIN_RCV",
            Self::V4FinV6FinRcv => "V4_FIN_V6_FIN_RCV",
            Self::Trans => "TRANS",
        }
    }
}

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which side a packet came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// From the IPv6 network (6→4).
    V6,
    /// From the IPv4 network (4→6).
    V4,
}

/// Which lifetime a session has after a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpTimer {
    /// TCP_EST (2 h 4 min by default).
    Est,
    /// TCP_TRANS (4 min by default).
    Trans,
    /// TCP_INCOMING_SYN (6 s by default).
    IncomingSyn,
    /// Keep the timer the session has, without refreshing it.
    Keep,
}

/// The state and timer after the first packet of a connection (the CLOSED
/// state), or `None` when that packet does not open a session.
///
/// RFC 6146 §3.5.2.2, CLOSED: a V6 SYN moves to V6 INIT with TCP_TRANS; a V4
/// SYN moves to V4 INIT with TCP_INCOMING_SYN; other packets create nothing.
pub fn open(side: Side, flags: TcpFlags) -> Option<(TcpState, TcpTimer)> {
    if !flags.syn || flags.rst {
        return None;
    }
    Some(match side {
        Side::V6 => (TcpState::V6Init, TcpTimer::Trans),
        Side::V4 => (TcpState::V4Init, TcpTimer::IncomingSyn),
    })
}

/// RFC 6146 §3.5.2.2: the next state and timer for a packet of an existing
/// session. Every packet of a session is translated, whatever the state.
pub fn next(state: TcpState, side: Side, flags: TcpFlags) -> (TcpState, TcpTimer) {
    use Side::{V4, V6};
    use TcpState::*;
    use TcpTimer::{Est, Keep, Trans as TransT};
    match (state, side) {
        // V4 INIT: a V6 SYN completes the opening; a retransmitted V4 SYN
        // keeps waiting.
        (V4Init, V6) if flags.syn => (Established, Est),
        (V4Init, _) => (V4Init, Keep),
        // V6 INIT: a V4 SYN completes it; a V6 SYN restarts TCP_TRANS.
        (V6Init, V4) if flags.syn => (Established, Est),
        (V6Init, V6) if flags.syn => (V6Init, TransT),
        (V6Init, _) => (V6Init, Keep),
        // ESTABLISHED: RST → TRANS; FIN → half closed; anything else
        // refreshes TCP_EST.
        (Established, _) if flags.rst => (Trans, TransT),
        (Established, V4) if flags.fin => (V4FinRcv, Est),
        (Established, V6) if flags.fin => (V6FinRcv, Est),
        (Established, _) => (Established, Est),
        // Half closed: the other FIN closes it (TCP_TRANS), other packets
        // refresh TCP_EST.
        (V4FinRcv, V6) if flags.fin => (V4FinV6FinRcv, TransT),
        (V6FinRcv, V4) if flags.fin => (V4FinV6FinRcv, TransT),
        (V4FinRcv | V6FinRcv, _) if flags.rst => (Trans, TransT),
        (V4FinRcv | V6FinRcv, _) => (state, Est),
        // Both FINs seen: the session dies when TCP_TRANS ends.
        (V4FinV6FinRcv, _) => (V4FinV6FinRcv, Keep),
        // TRANS: a packet other than RST brings the session back.
        (Trans, _) if flags.rst => (Trans, Keep),
        (Trans, _) => (Established, Est),
    }
}

/// What happens when a session's timer runs out: `Some` to keep it in a new
/// state and timer, `None` to delete it.
pub fn expire(state: TcpState) -> Option<(TcpState, TcpTimer)> {
    match state {
        // ESTABLISHED: TRANS after a probe (RFC 6146 §3.5.2.2); half
        // closed: TRANS without one (see the module docs).
        TcpState::Established | TcpState::V4FinRcv | TcpState::V6FinRcv => {
            Some((TcpState::Trans, TcpTimer::Trans))
        }
        _ => None,
    }
}

/// RFC 6146 §3.5.2.2, ESTABLISHED: when the lifetime expires, the NAT64
/// SHOULD send a probe to at least one endpoint of the connection. Only
/// ESTABLISHED sessions are probed.
pub fn probes_on_expiry(state: TcpState) -> bool {
    state == TcpState::Established
}
