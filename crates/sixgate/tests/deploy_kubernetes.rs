//! The Kubernetes manifests in `deploy/kubernetes/`: every overlay renders with
//! `kubectl kustomize`, validates offline against the Kubernetes API schemas
//! (`kubernetes-validate --strict`), ships configs that `sixgate check`
//! accepts, and has the properties the seeds ask for.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use common::{sixgate_bin, TempDir};
use serde_yaml::Value;

const OVERLAYS: [&str; 3] = ["ipv6-egress", "private-link", "node-fix"];
/// The Kubernetes version the objects are validated against.
const KUBERNETES_VERSION: &str = "1.32.0";

fn deploy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kubernetes")
}

fn render_text(overlay: &str) -> String {
    let dir = deploy_dir().join("overlays").join(overlay);
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(&dir)
        .output()
        .expect("kubectl is needed to render the manifests (the machine image ships it)");
    assert!(
        out.status.success(),
        "kustomize {overlay}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 yaml")
}

fn render(overlay: &str) -> Vec<Value> {
    let text = render_text(overlay);
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).expect("rendered yaml parses"))
        .collect()
}

use serde::Deserialize as _;

fn kind(obj: &Value) -> &str {
    obj["kind"].as_str().unwrap_or_default()
}

fn name(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or_default()
}

/// The workloads (Deployments, DaemonSets) of an overlay.
fn workloads(objects: &[Value]) -> Vec<&Value> {
    objects
        .iter()
        .filter(|o| matches!(kind(o), "Deployment" | "DaemonSet"))
        .collect()
}

fn containers(workload: &Value) -> &Vec<Value> {
    workload["spec"]["template"]["spec"]["containers"]
        .as_sequence()
        .expect("containers")
}

fn component(workload: &Value) -> &str {
    workload["metadata"]["labels"]["app.kubernetes.io/component"]
        .as_str()
        .unwrap_or_default()
}

/// The TOML files every ConfigMap of the overlay ships: (configmap/key, text).
fn shipped_configs(objects: &[Value]) -> Vec<(String, String)> {
    objects
        .iter()
        .filter(|o| kind(o) == "ConfigMap")
        .flat_map(|cm| {
            cm["data"]
                .as_mapping()
                .into_iter()
                .flatten()
                .filter_map(|(key, value)| {
                    let key = key.as_str().filter(|k| k.ends_with(".toml"))?;
                    Some((format!("{}/{key}", name(cm)), value.as_str()?.to_owned()))
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn every_overlay_validates_strictly_against_the_kubernetes_schemas() {
    let dir = TempDir::new("k8s");
    for overlay in OVERLAYS {
        let file = dir.write(&format!("{overlay}.yaml"), &render_text(overlay));
        let out = Command::new("kubernetes-validate")
            .args(["--strict", "--quiet", "-k", KUBERNETES_VERSION])
            .arg(&file)
            .output()
            .expect("kubernetes-validate (pip) is needed: scripts/install-deps installs it");
        let report = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{overlay} does not validate:\n{report}"
        );
        // Only the Prometheus Operator's kinds may lack a built-in schema.
        for line in report
            .lines()
            .filter(|l| l.contains("Couldn't find schema"))
        {
            assert!(line.contains("monitoring.coreos.com"), "{overlay}: {line}");
        }
    }
}

#[test]
fn every_shipped_config_passes_sixgate_check() {
    let dir = TempDir::new("k8s-check");
    let mut checked = 0;
    for overlay in OVERLAYS {
        for (origin, text) in shipped_configs(&render(overlay)) {
            let file = dir.write("sixgate.toml", &text);
            let out = Command::new(sixgate_bin())
                .arg("check")
                .arg("--config")
                .arg(&file)
                .output()
                .expect("run sixgate");
            assert!(
                out.status.success(),
                "{overlay} {origin} is refused by sixgate check:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 5,
        "expected the overlays to ship at least 5 configs, found {checked}"
    );
}

#[test]
fn the_proxy_runs_on_the_privatelink_pool_with_host_network_one_per_node() {
    let objects = render("private-link");
    let proxy = workloads(&objects)
        .into_iter()
        .find(|w| component(w) == "proxy")
        .expect("proxy workload");
    let pod = &proxy["spec"]["template"]["spec"];
    assert_eq!(kind(proxy), "Deployment");
    assert_eq!(pod["hostNetwork"], Value::Bool(true));
    assert_eq!(pod["dnsPolicy"].as_str(), Some("ClusterFirstWithHostNet"));
    assert_eq!(pod["nodeSelector"]["pool"].as_str(), Some("privatelink"));
    let tolerations = pod["tolerations"].as_sequence().expect("tolerations");
    assert!(tolerations
        .iter()
        .any(|t| t["key"].as_str() == Some("pool") && t["value"].as_str() == Some("privatelink")));
    let anti =
        &pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0];
    assert_eq!(anti["topologyKey"].as_str(), Some("kubernetes.io/hostname"));
}

#[test]
fn capabilities_are_no_wider_than_each_part_needs() {
    for overlay in OVERLAYS {
        let objects = render(overlay);
        for workload in workloads(&objects) {
            let allowed: BTreeSet<&str> = match component(workload) {
                // TUN device, routes, nftables.
                "nat64" | "node" => ["NET_ADMIN"].into(),
                // Port 443 on the host network.
                "proxy" => ["NET_BIND_SERVICE"].into(),
                _ => BTreeSet::new(),
            };
            for container in containers(workload) {
                let caps = &container["securityContext"]["capabilities"];
                let drop: Vec<_> = caps["drop"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                assert_eq!(drop, ["ALL"], "{overlay}/{}: must drop ALL", name(workload));
                for cap in caps["add"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    assert!(
                        allowed.contains(cap),
                        "{overlay}/{}: {cap} is more than it needs",
                        name(workload)
                    );
                }
                assert_eq!(
                    container["securityContext"]["allowPrivilegeEscalation"],
                    Value::Bool(false)
                );
                assert_eq!(
                    container["securityContext"]["readOnlyRootFilesystem"],
                    Value::Bool(true)
                );
                assert!(container["securityContext"]["privileged"].is_null());
            }
        }
    }
}

#[test]
fn probes_hit_the_admin_port_the_shipped_config_listens_on() {
    for overlay in OVERLAYS {
        let objects = render(overlay);
        let configs = shipped_configs(&objects);
        for workload in workloads(&objects) {
            for container in containers(workload) {
                for probe in ["livenessProbe", "readinessProbe"] {
                    assert_eq!(
                        container[probe]["httpGet"]["port"].as_str(),
                        Some("admin"),
                        "{overlay}/{}",
                        name(workload)
                    );
                }
                assert_eq!(
                    container["readinessProbe"]["httpGet"]["path"].as_str(),
                    Some("/readyz")
                );
                assert_eq!(
                    container["livenessProbe"]["httpGet"]["path"].as_str(),
                    Some("/healthz")
                );
                let admin_port = container["ports"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .find(|p| p["name"].as_str() == Some("admin"))
                    .and_then(|p| p["containerPort"].as_u64())
                    .expect("a port named admin");
                let config_map = workload["spec"]["template"]["spec"]["volumes"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .find_map(|v| v["configMap"]["name"].as_str())
                    .expect("a config volume");
                let mut matching = configs
                    .iter()
                    .filter(|(origin, _)| origin.starts_with(&format!("{config_map}/")))
                    .peekable();
                assert!(
                    matching.peek().is_some(),
                    "{overlay}: no config in {config_map}"
                );
                for (origin, text) in matching {
                    let table: toml::Table = text.parse().expect("shipped config is TOML");
                    let listen = table["admin"]["listen"].as_str().expect("admin.listen set");
                    assert!(
                        listen.ends_with(&format!(":{admin_port}")) && listen.starts_with("0.0.0.0"),
                        "{overlay}: {origin} admin.listen {listen} is not reachable on the admin port {admin_port}"
                    );
                }
            }
        }
    }
}

#[test]
fn config_is_mounted_as_a_directory_and_watched() {
    for overlay in OVERLAYS {
        let objects = render(overlay);
        for workload in workloads(&objects) {
            for container in containers(workload) {
                let mounts = container["volumeMounts"].as_sequence().expect("mounts");
                assert!(
                    mounts.iter().all(|m| m["subPath"].is_null()),
                    "{overlay}/{}: subPath hides ConfigMap updates",
                    name(workload)
                );
                assert!(mounts
                    .iter()
                    .any(|m| m["mountPath"].as_str() == Some("/etc/sixgate")));
                let args: Vec<_> = container["args"]
                    .as_sequence()
                    .expect("args")
                    .iter()
                    .filter_map(Value::as_str)
                    .collect();
                assert!(
                    args.contains(&"--watch-config"),
                    "{overlay}/{}: {args:?}",
                    name(workload)
                );
            }
        }
    }
}

#[test]
fn dns64_is_highly_available_without_privileges() {
    let objects = render("ipv6-egress");
    let dns64 = workloads(&objects)
        .into_iter()
        .find(|w| component(w) == "dns64")
        .expect("dns64");
    assert!(dns64["spec"]["replicas"].as_u64() >= Some(2));
    let pod = &dns64["spec"]["template"]["spec"];
    assert!(pod["hostNetwork"].is_null() || pod["hostNetwork"] == Value::Bool(false));
    assert_eq!(pod["securityContext"]["runAsNonRoot"], Value::Bool(true));
    assert!(objects
        .iter()
        .any(|o| kind(o) == "PodDisruptionBudget" && name(o) == "sixgate-dns64"));
    let service = objects
        .iter()
        .find(|o| kind(o) == "Service" && name(o) == "sixgate-dns64")
        .expect("service");
    let protocols: BTreeSet<_> = service["spec"]["ports"]
        .as_sequence()
        .expect("ports")
        .iter()
        .filter(|p| p["port"].as_u64() == Some(53))
        .filter_map(|p| p["protocol"].as_str())
        .collect();
    assert_eq!(protocols, ["TCP", "UDP"].into());
}

#[test]
fn nat64_gateways_each_read_their_own_pool4_slice() {
    let objects = render("ipv6-egress");
    let nat64 = workloads(&objects)
        .into_iter()
        .find(|w| component(w) == "nat64")
        .expect("nat64");
    assert_eq!(kind(nat64), "DaemonSet");
    let pod = &nat64["spec"]["template"]["spec"];
    assert_eq!(pod["hostNetwork"], Value::Bool(true));
    let container = &containers(nat64)[0];
    let args: Vec<_> = container["args"]
        .as_sequence()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(args.contains(&"/etc/sixgate/$(NODE_NAME).toml"), "{args:?}");
    let env = container["env"].as_sequence().expect("env");
    assert!(env.iter().any(|e| e["name"].as_str() == Some("NODE_NAME")
        && e["valueFrom"]["fieldRef"]["fieldPath"].as_str() == Some("spec.nodeName")));
    // Per-node configs must not hand out the same pool4 twice.
    let pools: Vec<String> = shipped_configs(&objects)
        .into_iter()
        .filter(|(origin, _)| origin.starts_with("sixgate-nat64/"))
        .filter_map(|(_, text)| {
            text.parse::<toml::Table>()
                .ok()?
                .get("nat64")?
                .get("pool4")
                .map(ToString::to_string)
        })
        .collect();
    let unique: BTreeSet<_> = pools.iter().collect();
    assert_eq!(
        unique.len(),
        pools.len(),
        "gateways share a pool4: {pools:?}"
    );
}

#[test]
fn the_proxy_grace_period_covers_pre_stop_and_the_drain_deadline() {
    let objects = render("private-link");
    let proxy = workloads(&objects)
        .into_iter()
        .find(|w| component(w) == "proxy")
        .expect("proxy workload");
    let pod = &proxy["spec"]["template"]["spec"];
    let grace = pod["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("a grace period");
    let pre_stop = containers(proxy)[0]["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_u64()
        .unwrap_or(0);
    let (_, config) = shipped_configs(&objects)
        .into_iter()
        .find(|(origin, _)| origin.starts_with("sixgate-proxy/"))
        .expect("the proxy's config");
    let config: toml::Table = config.parse().expect("TOML");
    let drain = config["proxy"]["drain_timeout_secs"]
        .as_integer()
        .expect("drain_timeout_secs set");
    let drain = u64::try_from(drain).expect("non-negative");
    assert!(
        grace >= pre_stop + drain,
        "terminationGracePeriodSeconds {grace} < preStop {pre_stop} + drain {drain}: Kubernetes would kill connections still draining"
    );
}

/// Every `.rs` file under `dir`, recursively.
fn rust_sources(dir: &std::path::Path, out: &mut String) {
    for entry in std::fs::read_dir(dir).expect("read source dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&std::fs::read_to_string(&path).expect("read source"));
        }
    }
}

#[test]
fn the_dashboard_queries_only_metrics_that_sixgate_exports() {
    let path = deploy_dir().join("components/monitoring/sixgate-dashboard.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("dashboard")).expect("JSON");
    let mut sources = String::new();
    rust_sources(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."),
        &mut sources,
    );
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(
        panels.len() >= 10,
        "the dashboard has {} panels",
        panels.len()
    );
    for target in panels
        .iter()
        .flat_map(|p| p["targets"].as_array().expect("targets"))
    {
        let expr = target["expr"].as_str().expect("expr");
        for name in expr
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("sixgate_"))
        {
            assert!(
                sources.contains(&format!("\"{name}\"")),
                "the dashboard queries {name}, which no part exports ({expr})"
            );
        }
    }
}
