//! Routes that send traffic into a TUN device, added at start and removed
//! at exit.
//!
//! They are set with iproute2's `ip route` command rather than with rtnetlink
//! messages of our own: a route is added a handful of times per process
//! life, never on the packet path, and `ip` gives operators errors they
//! already know (`RTNETLINK answers: File exists`) and commands they can
//! replay by hand. The price is that `ip` must be installed (it is on every
//! distribution and in the container image). Each route carries
//! `proto static` and the device name, so `ip route show dev NAME` lists
//! exactly what sixgate added.
//!
//! [`Routes`] removes what it added when it is dropped: on a clean exit, on
//! SIGTERM/SIGINT (the part returns, its guard drops), and on an error at
//! start. If the process is killed outright the kernel still removes them,
//! since they point at a TUN device that disappears with the process.

use std::fmt;
use std::net::IpAddr;
use std::process::Command;

/// A destination prefix: `addr/len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoutePrefix {
    pub addr: IpAddr,
    pub len: u8,
}

impl RoutePrefix {
    pub fn new(addr: impl Into<IpAddr>, len: u8) -> Self {
        Self {
            addr: addr.into(),
            len,
        }
    }

    fn family_flag(&self) -> &'static str {
        match self.addr {
            IpAddr::V4(_) => "-4",
            IpAddr::V6(_) => "-6",
        }
    }
}

impl fmt::Display for RoutePrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// A route could not be added.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("cannot run `ip` to add route {prefix} dev {dev}: {source}")]
    Spawn {
        prefix: RoutePrefix,
        dev: String,
        source: std::io::Error,
    },
    #[error("cannot add route {prefix} dev {dev}: {message}")]
    Refused {
        prefix: RoutePrefix,
        dev: String,
        message: String,
    },
}

/// The routes added through one device; removed on drop.
#[derive(Debug)]
pub struct Routes {
    dev: String,
    added: Vec<RoutePrefix>,
}

impl Routes {
    pub fn new(dev: &str) -> Self {
        Self {
            dev: dev.to_owned(),
            added: Vec::new(),
        }
    }

    /// `ip route add PREFIX dev DEV proto static`. An existing route to the
    /// same prefix is an error: sixgate does not take over routes it did not
    /// make.
    pub fn add(&mut self, prefix: RoutePrefix) -> Result<(), RouteError> {
        let out = ip(&prefix, "add", &self.dev).map_err(|source| RouteError::Spawn {
            prefix,
            dev: self.dev.clone(),
            source,
        })?;
        if !out.status.success() {
            return Err(RouteError::Refused {
                prefix,
                dev: self.dev.clone(),
                message: stderr_line(&out),
            });
        }
        tracing::info!("added route {prefix} dev {}", self.dev);
        self.added.push(prefix);
        Ok(())
    }

    /// Makes the added routes `wanted`: removes those no longer wanted, adds
    /// the new ones. Keeps going past failures (logged); returns how many.
    pub fn reconcile(&mut self, wanted: &[RoutePrefix]) -> usize {
        let mut failed = 0;
        let stale: Vec<RoutePrefix> = self
            .added
            .iter()
            .filter(|p| !wanted.contains(p))
            .copied()
            .collect();
        for prefix in stale {
            if !self.remove(prefix) {
                failed += 1;
            }
        }
        for prefix in wanted {
            if !self.added.contains(prefix) {
                if let Err(err) = self.add(*prefix) {
                    tracing::warn!("{err}");
                    failed += 1;
                }
            }
        }
        failed
    }

    /// The routes added so far.
    pub fn added(&self) -> &[RoutePrefix] {
        &self.added
    }

    /// Removes every route added, newest first. Failures are logged: at exit
    /// there is nothing better to do with them.
    pub fn remove_all(&mut self) {
        while let Some(&prefix) = self.added.last() {
            self.remove(prefix);
        }
    }

    /// Removes one added route; false (logged) if `ip` refused. Either way
    /// it is no longer ours to remove.
    fn remove(&mut self, prefix: RoutePrefix) -> bool {
        self.added.retain(|p| *p != prefix);
        match ip(&prefix, "del", &self.dev) {
            Ok(out) if out.status.success() => {
                tracing::info!("removed route {prefix} dev {}", self.dev);
                true
            }
            Ok(out) => {
                tracing::warn!(
                    "cannot remove route {prefix} dev {}: {}",
                    self.dev,
                    stderr_line(&out)
                );
                false
            }
            Err(err) => {
                tracing::warn!(
                    "cannot run `ip` to remove route {prefix} dev {}: {err}",
                    self.dev
                );
                false
            }
        }
    }
}

impl Drop for Routes {
    fn drop(&mut self) {
        self.remove_all();
    }
}

fn ip(prefix: &RoutePrefix, verb: &str, dev: &str) -> std::io::Result<std::process::Output> {
    Command::new("ip")
        .args([
            prefix.family_flag(),
            "route",
            verb,
            &prefix.to_string(),
            "dev",
            dev,
            "proto",
            "static",
        ])
        .output()
}

fn stderr_line(out: &std::process::Output) -> String {
    let text = String::from_utf8_lossy(&out.stderr);
    let text = text.trim();
    if text.is_empty() {
        format!("ip exited with {}", out.status)
    } else {
        text.replace('\n', "; ")
    }
}

/// Without forwarding the kernel drops what we write into the TUN device.
pub fn warn_if_not_forwarding() {
    for (file, what) in [
        ("/proc/sys/net/ipv4/ip_forward", "net.ipv4.ip_forward"),
        (
            "/proc/sys/net/ipv6/conf/all/forwarding",
            "net.ipv6.conf.all.forwarding",
        ),
    ] {
        if std::fs::read_to_string(file).is_ok_and(|v| v.trim() == "0") {
            tracing::warn!(
                "{what} is 0: translated packets will not be forwarded (sysctl -w {what}=1)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn prefixes_print_as_ip_takes_them() {
        let v4 = RoutePrefix::new(Ipv4Addr::new(192, 0, 2, 0), 24);
        let v6 = RoutePrefix::new("64:ff9b:1::".parse::<Ipv6Addr>().unwrap(), 96);
        assert_eq!(v4.to_string(), "192.0.2.0/24");
        assert_eq!(v4.family_flag(), "-4");
        assert_eq!(v6.to_string(), "64:ff9b:1::/96");
        assert_eq!(v6.family_flag(), "-6");
    }
}
