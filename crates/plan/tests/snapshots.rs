//! Snapshot tests: every renderer, the lock file and the `show` table of the
//! example plan, compared byte for byte with `tests/data/snapshots/`.
//! After an intended change, regenerate with
//! `SIXGATE_UPDATE_SNAPSHOTS=1 cargo test -p sixgate-plan --test snapshots`
//! and review the diff.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use sixgate_plan::render::render;
use sixgate_plan::show::show;

fn expected_files(dir: &Path, prefix: &str, out: &mut BTreeMap<String, String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let entry = entry.unwrap();
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        if entry.file_type().unwrap().is_dir() {
            expected_files(&entry.path(), &format!("{name}/"), out);
        } else {
            out.insert(name, fs::read_to_string(entry.path()).unwrap());
        }
    }
}

fn actual_files() -> BTreeMap<String, String> {
    let (plan, lock) = common::example();
    let mut files = render(&plan, &lock).unwrap();
    files.insert("plan.lock".to_owned(), lock.to_text());
    files.insert("show.txt".to_owned(), show(&plan, &lock));
    files
}

#[test]
fn every_renderer_matches_its_snapshot() {
    let dir = common::data().join("snapshots");
    let actual = actual_files();
    if std::env::var_os("SIXGATE_UPDATE_SNAPSHOTS").is_some() {
        let _ = fs::remove_dir_all(&dir);
        for (name, text) in &actual {
            let path = dir.join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }
    }
    let mut expected = BTreeMap::new();
    expected_files(&dir, "", &mut expected);
    let names = |m: &BTreeMap<String, String>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(&actual),
        names(&expected),
        "rendered file set differs from the snapshots"
    );
    for (name, text) in &actual {
        assert_eq!(text, &expected[name], "{name} differs from its snapshot");
    }
}

#[test]
fn the_snapshots_cover_every_renderer_for_every_cluster() {
    let actual = actual_files();
    for cluster in ["prod-zrh", "dev-zrh", "prod-fra"] {
        for file in [
            "kubeadm.yaml",
            "calico-ippools.yaml",
            "calico-bgp.yaml",
            "coredns.Corefile",
            "dns-delegation.zone",
            "networkpolicy.yaml",
            "allow-list-ipv6.txt",
            "allow-list-ipv4.txt",
        ] {
            assert!(
                actual.contains_key(&format!("{cluster}/{file}")),
                "{cluster}/{file} missing"
            );
        }
    }
    // One sixgate config per gateway.
    for gw in [
        "prod-zrh/sixgate-zrh-gw-1.toml",
        "prod-zrh/sixgate-zrh-gw-2.toml",
        "dev-zrh/sixgate-dev-gw-1.toml",
        "prod-fra/sixgate-fra-gw-1.toml",
        "prod-fra/sixgate-fra-gw-2.toml",
    ] {
        assert!(actual.contains_key(gw), "{gw} missing");
    }
}

#[test]
fn the_dual_stack_cluster_renders_both_families_first_ipv6() {
    let actual = actual_files();
    let kubeadm = &actual["dev-zrh/kubeadm.yaml"];
    assert!(
        kubeadm.contains("podSubnet: \"2001:db8:101:100::/59,10.64.0.0/16\""),
        "{kubeadm}"
    );
    let single = &actual["prod-zrh/kubeadm.yaml"];
    assert!(
        single.contains("podSubnet: \"2001:db8:101::/57\"\n"),
        "{single}"
    );
    let pools = &actual["dev-zrh/calico-ippools.yaml"];
    assert!(
        pools.contains("cidr: \"10.64.0.0/16\"") && pools.contains("natOutgoing: true"),
        "{pools}"
    );
}

#[test]
fn delegation_glue_is_the_tenth_service_address() {
    let actual = actual_files();
    let zone = &actual["prod-zrh/dns-delegation.zone"];
    assert!(
        zone.contains(
            "prod-zrh                          3600 IN NS   kube-dns.kube-system.svc.prod-zrh\n"
        ),
        "{zone}"
    );
    assert!(zone.contains("IN AAAA 2001:db8:101:81::a\n"), "{zone}");
}
