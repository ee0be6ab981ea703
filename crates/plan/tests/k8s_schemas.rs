//! The rendered Kubernetes objects validate offline: built-in kinds with
//! `kubernetes-validate` (PyPI, strict), Calico kinds against the
//! openAPIV3Schema of Calico's published CRDs, kubeadm/kubelet configs
//! against the schemas in `tests/data/schemas` (see its README for where
//! each comes from). The helper installs `kubernetes-validate` into a venv
//! under the cargo target dir on first use (needs `python3` and PyPI).
//!
//! The delegation records load into a zone that `named-checkzone` accepts.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use sixgate_plan::render::render;

static VENV_LOCK: Mutex<()> = Mutex::new(());

/// A venv with kubernetes-validate (and its jsonschema and PyYAML).
fn venv_python() -> PathBuf {
    let _guard = VENV_LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plan-venv");
    let python = venv.join("bin/python");
    let ready = || {
        Command::new(&python)
            .args(["-c", "import kubernetes_validate, jsonschema, yaml"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !ready() {
        let status = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("python3 is needed to validate the rendered Kubernetes objects");
        assert!(
            status.success(),
            "python3 -m venv {} failed",
            venv.display()
        );
        let status = Command::new(venv.join("bin/pip"))
            .args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "kubernetes-validate",
            ])
            .status()
            .expect("pip in the venv");
        assert!(status.success(), "pip install kubernetes-validate failed");
        assert!(
            ready(),
            "kubernetes-validate is not importable after installing it"
        );
    }
    python
}

fn validate(files: &[PathBuf]) -> (bool, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/validate_k8s.py");
    let out = Command::new(venv_python())
        .arg(script)
        .arg(common::data().join("schemas"))
        .args(files)
        .output()
        .expect("run validate_k8s.py");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn out_dir(tag: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("plan-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes the example's rendered files; returns the paths of those ending in `ext`.
fn rendered(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let (plan, lock) = common::example();
    let mut paths = Vec::new();
    for (name, text) in render(&plan, &lock).unwrap() {
        let path = dir.join(&name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        if name.ends_with(ext) {
            paths.push(path);
        }
    }
    paths
}

#[test]
fn rendered_kubernetes_objects_validate_against_their_schemas() {
    let dir = out_dir("k8s");
    let files = rendered(&dir, ".yaml");
    let (ok, text) = validate(&files);
    println!("{text}");
    assert!(ok, "validation failed:\n{text}");
    // Every kind the renderers emit was checked, each by a schema.
    for kind in [
        "NetworkPolicy/sixgate-allow-clusters (kubernetes-validate",
        "IPPool/prod-zrh-node-zrh-node-1 (calico-ippool.json)",
        "IPPool/dev-zrh-pods-v4 (calico-ippool.json)",
        "BGPConfiguration/default (calico-bgpconfiguration.json)",
        "BGPPeer/zrh-router-0 (calico-bgppeer.json)",
        "ClusterConfiguration/- (kubeadm-clusterconfiguration-v1beta4.json)",
        "KubeletConfiguration/- (kubelet-kubeletconfiguration-v1beta1.json)",
    ] {
        assert!(text.contains(kind), "{kind} was not validated:\n{text}");
    }
    assert!(text.contains(", 0 failed"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_validator_refuses_broken_objects() {
    let dir = out_dir("k8s-broken");
    let files = rendered(&dir, ".yaml");
    let breakages = [
        (
            "prod-zrh/calico-ippools.yaml",
            "natOutgoing:",
            "natOutgoin:",
        ),
        (
            "prod-zrh/calico-ippools.yaml",
            "ipipMode: Never",
            "ipipMode: Sometimes",
        ),
        (
            "prod-zrh/calico-bgp.yaml",
            "nodeToNodeMeshEnabled: true",
            "nodeToNodeMeshEnabled: \"yes\"",
        ),
        (
            "prod-zrh/calico-bgp.yaml",
            "keepOriginalNextHop:",
            "keepNextHop:",
        ),
        ("prod-zrh/networkpolicy.yaml", "ipBlock:", "ipBlocks:"),
        ("prod-zrh/kubeadm.yaml", "podSubnet:", "podSubnets:"),
        ("prod-zrh/kubeadm.yaml", "clusterDNS:", "clusterDns:"),
    ];
    for (file, from, to) in breakages {
        let path = dir.join(file);
        let good = std::fs::read_to_string(&path).unwrap();
        assert!(good.contains(from), "{file} has no `{from}`");
        std::fs::write(&path, good.replacen(from, to, 1)).unwrap();
        let (ok, text) = validate(std::slice::from_ref(&path));
        assert!(!ok, "{file} with `{to}` passed:\n{text}");
        std::fs::write(&path, good).unwrap();
    }
    let (ok, text) = validate(&files);
    assert!(ok, "restored files fail:\n{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn delegation_records_load_into_the_parent_zone() {
    let dir = out_dir("zone");
    let fragments = rendered(&dir, ".zone");
    assert_eq!(fragments.len(), 3);
    let mut zone = String::from(
        "$TTL 3600\n$ORIGIN k8s.example.net.\n\
         @ IN SOA ns1.example.net. hostmaster.example.net. 1 7200 3600 1209600 3600\n\
         @ IN NS ns1.example.net.\n",
    );
    for f in &fragments {
        zone.push_str(&std::fs::read_to_string(f).unwrap());
    }
    let path = dir.join("k8s.example.net.zone");
    std::fs::write(&path, &zone).unwrap();
    let out = Command::new("named-checkzone")
        .args(["-i", "full", "k8s.example.net"])
        .arg(&path)
        .output()
        .expect("named-checkzone (Debian bind9-utils) is needed");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "named-checkzone refused:\n{zone}\n{text}"
    );
    // Three delegations, each with its glue.
    let dump = Command::new("named-compilezone")
        .args(["-q", "-o", "-", "k8s.example.net"])
        .arg(&path)
        .output()
        .expect("named-compilezone");
    let canon = String::from_utf8_lossy(&dump.stdout);
    for c in ["prod-zrh", "dev-zrh", "prod-fra"] {
        assert!(
            canon.contains(&format!("{c}.k8s.example.net."))
                && canon.contains(&format!("kube-dns.kube-system.svc.{c}.k8s.example.net.")),
            "{c} delegation missing:\n{canon}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
