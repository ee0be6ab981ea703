//! Choosing a route for a connection from its TLS server name and offered
//! ALPN protocols.
//!
//! Among the routes of a listener whose ALPN condition holds, an exact server
//! name beats a wildcard, a longer wildcard beats a shorter one, and a route
//! without names (the default route) comes last; at equal rank a route with an
//! ALPN condition beats one without, then the first in the config wins.
#![forbid(unsafe_code)]

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

/// A server name to match: `api.example.com`, or `*.example.com` for any name
/// that ends in `.example.com` (one label or more). Case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SniPattern {
    Exact(String),
    /// The suffix, with its leading dot: `.example.com`.
    Wildcard(String),
}

impl SniPattern {
    /// The rank of a match, or `None`. Exact names outrank every wildcard;
    /// longer wildcards outrank shorter ones.
    pub fn rank(&self, name: &str) -> Option<usize> {
        let name = name.strip_suffix('.').unwrap_or(name);
        match self {
            SniPattern::Exact(exact) => exact.eq_ignore_ascii_case(name).then_some(usize::MAX),
            SniPattern::Wildcard(suffix) => {
                let split = name.len().checked_sub(suffix.len())?;
                (split > 0
                    && name.is_char_boundary(split)
                    && name[split..].eq_ignore_ascii_case(suffix))
                .then_some(suffix.len())
            }
        }
    }
}

impl FromStr for SniPattern {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        let lower = lower.strip_suffix('.').unwrap_or(&lower);
        let (wild, name) = match lower.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, lower),
        };
        let valid = !name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if !valid {
            return Err("expected a host name such as api.example.com or *.example.com");
        }
        Ok(if wild {
            SniPattern::Wildcard(format!(".{name}"))
        } else {
            SniPattern::Exact(name.to_owned())
        })
    }
}

impl fmt::Display for SniPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SniPattern::Exact(name) => f.write_str(name),
            SniPattern::Wildcard(suffix) => write!(f, "*{suffix}"),
        }
    }
}

impl<'de> Deserialize<'de> for SniPattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What a route matches on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteMatch {
    /// Empty: the default route.
    pub sni: Vec<SniPattern>,
    /// Empty: any client.
    pub alpn: Vec<Vec<u8>>,
}

impl RouteMatch {
    /// Whether a connection needs its ClientHello read for this route.
    pub fn needs_hello(&self) -> bool {
        !self.sni.is_empty() || !self.alpn.is_empty()
    }
}

/// Picks the route for a connection: the index into `routes`, or `None`.
///
/// `offered` is the ALPN list from the ClientHello (empty when there is none
/// or the connection is not TLS).
pub fn select<'a, I>(routes: &[RouteMatch], server_name: Option<&str>, offered: I) -> Option<usize>
where
    I: Iterator<Item = &'a [u8]> + Clone,
{
    let mut best: Option<((usize, bool), usize)> = None;
    for (i, route) in routes.iter().enumerate() {
        if !route.alpn.is_empty()
            && !offered
                .clone()
                .any(|p| route.alpn.iter().any(|want| want.as_slice() == p))
        {
            continue;
        }
        let name_rank = if route.sni.is_empty() {
            0
        } else {
            let Some(name) = server_name else { continue };
            // Ranks of matches are 1 and up; 0 is kept for the default route.
            match route.sni.iter().filter_map(|p| p.rank(name)).max() {
                Some(rank) => rank.saturating_add(1).max(1),
                None => continue,
            }
        };
        let rank = (name_rank, !route.alpn.is_empty());
        if best.is_none_or(|(b, _)| rank > b) {
            best = Some((rank, i));
        }
    }
    best.map(|(_, i)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(sni: &[&str], alpn: &[&str]) -> RouteMatch {
        RouteMatch {
            sni: sni.iter().map(|s| s.parse().unwrap()).collect(),
            alpn: alpn.iter().map(|a| a.as_bytes().to_vec()).collect(),
        }
    }

    fn pick(routes: &[RouteMatch], name: Option<&str>, alpn: &[&str]) -> Option<usize> {
        select(routes, name, alpn.iter().map(|a| a.as_bytes()))
    }

    #[test]
    fn exact_beats_wildcard_beats_default() {
        let routes = [
            route(&[], &[]),
            route(&["*.example.com"], &[]),
            route(&["api.example.com"], &[]),
            route(&["*.eu.example.com"], &[]),
        ];
        assert_eq!(pick(&routes, Some("api.example.com"), &[]), Some(2));
        assert_eq!(pick(&routes, Some("API.Example.COM."), &[]), Some(2));
        assert_eq!(pick(&routes, Some("www.example.com"), &[]), Some(1));
        assert_eq!(pick(&routes, Some("x.eu.example.com"), &[]), Some(3));
        assert_eq!(pick(&routes, Some("example.com"), &[]), Some(0));
        assert_eq!(pick(&routes, Some("other.org"), &[]), Some(0));
        assert_eq!(pick(&routes, None, &[]), Some(0));
    }

    #[test]
    fn without_default_route_unknown_names_have_none() {
        let routes = [route(&["a.example"], &[]), route(&["b.example"], &[])];
        assert_eq!(pick(&routes, Some("b.example"), &[]), Some(1));
        assert_eq!(pick(&routes, Some("c.example"), &[]), None);
        assert_eq!(pick(&routes, None, &[]), None);
    }

    #[test]
    fn alpn_condition_filters_and_wins_ties() {
        let routes = [
            route(&["api.example"], &[]),
            route(&["api.example"], &["h2"]),
            route(&[], &["acme-tls/1"]),
        ];
        assert_eq!(
            pick(&routes, Some("api.example"), &["h2", "http/1.1"]),
            Some(1)
        );
        assert_eq!(pick(&routes, Some("api.example"), &["http/1.1"]), Some(0));
        assert_eq!(pick(&routes, Some("other"), &["acme-tls/1"]), Some(2));
        assert_eq!(pick(&routes, Some("other"), &["h2"]), None);
    }

    #[test]
    fn wildcard_needs_at_least_one_label() {
        let p: SniPattern = "*.example.com".parse().unwrap();
        assert_eq!(p.rank("example.com"), None);
        assert_eq!(p.rank("xexample.com"), None);
        assert!(p.rank("a.b.example.com").is_some());
    }

    #[test]
    fn patterns_parse_and_refuse_junk() {
        assert_eq!(
            "API.example.com."
                .parse::<SniPattern>()
                .unwrap()
                .to_string(),
            "api.example.com"
        );
        assert_eq!(
            "*.Example.com".parse::<SniPattern>().unwrap().to_string(),
            "*.example.com"
        );
        for bad in ["", "*", "*.", "a..b", "a b", "a.*.b", "*example.com"] {
            assert!(bad.parse::<SniPattern>().is_err(), "{bad:?}");
        }
    }
}
