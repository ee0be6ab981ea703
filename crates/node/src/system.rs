//! The IO side: runs `nft` and `ip`, reads `/proc`. Blocking; the watch loop
//! calls it from a blocking thread. Nothing here decides anything.

use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::routes::{parse_ip_json, LiveRoute};
use crate::ruleset::table_ref;

/// Output of a finished command: success, stdout, stderr.
struct Ran {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<Ran, String> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if let Some(text) = stdin {
        if let Some(mut pipe) = child.stdin.take() {
            pipe.write_all(text.as_bytes())
                .map_err(|e| format!("cannot write to {program}: {e}"))?;
        }
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("cannot wait for {program}: {e}"))?;
    Ok(Ran {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    })
}

fn ok_or_message(ran: Ran, what: &str) -> Result<String, String> {
    if ran.ok {
        Ok(ran.stdout)
    } else if ran.stderr.is_empty() {
        Err(format!("{what} failed"))
    } else {
        Err(ran.stderr)
    }
}

/// The `nft` program.
#[derive(Debug, Clone)]
pub struct Nft {
    program: String,
}

impl Default for Nft {
    fn default() -> Self {
        Self {
            program: "nft".to_owned(),
        }
    }
}

impl Nft {
    /// `nft -c -f -`: parses and checks the script against the kernel without
    /// committing anything.
    pub fn check(&self, script: &str) -> Result<(), String> {
        ok_or_message(
            run(&self.program, &["-c", "-f", "-"], Some(script))?,
            "nft -c",
        )
        .map(drop)
    }

    /// `nft -f -`: one transaction; all of it or nothing.
    pub fn apply(&self, script: &str) -> Result<(), String> {
        ok_or_message(run(&self.program, &["-f", "-"], Some(script))?, "nft -f").map(drop)
    }

    /// The owned table as nft lists it (`-s`: without counter values), or
    /// `None` when it does not exist.
    pub fn list(&self, stateless: bool) -> Result<Option<String>, String> {
        let table = table_ref();
        let mut args = vec![];
        if stateless {
            args.push("-s");
        }
        args.extend(["list", "table"]);
        args.extend(table.split(' '));
        self.list_with(&args)
    }

    /// The owned table in nft's JSON form, or `None` when it does not exist.
    pub fn list_json(&self) -> Result<Option<String>, String> {
        let table = table_ref();
        let mut args = vec!["-j", "list", "table"];
        args.extend(table.split(' '));
        self.list_with(&args)
    }

    fn list_with(&self, args: &[&str]) -> Result<Option<String>, String> {
        let ran = run(&self.program, args, None)?;
        if ran.ok {
            Ok(Some(ran.stdout))
        } else if ran.stderr.contains("No such file or directory") {
            Ok(None)
        } else {
            Err(ran.stderr)
        }
    }

    /// How nft lists the table `script` creates, learned by applying it in a
    /// throwaway network namespace (`unshare --net`, which needs
    /// CAP_SYS_ADMIN): the exact text `list` returns once it is applied.
    pub fn canonical(&self, script: &str) -> Result<String, SandboxError> {
        let table = table_ref();
        let inner = format!(
            "{nft} -f - && exec {nft} -s list table {table}",
            nft = self.program
        );
        let ran = run(
            "unshare",
            &["--net", "--", "sh", "-c", &inner],
            Some(script),
        )
        .map_err(SandboxError::Unavailable)?;
        if ran.ok {
            Ok(ran.stdout)
        } else if ran.stderr.starts_with("unshare:") {
            Err(SandboxError::Unavailable(ran.stderr))
        } else {
            Err(SandboxError::Failed(ran.stderr))
        }
    }
}

/// Why the throwaway namespace gave no listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SandboxError {
    /// `unshare` is missing or not permitted here: it will not work later either.
    Unavailable(String),
    /// nft failed inside it (the same script will fail `nft -c` too).
    Failed(String),
}

/// The `ip` program (iproute2).
#[derive(Debug, Clone)]
pub struct Ip {
    program: String,
}

impl Default for Ip {
    fn default() -> Self {
        Self {
            program: "ip".to_owned(),
        }
    }
}

impl Ip {
    pub fn run(&self, args: &[String]) -> Result<(), String> {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ok_or_message(run(&self.program, &args, None)?, "ip").map(drop)
    }

    /// The routes of the main table, both families.
    pub fn routes(&self) -> Result<Vec<LiveRoute>, String> {
        let mut all = Vec::new();
        for (flag, ipv6) in [("-6", true), ("-4", false)] {
            let out = ok_or_message(
                run(
                    &self.program,
                    &["-N", "-j", flag, "route", "show", "table", "main"],
                    None,
                )?,
                "ip route show",
            )?;
            all.extend(parse_ip_json(&out, ipv6)?);
        }
        Ok(all)
    }
}

/// Names of the interfaces of the current network namespace.
pub fn interface_names() -> Result<Vec<String>, String> {
    std::fs::read_to_string("/proc/net/dev")
        .map(|text| crate::detect::interface_names(&text))
        .map_err(|e| format!("cannot read /proc/net/dev: {e}"))
}
