//! sixgate-proxy: the 6->4 L4 proxy ("private link proxy").
//!
//! IPv6 (and IPv4) clients connect to a listener; a route is chosen by the
//! listener and, without terminating TLS, by the server name (SNI) and ALPN
//! list of the ClientHello; the bytes go to an IPv4 (or IPv6) backend,
//! optionally after a PROXY v2 header that carries the client's address.
//!
//! The protocol parts are sans-IO modules that never touch a socket or read
//! the clock, tested on byte vectors: [`tls`] (ClientHello peek), [`proxy_protocol`]
//! (PROXY v1/v2 decode, v2 encode), [`route`] (route choice), [`balance`]
//! (health and backend choice), [`limits`], [`prefix`] and [`config`]. The
//! tokio driver is [`driver`]; `unsafe` lives only in its `splice` module.
#![deny(unsafe_code)]

pub mod balance;
pub mod config;
pub mod driver;
pub mod limits;
pub mod prefix;
pub mod proxy_protocol;
pub mod route;
pub mod tls;

pub use config::Config;
