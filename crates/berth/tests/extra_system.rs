//! volume create/ls/inspect/rm/prune, container prune, info, version and events through
//! the real binary.

mod support_extra;

use support_extra::{Env, can_run};

#[test]
fn volumes_like_docker() {
    if !can_run("volume") {
        return;
    }
    let env = Env::new();
    assert_eq!(env.ok(&["volume", "create", "data"]).trim(), "data");
    // Creating an existing name returns it (docker does not fail).
    assert_eq!(env.ok(&["volume", "create", "data"]).trim(), "data");
    let anonymous = env
        .ok(&["volume", "create", "--label", "team=db"])
        .trim()
        .to_string();
    assert_eq!(anonymous.len(), 64);
    let ls = env.ok(&["volume", "ls"]);
    assert!(
        ls.lines().next().unwrap().starts_with("DRIVER") && ls.contains("VOLUME NAME"),
        "{ls}"
    );
    assert!(ls.contains("local") && ls.contains("data") && ls.contains(&anonymous));
    assert_eq!(
        env.ok(&["volume", "ls", "-q", "--filter", "label=team=db"])
            .trim(),
        anonymous
    );
    let doc: serde_json::Value =
        serde_json::from_str(&env.ok(&["volume", "inspect", "data"])).unwrap();
    let mountpoint = env.root.join("volumes/data/_data");
    assert_eq!(doc[0]["Mountpoint"], mountpoint.to_str().unwrap());
    assert_eq!(doc[0]["Driver"], "local");
    assert!(mountpoint.is_dir());
    assert_eq!(
        env.ok(&["volume", "inspect", "--format", "{{.Name}}", "data"])
            .trim(),
        "data"
    );
    assert!(
        env.fails(&["volume", "inspect", "nosuch"], 125)
            .contains("nosuch")
    );
    assert!(
        env.fails(&["volume", "create", "../up"], 125)
            .contains("../up")
    );
    assert_eq!(env.ok(&["volume", "rm", "data"]).trim(), "data");
    assert!(!env.root.join("volumes/data").exists());
    // prune without -f and without a terminal: asks, reads no, removes nothing.
    env.ok(&["volume", "prune"]);
    assert!(env.ok(&["volume", "ls", "-q"]).contains(&anonymous));
    assert_eq!(env.ok(&["volume", "prune", "-f"]).trim(), anonymous);
    assert_eq!(env.ok(&["volume", "ls", "-q"]), "");
    let events = env.ok(&[
        "events",
        "--since",
        "1m",
        "--until",
        "0s",
        "--filter",
        "type=volume",
    ]);
    assert_eq!(
        events
            .lines()
            .filter(|l| l.contains("volume create"))
            .count(),
        2,
        "{events}"
    );
    assert_eq!(
        events
            .lines()
            .filter(|l| l.contains("volume destroy"))
            .count(),
        2,
        "{events}"
    );
}

#[test]
fn container_prune_info_version_events() {
    if !can_run("prune/info/events") {
        return;
    }
    let env = Env::new();
    let done = env.run_d("done", &[], &["true"]);
    let running = env.run_d("running", &[], &["sleep", "1000"]);
    assert_eq!(env.ok(&["wait", "done"]).trim(), "0");
    env.ok(&["pause", "running"]);
    env.ok(&["unpause", "running"]);

    let info: serde_json::Value =
        serde_json::from_str(&env.ok(&["info", "--format", "json"])).unwrap();
    assert_eq!(info["Store"]["ContainerStore"]["Number"], 2);
    assert_eq!(info["Store"]["ContainerStore"]["Running"], 1);
    assert_eq!(info["Store"]["GraphRoot"], env.root.to_str().unwrap());
    assert!(!info["Host"]["Kernel"].as_str().unwrap().is_empty());
    assert_eq!(
        env.ok(&["info", "--format", "{{.Store.ContainerStore.Stopped}}"])
            .trim(),
        "1"
    );
    assert!(env.ok(&["info"]).contains("CgroupLayout:"));
    let version = env.ok(&["version"]);
    assert!(
        version.contains("Client:")
            && version.contains("Server:")
            && version.contains(env!("CARGO_PKG_VERSION")),
        "{version}"
    );
    assert_eq!(
        env.ok(&["version", "--format", "{{.Client.Version}}"])
            .trim(),
        env!("CARGO_PKG_VERSION")
    );

    // events: from the records (create, start, die) and the log (pause, unpause).
    let all = env.ok(&["events", "--since", "1m", "--until", "0s"]);
    for want in [
        "container create",
        "container start",
        "container die",
        "container pause",
        "container unpause",
    ] {
        assert!(all.contains(want), "{want} missing:\n{all}");
    }
    let dies = env.ok(&[
        "events",
        "--since",
        "1m",
        "--until",
        "0s",
        "--filter",
        "event=die",
        "--format",
        "json",
    ]);
    let die: serde_json::Value = serde_json::from_str(dies.lines().next().unwrap()).unwrap();
    assert_eq!(die["Actor"]["ID"], done.as_str());
    assert_eq!(die["Actor"]["Attributes"]["exitCode"], "0");
    let mine = env.ok(&[
        "events",
        "--since",
        "1m",
        "--until",
        "0s",
        "--filter",
        "container=running",
        "--format",
        "{{.Action}}",
    ]);
    assert_eq!(
        mine.lines().collect::<Vec<_>>(),
        ["create", "start", "pause", "unpause"],
        "{mine}"
    );
    assert!(
        env.fails(
            &["events", "--since", "yesterday-ish", "--until", "0s"],
            125
        )
        .contains("--since")
    );

    // container prune: the exited one goes, the running one stays.
    let pruned = env.ok(&["container", "prune", "-f"]);
    assert_eq!(pruned.trim(), done);
    let left = env.ok(&["ps", "-aq", "--no-trunc"]);
    assert_eq!(left.trim(), running);
    assert!(!env.root.join("containers").join(&done).exists());
}

#[test]
fn system_df_and_prune() {
    if !can_run("system df/prune") {
        return;
    }
    let env = Env::with_image();
    env.ok(&[
        "run",
        "--name",
        "wrote",
        "bb",
        "sh",
        "-c",
        "head -c 100000 /dev/zero > /big",
    ]);
    let running = env
        .ok(&["run", "-d", "--name", "up", "bb", "sleep", "1000"])
        .trim()
        .to_string();
    env.ok(&["volume", "create", "spare"]);
    let df = env.ok(&["system", "df"]);
    assert!(
        df.starts_with("TYPE")
            && df.contains("Images")
            && df.contains("Containers")
            && df.contains("Local Volumes"),
        "{df}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["system", "df", "--format", "json"])).unwrap();
    let containers = json
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["Type"] == "Containers")
        .unwrap();
    assert_eq!(containers["TotalCount"], 2);
    assert_eq!(containers["Active"], 1);
    assert!(
        containers["RawReclaimable"].as_u64().unwrap() >= 100_000,
        "{containers}"
    );
    let out = env.ok(&["system", "prune", "-f", "--volumes"]);
    assert!(
        out.contains("Deleted Containers")
            && out.contains("Deleted Volumes")
            && out.contains("spare"),
        "{out}"
    );
    assert_eq!(env.ok(&["ps", "-aq", "--no-trunc"]).trim(), running);
    // The image is used by the running container: it stays.
    assert!(env.ok(&["images", "-q"]).lines().count() >= 1);
    assert!(
        env.ok(&["system", "info", "--format", "{{.Store.ImageStore.Number}}"])
            .trim()
            != "0"
    );
}
