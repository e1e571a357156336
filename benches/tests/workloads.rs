//! Every workload, at its CI size, on every runtime: each checks its own result and panics
//! if the work came out wrong (lost tasks, wrong counts, corrupted echoes).

use magpie_benches::{workloads, Family, RuntimeKind, Runtimes, Size};

fn run_family(family: Family) {
    let runtimes = Runtimes::new(2);
    let chosen: Vec<_> = workloads()
        .into_iter()
        .filter(|w| w.family == family)
        .collect();
    assert!(!chosen.is_empty(), "no {family:?} workloads");
    for workload in chosen {
        for kind in RuntimeKind::ALL {
            workload.run(&runtimes, kind, Size::Quick);
        }
    }
}

#[test]
fn scheduler_workloads_check_out_on_every_runtime() {
    run_family(Family::Scheduler);
}

#[test]
fn sync_workloads_check_out_on_every_runtime() {
    run_family(Family::Sync);
}

#[test]
fn timer_workloads_check_out_on_every_runtime() {
    run_family(Family::Timers);
}

#[test]
fn io_workloads_check_out_on_every_runtime() {
    run_family(Family::Io);
}

#[test]
fn workload_names_are_unique() {
    let mut names: Vec<_> = workloads().iter().map(|w| w.name).collect();
    let count = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), count);
}

#[test]
fn runtime_names_round_trip() {
    for kind in RuntimeKind::ALL {
        assert_eq!(RuntimeKind::from_name(kind.name()), Some(kind));
    }
    assert_eq!(RuntimeKind::from_name("glommio"), None);
}

#[test]
fn public_types_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Runtimes>();
    assert_send_sync::<magpie_benches::AsyncExecutorPool>();
    assert_send_sync::<magpie_benches::Workload>();
    assert_send_sync::<RuntimeKind>();
    assert_send_sync::<Size>();
}
