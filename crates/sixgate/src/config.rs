//! The TOML config file: one section per part, unknown keys refused.
//!
//! Values become domain types while the file is read (a `Prefix64`, not a
//! string), so a bad value fails here, with the file, line, key and reason,
//! before anything runs.

use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::cmd;

/// The whole config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub admin: AdminConfig,
    pub siit: Option<cmd::siit::Section>,
    pub nat64: Option<cmd::nat64::Section>,
    pub dns64: Option<cmd::dns64::Section>,
    pub proxy: Option<cmd::proxy::Section>,
    pub node: Option<cmd::node::Section>,
}

/// `[admin]`: the HTTP port for health and metrics.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Address of `/healthz`, `/readyz` and `/metrics`. Loopback by default:
    /// expose it deliberately (Kubernetes manifests set `0.0.0.0:7779`).
    #[serde(default = "AdminConfig::default_listen")]
    pub listen: SocketAddr,
}

impl AdminConfig {
    fn default_listen() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 7779))
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: Self::default_listen(),
        }
    }
}

/// A config that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read: {source}", file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{}{location}: {key}: {reason}", file.display())]
    Invalid {
        file: PathBuf,
        location: Location,
        key: String,
        reason: String,
    },
}

/// `:line:column` in a file, or nothing when unknown.
#[derive(Debug, Clone, Copy, Default)]
pub struct Location(Option<(usize, usize)>);

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some((line, column)) => write!(f, ":{line}:{column}"),
            None => Ok(()),
        }
    }
}

/// A semantic error found after the file parsed: the key it is about and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub key: String,
    pub reason: String,
}

impl Invalid {
    pub fn new(key: impl Into<String>, reason: impl fmt::Display) -> Self {
        Self {
            key: key.into(),
            reason: reason.to_string(),
        }
    }
}

impl Config {
    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses and validates config text; `path` names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let deserializer = toml::Deserializer::new(text);
        let config: Config = serde_path_to_error::deserialize(deserializer).map_err(|err| {
            let key = err.path().to_string();
            let inner = err.into_inner();
            let location = inner
                .span()
                .map_or_else(|| locate_key(text, &key), |span| line_column(text, &span));
            ConfigError::Invalid {
                file: path.to_owned(),
                location,
                key: if key == "." {
                    "(top level)".to_owned()
                } else {
                    key
                },
                reason: inner.message().trim().to_owned(),
            }
        })?;
        config.validate().map_err(|invalid| ConfigError::Invalid {
            file: path.to_owned(),
            location: locate_key(text, &invalid.key),
            key: invalid.key,
            reason: invalid.reason,
        })?;
        Ok(config)
    }

    /// Checks that need more than one value at a time.
    fn validate(&self) -> Result<(), Invalid> {
        if let Some(section) = &self.siit {
            cmd::siit::validate(section)?;
        }
        if let Some(section) = &self.nat64 {
            cmd::nat64::validate(section)?;
        }
        if let Some(section) = &self.dns64 {
            cmd::dns64::validate(section)?;
        }
        if let Some(section) = &self.proxy {
            cmd::proxy::validate(section)?;
        }
        if let Some(section) = &self.node {
            cmd::node::validate(section)?;
        }
        Ok(())
    }
}

fn line_column(text: &str, span: &Range<usize>) -> Location {
    let start = span.start.min(text.len());
    let before = &text[..start];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(start, |nl| start - nl - 1) + 1;
    Location(Some((line, column)))
}

/// Finds where a dotted key such as `proxy.routes[1].sni` is written.
fn locate_key(text: &str, key: &str) -> Location {
    let Ok(doc) = text.parse::<toml_edit::ImDocument<String>>() else {
        return Location::default();
    };
    let mut item = doc.as_item();
    let mut span = None;
    for segment in key.split('.') {
        let (name, index) = match segment.split_once('[') {
            Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (segment, None),
        };
        let Some(next) = item.get(name) else { break };
        item = next;
        span = item.span().or(span);
        if let Some(index) = index {
            let Some(next) = item.get(index) else { break };
            item = next;
            span = item.span().or(span);
        }
    }
    span.map_or_else(Location::default, |span| line_column(text, &span))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(Path::new("test.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn empty_file_gives_defaults() {
        let config = parse("").unwrap();
        assert_eq!(config.admin.listen, "127.0.0.1:7779".parse().unwrap());
        assert!(config.siit.is_none());
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let err = parse("[admin]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n").unwrap_err();
        assert!(
            err.starts_with("test.toml:3:1: admin.lisen: unknown field `lisen`"),
            "{err}"
        );
    }

    #[test]
    fn bad_value_names_key_and_reason() {
        let err = parse("[admin]\nlisten = \"nowhere\"\n").unwrap_err();
        assert!(
            err.starts_with("test.toml:2:10: admin.listen: invalid socket address"),
            "{err}"
        );
    }

    #[test]
    fn unknown_section_is_refused() {
        let err = parse("[dns46]\n").unwrap_err();
        assert!(err.contains("unknown field `dns46`"), "{err}");
    }

    #[test]
    fn locate_key_finds_nested_entries() {
        let text = "[a]\nx = 1\n[[a.list]]\ny = 2\n[[a.list]]\ny = 3\n";
        assert_eq!(locate_key(text, "a.list[1].y").to_string(), ":6:5");
    }
}
