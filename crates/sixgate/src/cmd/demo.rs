//! `sixgate demo`: the seeds' scenarios, built in network namespaces on this
//! machine, run, narrated, and removed again (also on Ctrl-C or failure).
//!
//! Everything the demo creates is named `sgdemo-<pid>-*` (namespaces) and
//! lives in one temporary directory; a run first removes what an earlier,
//! killed run left behind.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Args as ClapArgs;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Run only these steps (1: DNS64 + NAT64, 2: private-link proxy, 3: node rules).
    #[arg(long, value_delimiter = ',')]
    pub steps: Vec<u8>,
}

/// One scenario: builds its topology in the lab, shows what it proves.
type Step = fn(&mut Lab) -> anyhow::Result<()>;

/// The name prefix of everything the demo creates.
const PREFIX: &str = "sgdemo-";

pub fn command(args: &Args) -> anyhow::Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the demo builds network namespaces and needs root (run it with sudo)");
    }
    for tool in ["ip", "nft", "curl", "dig", "python3", "openssl", "nsd"] {
        if !tool_exists(tool) {
            bail!("the demo needs `{tool}`; scripts/demo installs everything it uses");
        }
    }
    remove_stale();
    install_interrupt_cleanup();

    let wanted = |n: u8| args.steps.is_empty() || args.steps.contains(&n);
    let mut failed = Vec::new();
    let steps: [(u8, &str, Step); 3] = [
        (
            1,
            "An IPv6-only pod reaches an IPv4-only site: sixgate dns64 + nat64",
            super::demo_steps::egress,
        ),
        (
            2,
            "An IPv6 client reaches an IPv4-only TLS service over a private link: sixgate proxy",
            super::demo_steps::private_link,
        ),
        (
            3,
            "A load balancer probe from fe80::1234:5678:9abc reaches a pod: sixgate node",
            super::demo_steps::lb_probe,
        ),
    ];
    for (n, title, run) in steps {
        if !wanted(n) {
            continue;
        }
        println!("\n== {n}. {title}");
        let mut lab = Lab::new(n)?;
        let started = Instant::now();
        match run(&mut lab) {
            Ok(()) => println!(
                "   step {n} passed in {:.1} s",
                started.elapsed().as_secs_f64()
            ),
            Err(err) => {
                println!("   FAILED: {err:#}");
                if !lab.logs().is_empty() {
                    println!("   logs of the processes the step started:\n{}", lab.logs());
                }
                failed.push(n);
            }
        }
    }
    println!();
    if failed.is_empty() {
        println!("demo: every step passed; everything it created has been removed");
        Ok(())
    } else {
        bail!("demo: step(s) {failed:?} failed")
    }
}

/// One step's namespaces, processes and files; all removed on drop.
pub struct Lab {
    tag: String,
    dir: PathBuf,
    namespaces: Vec<String>,
    children: Vec<(String, Child, PathBuf)>,
    links: u32,
    /// `/etc/netns/<ns>` directories written for `ip netns exec`.
    etc_dirs: Vec<PathBuf>,
}

impl Lab {
    fn new(step: u8) -> anyhow::Result<Self> {
        let tag = format!("{PREFIX}{}-{step}", std::process::id());
        let dir = std::env::temp_dir().join(&tag);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Self {
            tag,
            dir,
            namespaces: Vec::new(),
            children: Vec::new(),
            links: 0,
            etc_dirs: Vec::new(),
        })
    }

    /// The step's temporary directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes a file into the step's directory.
    pub fn file(&self, name: &str, text: &str) -> anyhow::Result<PathBuf> {
        let path = self.dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }

    /// A new namespace with loopback up; returns its full name.
    pub fn netns(&mut self, name: &str) -> anyhow::Result<String> {
        let full = format!("{}-{name}", self.tag);
        run("ip", &["netns", "add", &full])?;
        self.namespaces.push(full.clone());
        self.exec(&full, &["ip", "link", "set", "lo", "up"])?;
        Ok(full)
    }

    /// Gives a namespace its own resolv.conf: `ip netns exec` bind-mounts
    /// `/etc/netns/<ns>/resolv.conf` over `/etc/resolv.conf`.
    pub fn resolv_conf(&mut self, ns: &str, nameserver: &str) -> anyhow::Result<()> {
        let dir = PathBuf::from("/etc/netns").join(ns);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        self.etc_dirs.push(dir.clone());
        std::fs::write(
            dir.join("resolv.conf"),
            format!("nameserver {nameserver}\n"),
        )?;
        Ok(())
    }

    /// A veth pair between two namespaces; returns the interface names (a, b).
    pub fn link(&mut self, a: &str, b: &str) -> anyhow::Result<(String, String)> {
        self.links += 1;
        let n = self.links;
        let (ia, ib) = (format!("sgd{n}a"), format!("sgd{n}b"));
        run(
            "ip",
            &[
                "link", "add", &ia, "netns", a, "type", "veth", "peer", "name", &ib, "netns", b,
            ],
        )?;
        self.exec(a, &["ip", "link", "set", &ia, "up"])?;
        self.exec(b, &["ip", "link", "set", &ib, "up"])?;
        Ok((ia, ib))
    }

    /// Runs a command in a namespace; fails with its output when it fails.
    pub fn exec(&self, ns: &str, args: &[&str]) -> anyhow::Result<String> {
        let mut full = vec!["netns", "exec", ns];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// Runs a command in a namespace and returns (success, stdout + stderr).
    pub fn try_exec(&self, ns: &str, args: &[&str]) -> (bool, String) {
        let out = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .output();
        match out {
            Ok(out) => (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned()
                    + &String::from_utf8_lossy(&out.stderr),
            ),
            Err(err) => (false, err.to_string()),
        }
    }

    /// Starts a background process in a namespace; its output goes to a log file.
    pub fn spawn(&mut self, name: &str, ns: &str, args: &[&str]) -> anyhow::Result<()> {
        let log_path = self.dir.join(format!("{name}.log"));
        let log = std::fs::File::create(&log_path)?;
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        self.children.push((name.to_owned(), child, log_path));
        Ok(())
    }

    /// Starts this very binary in a namespace with `args`.
    pub fn spawn_sixgate(&mut self, name: &str, ns: &str, args: &[&str]) -> anyhow::Result<()> {
        let exe = std::env::current_exe().context("cannot find the sixgate binary")?;
        let exe = exe.to_str().context("binary path is not UTF-8")?.to_owned();
        let mut full = vec![exe.as_str()];
        full.extend_from_slice(args);
        self.spawn(name, ns, &full)
    }

    /// Waits until `name`'s log contains `needle`.
    pub fn wait_log(
        &mut self,
        name: &str,
        needle: &str,
        timeout: Duration,
    ) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let (_, child, path) = self
                .children
                .iter_mut()
                .find(|(n, ..)| n == name)
                .with_context(|| format!("no process {name}"))?;
            let text = std::fs::read_to_string(&*path).unwrap_or_default();
            if let Some(line) = text.lines().find(|l| l.contains(needle)) {
                return Ok(line.to_owned());
            }
            if let Ok(Some(status)) = child.try_wait() {
                bail!("{name} exited ({status}) before logging {needle:?}:\n{text}");
            }
            if Instant::now() > deadline {
                bail!("{name} did not log {needle:?} within {timeout:?}:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Retries `probe` until it succeeds or `timeout` passes.
    pub fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        mut probe: impl FnMut() -> bool,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while !probe() {
            if Instant::now() > deadline {
                bail!("timed out waiting for {what}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// The tail of every process log, for a failed step.
    fn logs(&self) -> String {
        let mut out = String::new();
        for (name, _, path) in &self.children {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            if !tail.is_empty() {
                let _ = writeln!(out, "   --- {name}");
                for line in tail.into_iter().rev() {
                    let _ = writeln!(out, "   | {line}");
                }
            }
        }
        out
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for (_, child, _) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in &self.namespaces {
            remove_namespace(ns);
        }
        for dir in &self.etc_dirs {
            let _ = std::fs::remove_dir_all(dir);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Prints one line of the transcript: what was shown.
pub fn shown(text: &str) {
    println!("   ok  {text}");
    let _ = std::io::stdout().flush();
}

/// Prints a narrating line.
pub fn say(text: &str) {
    println!("   ..  {text}");
    let _ = std::io::stdout().flush();
}

fn run(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    if !out.status.success() {
        bail!(
            "`{program} {}` failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn tool_exists(tool: &str) -> bool {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .any(|dir| dir.join(tool).is_file())
}

fn remove_namespace(ns: &str) {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = Command::new("kill").args(["-9", pid]).status();
        }
    }
    let _ = Command::new("ip").args(["netns", "del", ns]).status();
}

/// Removes every `sgdemo-*` namespace and directory (an earlier run killed
/// hard, or this run interrupted).
fn remove_stale() {
    remove_matching(PREFIX);
}

fn remove_matching(prefix: &str) {
    if let Ok(out) = Command::new("ip").args(["netns", "list"]).output() {
        for ns in String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next())
        {
            if ns.starts_with(prefix) {
                remove_namespace(ns);
            }
        }
    }
    for dir in [std::env::temp_dir(), PathBuf::from("/etc/netns")] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(prefix) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// On Ctrl-C or SIGTERM: remove what this run created, then exit.
fn install_interrupt_cleanup() {
    let mine = format!("{PREFIX}{}-", std::process::id());
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async {
            let Ok(mut term) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            else {
                return;
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        });
        println!("\ninterrupted: removing the demo's namespaces");
        remove_matching(&mine);
        std::process::exit(130);
    });
}
