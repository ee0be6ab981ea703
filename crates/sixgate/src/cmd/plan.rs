//! `sixgate plan`: the IPv6 address planner.
//!
//! `init` writes an example plan, `allocate` updates the lock file beside
//! the plan (atomically: temp file, fsync, rename), `show` prints the plan
//! as a table, `render` writes one folder per cluster, `check` says whether
//! the lock file is up to date. Only `init` and `allocate` write the lock or
//! the plan; `show` and `render` refuse a stale lock instead of changing it.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use clap::{Args as ClapArgs, Subcommand};
use sixgate_plan::{allocate, Lock, Plan};

/// The example plan that `sixgate plan init` writes.
const EXAMPLE: &str = include_str!("../../../../deploy/examples/plan.toml");

#[derive(Debug, ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, ClapArgs)]
struct PlanArg {
    /// The plan; its lock file is beside it, with the extension `.lock`.
    #[arg(short, long, default_value = "plan.toml")]
    plan: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Write an example plan (three clusters on two sites) to start from.
    Init {
        #[command(flatten)]
        plan: PlanArg,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Allocate what the plan added, free what it dropped; update the lock file.
    Allocate {
        #[command(flatten)]
        plan: PlanArg,
    },
    /// Exit 0 if the lock file holds exactly what the plan needs.
    Check {
        #[command(flatten)]
        plan: PlanArg,
    },
    /// Print the plan as a table: which block belongs to what, how full each level is.
    Show {
        #[command(flatten)]
        plan: PlanArg,
    },
    /// Write the configs of every cluster to OUT/<cluster>/.
    Render {
        #[command(flatten)]
        plan: PlanArg,
        /// The folder to write to (created if missing).
        #[arg(short, long)]
        out: PathBuf,
    },
}

pub fn command(args: &Args) -> anyhow::Result<()> {
    match &args.action {
        Action::Init { plan, force } => init(&plan.plan, *force),
        Action::Allocate { plan } => {
            let (plan_path, plan, old) = load(&plan.plan)?;
            let lock_path = lock_path(&plan_path);
            let new = allocate(&plan, &old)
                .map_err(|e| anyhow::anyhow!("{}: {e}", plan_path.display()))?;
            if new == old && lock_path.exists() {
                println!("{}: up to date", lock_path.display());
            } else {
                write_atomic(&lock_path, new.to_text().as_bytes(), Durable::Yes)?;
                println!(
                    "{}: written ({} site(s), {} cluster(s))",
                    lock_path.display(),
                    new.sites.len(),
                    new.clusters.len()
                );
            }
            Ok(())
        }
        Action::Check { plan } => {
            let (plan_path, plan, lock) = load(&plan.plan)?;
            current(&plan_path, &plan, &lock)?;
            println!("{}: up to date", lock_path(&plan_path).display());
            Ok(())
        }
        Action::Show { plan } => {
            let (plan_path, plan, lock) = load(&plan.plan)?;
            current(&plan_path, &plan, &lock)?;
            print!("{}", sixgate_plan::show::show(&plan, &lock));
            Ok(())
        }
        Action::Render { plan, out } => {
            let (plan_path, plan, lock) = load(&plan.plan)?;
            current(&plan_path, &plan, &lock)?;
            let files = sixgate_plan::render::render(&plan, &lock)
                .map_err(|e| anyhow::anyhow!("{}: {e}", plan_path.display()))?;
            for (name, text) in &files {
                let path = out.join(name);
                if let Some(dir) = path.parent() {
                    fs::create_dir_all(dir)
                        .with_context(|| format!("cannot create {}", dir.display()))?;
                }
                // Re-rendering recreates these: replaced atomically, not fsynced.
                write_atomic(&path, text.as_bytes(), Durable::No)?;
            }
            println!(
                "{}: {} file(s) for {} cluster(s)",
                out.display(),
                files.len(),
                plan.clusters.len()
            );
            Ok(())
        }
    }
}

fn init(path: &Path, force: bool) -> anyhow::Result<()> {
    if path.exists() && !force {
        bail!(
            "{}: already exists (use --force to overwrite it)",
            path.display()
        );
    }
    write_atomic(path, EXAMPLE.as_bytes(), Durable::Yes)?;
    println!(
        "{}: written; next: sixgate plan allocate --plan {}",
        path.display(),
        path.display()
    );
    Ok(())
}

/// `plan.toml` -> `plan.lock`, in the same folder.
fn lock_path(plan: &Path) -> PathBuf {
    plan.with_extension("lock")
}

/// The plan and its lock (empty when there is none yet).
fn load(path: &Path) -> anyhow::Result<(PathBuf, Plan, Lock)> {
    let text =
        fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let plan = Plan::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let lock_path = lock_path(path);
    let lock = match fs::read_to_string(&lock_path) {
        Ok(text) => {
            Lock::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", lock_path.display()))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Lock::default(),
        Err(e) => return Err(e).with_context(|| format!("{}: cannot read", lock_path.display())),
    };
    Ok((path.to_owned(), plan, lock))
}

/// Refuses a lock that `allocate` would change.
fn current(plan_path: &Path, plan: &Plan, lock: &Lock) -> anyhow::Result<()> {
    let lock_path = lock_path(plan_path);
    match allocate(plan, lock) {
        Err(e) => bail!("{}: {e}", plan_path.display()),
        Ok(fresh) if &fresh != lock => bail!(
            "{}: out of date with {}: run `sixgate plan allocate --plan {}` first",
            lock_path.display(),
            plan_path.display(),
            plan_path.display()
        ),
        Ok(_) => Ok(()),
    }
}

/// Whether a write must survive a crash right after it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durable {
    /// fsync the file before the rename and the folder after it.
    Yes,
    /// Atomic replacement only.
    No,
}

/// Writes `bytes` to `path` so that a reader sees the old file or the new
/// one, never a part: a temp file in the same folder, (fsync,) rename over
/// the target, (fsync the folder). The temp file is removed on failure.
pub fn write_atomic(path: &Path, bytes: &[u8], durable: Durable) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .with_context(|| format!("{}: not a file name", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp.{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> std::io::Result<()> {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        file.write_all(bytes)?;
        if durable == Durable::Yes {
            file.sync_all()?;
        }
        drop(file);
        fs::rename(&tmp, path)?;
        if durable == Durable::Yes {
            // Make the rename itself durable.
            fs::File::open(&dir)?.sync_all()?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("{}: cannot write", path.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sixgate-plan-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn atomic_write_replaces_the_whole_file() {
        let dir = temp_dir("replace");
        let path = dir.join("plan.lock");
        write_atomic(&path, b"old contents that are longer\n", Durable::Yes).unwrap();
        write_atomic(&path, b"new\n", Durable::No).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new\n");
        let left: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("plan.lock")]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn failed_atomic_write_leaves_the_target_and_no_temp_file() {
        let dir = temp_dir("fail");
        // A directory where the file should go: the rename fails.
        let path = dir.join("plan.lock");
        fs::create_dir(&path).unwrap();
        fs::write(path.join("keep"), b"x").unwrap();
        assert!(write_atomic(&path, b"new\n", Durable::Yes).is_err());
        assert_eq!(fs::read(path.join("keep")).unwrap(), b"x");
        let left: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("plan.lock")]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_lock_sits_beside_the_plan() {
        assert_eq!(
            lock_path(Path::new("a/b/plan.toml")),
            Path::new("a/b/plan.lock")
        );
        assert_eq!(lock_path(Path::new("net")), Path::new("net.lock"));
    }

    #[test]
    fn the_embedded_example_plan_allocates() {
        let plan = Plan::parse(EXAMPLE).unwrap();
        assert_eq!(plan.clusters.len(), 3);
        allocate(&plan, &Lock::default()).unwrap();
    }
}
