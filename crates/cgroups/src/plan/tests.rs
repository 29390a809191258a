use super::*;
use crate::controller::Controller::*;

pub(crate) fn hybrid_here() -> Bindings {
    Bindings {
        kind: LayoutKind::Hybrid,
        v1: vec![Cpu, Cpuacct, Cpuset, Memory, Devices, Freezer, Blkio, Pids],
        v2: vec!["hugetlb".into()],
        unified: true,
    }
}

pub(crate) fn pure_v2() -> Bindings {
    Bindings {
        kind: LayoutKind::V2,
        v1: vec![],
        v2: "cpuset cpu io memory hugetlb pids rdma misc"
            .split(' ')
            .map(str::to_string)
            .collect(),
        unified: true,
    }
}

pub(crate) fn v1_comounted() -> Bindings {
    Bindings {
        kind: LayoutKind::V1,
        v1: Controller::ALL.to_vec(),
        v2: vec![],
        unified: false,
    }
}

fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

fn plan(json: &str, b: &Bindings, mode: Mode) -> Result<Plan, ResourceErrors> {
    build(
        &res(json),
        &HostInfo::default(),
        b,
        mode,
        PlanOptions::default(),
    )
}

fn writes(p: &Plan) -> Vec<String> {
    p.ops
        .iter()
        .filter(|op| !matches!(op, Op::Devices { .. }))
        .map(|op| op.to_string())
        .collect()
}

fn err_fields(r: Result<Plan, ResourceErrors>) -> Vec<String> {
    r.unwrap_err().0.into_iter().map(|e| e.field).collect()
}

#[test]
fn empty_create_is_only_the_device_policy() {
    for (b, v) in [
        (hybrid_here(), Version::V1),
        (pure_v2(), Version::V2),
        (v1_comounted(), Version::V1),
    ] {
        let p = plan("{}", &b, Mode::Create).unwrap();
        assert_eq!(p.ops.len(), 1);
        let Op::Devices { version, state, .. } = &p.ops[0] else {
            panic!("{:?}", p.ops)
        };
        assert_eq!(*version, v);
        assert!(!state.default_allow);
        assert_eq!(state.exceptions.len(), 11);
        assert!(p.v2_controllers.is_empty());
    }
    let p = plan("{}", &pure_v2(), Mode::Update).unwrap();
    assert!(p.ops.is_empty());
    let p = build(
        &res("{}"),
        &HostInfo::default(),
        &pure_v2(),
        Mode::Create,
        PlanOptions { skip_devices: true },
    )
    .unwrap();
    assert!(p.ops.is_empty());
}

const DOCKER_UPDATE: &str = r#"{"memory":{"limit":67108864,"reservation":0,"swap":67108864,"kernel":0},
    "cpu":{"shares":512,"quota":0,"period":0},"blockIO":{"weight":0}}"#;

#[test]
fn docker_update_body_on_v1() {
    let p = plan(DOCKER_UPDATE, &hybrid_here(), Mode::Update).unwrap();
    assert_eq!(
        writes(&p),
        [
            "memory limit 67108864, memory+swap 67108864",
            "cpu.shares = \"512\""
        ]
    );
}

#[test]
fn docker_update_body_on_v2_converts() {
    let p = plan(DOCKER_UPDATE, &pure_v2(), Mode::Update).unwrap();
    assert_eq!(
        writes(&p),
        [
            "memory.max = \"67108864\"",
            "memory.swap.max = \"0\" (if present)",
            "cpu.weight = \"59\""
        ]
    );
    assert_eq!(p.v2_controllers, ["memory", "cpu"]);
}

#[test]
fn hybrid_routes_each_controller_where_it_is_bound() {
    let p = plan(
        r#"{"memory":{"limit":1048576},"hugepageLimits":[{"pageSize":"2MB","limit":4194304}],"pids":{"limit":-1}}"#,
        &hybrid_here(),
        Mode::Create,
    )
    .unwrap();
    let by_version: Vec<(Version, String)> = p
        .ops
        .iter()
        .filter(|op| !matches!(op, Op::Devices { .. }))
        .map(|op| (op.version(), op.to_string()))
        .collect();
    assert_eq!(
        by_version,
        [
            (
                Version::V1,
                "memory limit 1048576, memory+swap 0".to_string()
            ),
            (Version::V1, "pids.max = \"max\"".to_string()),
            (Version::V2, "hugetlb.2MB.max = \"4194304\"".to_string()),
            (
                Version::V2,
                "hugetlb.2MB.rsvd.max = \"4194304\" (if present)".to_string()
            ),
        ]
    );
    assert_eq!(p.v2_controllers, ["hugetlb"]);
}

#[test]
fn unavailable_controllers_are_named() {
    let r = plan(
        r#"{"network":{"classID":1048577}}"#,
        &hybrid_here(),
        Mode::Create,
    );
    let e = r.unwrap_err();
    assert_eq!(e.0[0].field, "linux.resources.network.classID");
    assert!(
        e.0[0]
            .message
            .contains("net_cls cgroup controller is not available"),
        "{e}"
    );
    assert!(e.0[0].message.contains("v2 controllers: hugetlb"), "{e}");
    // The same on a v1 host with net_cls mounted is fine.
    let p = plan(
        r#"{"network":{"classID":1048577,"priorities":[{"name":"eth0","priority":5}]}}"#,
        &v1_comounted(),
        Mode::Create,
    )
    .unwrap();
    assert_eq!(
        writes(&p),
        [
            "net_cls.classid = \"1048577\"",
            "net_prio.ifpriomap = \"eth0 5\""
        ]
    );
    // Default values never need the controller.
    plan(
        r#"{"network":{"classID":0,"priorities":[]},"pids":{"limit":0},"cpu":{"idle":0}}"#,
        &Bindings {
            kind: LayoutKind::V1,
            v1: vec![Devices],
            v2: vec![],
            unified: false,
        },
        Mode::Create,
    )
    .unwrap();
    // On v2 the controller is called io, not blkio.
    let mut b = pure_v2();
    b.v2.retain(|c| c != "io");
    let e = plan(r#"{"blockIO":{"weight":500}}"#, &b, Mode::Create).unwrap_err();
    assert!(e.0[0].message.contains("the io cgroup controller"), "{e}");
}

#[test]
fn v2_only_and_v1_only_settings() {
    assert_eq!(
        err_fields(plan(
            r#"{"memory":{"swappiness":10,"disableOOMKiller":true}}"#,
            &pure_v2(),
            Mode::Create
        )),
        [
            "linux.resources.memory.swappiness",
            "linux.resources.memory.disableOOMKiller"
        ]
    );
    assert_eq!(
        err_fields(plan(
            r#"{"cpu":{"realtimeRuntime":1000,"realtimePeriod":10000}}"#,
            &pure_v2(),
            Mode::Create
        )),
        [
            "linux.resources.cpu.realtimeRuntime",
            "linux.resources.cpu.realtimePeriod"
        ]
    );
    let p = plan(
        r#"{"memory":{"swappiness":10,"disableOOMKiller":true,"reservation":-1},"cpu":{"realtimeRuntime":1000,"realtimePeriod":10000}}"#,
        &hybrid_here(),
        Mode::Create,
    )
    .unwrap();
    assert_eq!(
        writes(&p),
        [
            "memory.soft_limit_in_bytes = \"-1\"",
            "memory.swappiness = \"10\"",
            "memory.oom_control = \"1\"",
            "cpu.rt_period_us = \"10000\"",
            "cpu.rt_runtime_us = \"1000\""
        ]
    );
}

#[test]
fn kernel_tcp_is_a_v1_memory_limit() {
    let p = plan(
        r#"{"memory":{"kernelTCP":8388608}}"#,
        &hybrid_here(),
        Mode::Create,
    )
    .unwrap();
    assert_eq!(writes(&p), ["memory.kmem.tcp.limit_in_bytes = \"8388608\""]);
    assert_eq!(
        err_fields(plan(
            r#"{"memory":{"kernelTCP":8388608}}"#,
            &pure_v2(),
            Mode::Create
        )),
        ["linux.resources.memory.kernelTCP"]
    );
}

#[test]
fn v2_swap_without_limit_on_update_is_refused() {
    let e = plan(r#"{"memory":{"swap":4096}}"#, &pure_v2(), Mode::Update).unwrap_err();
    assert_eq!(e.0[0].field, "linux.resources.memory.swap");
    assert!(
        e.0[0]
            .message
            .starts_with("linux.resources.memory.swap (4096)"),
        "{e}"
    );
    // v1 can write memsw alone.
    let p = plan(r#"{"memory":{"swap":4096}}"#, &hybrid_here(), Mode::Update).unwrap();
    assert_eq!(writes(&p), ["memory limit 0, memory+swap 4096"]);
    // Unlimited memory implies unlimited swap on v2.
    let p = plan(r#"{"memory":{"limit":-1}}"#, &pure_v2(), Mode::Update).unwrap();
    assert_eq!(
        writes(&p),
        [
            "memory.max = \"max\"",
            "memory.swap.max = \"max\" (if present)"
        ]
    );
    let p = plan(
        r#"{"memory":{"limit":1000000,"swap":3000000}}"#,
        &pure_v2(),
        Mode::Create,
    )
    .unwrap();
    assert_eq!(
        writes(&p),
        ["memory.max = \"1000000\"", "memory.swap.max = \"2000000\""]
    );
}

#[test]
fn check_before_update_only_on_update() {
    let j = r#"{"memory":{"limit":1000000,"checkBeforeUpdate":true}}"#;
    let p = plan(j, &hybrid_here(), Mode::Update).unwrap();
    assert_eq!(
        p.ops[0],
        Op::CheckMemoryUsage {
            version: Version::V1,
            limit: 1_000_000
        }
    );
    let p = plan(j, &hybrid_here(), Mode::Create).unwrap();
    assert!(
        !p.ops
            .iter()
            .any(|o| matches!(o, Op::CheckMemoryUsage { .. }))
    );
}

#[test]
fn cpu_plans() {
    let j = r#"{"cpu":{"shares":1024,"quota":50000,"period":100000,"burst":10000,"idle":1,"cpus":"0","mems":"0"}}"#;
    let p = plan(j, &pure_v2(), Mode::Create).unwrap();
    assert_eq!(
        writes(&p),
        [
            "cpuset.cpus = \"0\"",
            "cpuset.mems = \"0\"",
            "cpu.weight = \"100\"",
            "cpu.max 50000 100000 burst Some(10000)",
            "cpu.idle = \"1\""
        ]
    );
    assert_eq!(p.v2_controllers, ["cpuset", "cpu"]);
    let p = plan(j, &hybrid_here(), Mode::Create).unwrap();
    assert_eq!(
        writes(&p),
        [
            "cpuset.cpus = \"0\"",
            "cpuset.mems = \"0\"",
            "cpu.shares = \"1024\"",
            "cfs quota 50000 period 100000 burst Some(10000)",
            "cpu.idle = \"1\""
        ]
    );
    assert!(p.sets_v1(Cpuset, "cpuset.cpus"));
    assert!(p.v2_controllers.is_empty());
}

#[test]
fn blkio_plans() {
    let j = r#"{"blockIO":{"weight":500,"weightDevice":[{"major":8,"minor":0,"weight":300}],
        "throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1048576}],
        "throttleWriteIOPSDevice":[{"major":8,"minor":0,"rate":0}]}}"#;
    let p = plan(j, &pure_v2(), Mode::Create).unwrap();
    assert_eq!(
        writes(&p),
        [
            "io weight 500 devices [(8, 0, 300)]",
            "io.max = \"8:0 rbps=1048576\"",
            "io.max = \"8:0 wiops=max\""
        ]
    );
    let p = plan(j, &hybrid_here(), Mode::Create).unwrap();
    assert_eq!(
        writes(&p),
        [
            "blkio weight 500 devices [(8, 0, 300)]",
            "blkio.throttle.read_bps_device = \"8:0 1048576\"",
            "blkio.throttle.write_iops_device = \"8:0 0\""
        ]
    );
    assert_eq!(
        err_fields(plan(
            r#"{"blockIO":{"leafWeight":100}}"#,
            &pure_v2(),
            Mode::Create
        )),
        ["linux.resources.blockIO.leafWeight"]
    );
}

#[test]
fn unified_keys() {
    let e = plan(
        r#"{"unified":{"memory.high":"1"}}"#,
        &v1_comounted(),
        Mode::Create,
    )
    .unwrap_err();
    assert!(e.0[0].message.contains("needs cgroup v2"), "{e}");
    // An empty map is fine anywhere.
    plan(r#"{"unified":{}}"#, &v1_comounted(), Mode::Create).unwrap();
    // Hybrid: memory is v1 here, hugetlb is v2.
    let e = plan(
        r#"{"unified":{"memory.high":"1"}}"#,
        &hybrid_here(),
        Mode::Create,
    )
    .unwrap_err();
    assert!(
        e.0[0].message.contains("bound to a cgroup v1 hierarchy"),
        "{e}"
    );
    // v2 names of v1 controllers too (io is blkio on v1).
    let e = plan(
        r#"{"unified":{"io.max":"8:0 rbps=1"}}"#,
        &hybrid_here(),
        Mode::Create,
    )
    .unwrap_err();
    assert!(
        e.0[0].message.contains("bound to a cgroup v1 hierarchy"),
        "{e}"
    );
    let e = plan(
        r#"{"unified":{"rdma.max":"x"}}"#,
        &hybrid_here(),
        Mode::Create,
    )
    .unwrap_err();
    assert!(e.0[0].message.contains("does not offer it"), "{e}");
    let p = plan(
        r#"{"unified":{"hugetlb.2MB.max":"0","cgroup.max.depth":"3"}}"#,
        &hybrid_here(),
        Mode::Update,
    )
    .unwrap();
    assert_eq!(
        writes(&p),
        [
            "cgroup.max.depth = \"3\" (unified)",
            "hugetlb.2MB.max = \"0\" (unified)"
        ]
    );
    assert_eq!(p.v2_controllers, ["hugetlb"]);
    // Unified comes last so it overrides converted values.
    let p = plan(
        r#"{"cpu":{"shares":2048},"unified":{"cpu.weight":"7"}}"#,
        &pure_v2(),
        Mode::Update,
    )
    .unwrap();
    assert_eq!(
        writes(&p),
        ["cpu.weight = \"174\"", "cpu.weight = \"7\" (unified)"]
    );
}

#[test]
fn devices_without_any_enforcement_point_is_an_error() {
    let b = Bindings {
        kind: LayoutKind::V1,
        v1: vec![Memory],
        v2: vec![],
        unified: false,
    };
    let e = plan("{}", &b, Mode::Create).unwrap_err();
    assert_eq!(e.0[0].field, "linux.resources.devices");
    // Update without devices does not need it.
    plan("{}", &b, Mode::Update).unwrap();
}

#[test]
fn validation_errors_come_first() {
    let e = plan(
        r#"{"memory":{"limit":2048,"swap":1024}}"#,
        &hybrid_here(),
        Mode::Create,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "linux.resources.memory.swap (1024) is lower than memory.limit (2048)"
    );
}
