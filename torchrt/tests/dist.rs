//! `torchrt::dist` across real processes: each test below is run once by the harness as rank 0,
//! which re-executes this test binary for the other ranks (the same test, selected with
//! `--exact`, told its rank and the store's port through the environment), as torchrun starts
//! one process per rank. Gloo on the CPU, over 127.0.0.1.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use tch::Tensor;
use torchrt::dist::{free_loopback_port, nccl_built, Backend, ProcessGroup, Store};

const RANK_VAR: &str = "NCSN_DIST_TEST_RANK";
const PORT_VAR: &str = "NCSN_DIST_TEST_PORT";
const TIMEOUT: Duration = Duration::from_secs(15);

/// The other ranks of a test, killed if the test ends without waiting for them (a panic).
struct Peers(Vec<Child>);

impl Peers {
    /// Starts ranks 1..world of `test` against the store on `port`.
    fn spawn(test: &str, world: usize, port: u16) -> Peers {
        let exe = std::env::current_exe().expect("the test binary's path");
        Peers(
            (1..world)
                .map(|rank| {
                    Command::new(&exe)
                        .args([test, "--exact", "--nocapture", "--test-threads=1"])
                        .env(RANK_VAR, rank.to_string())
                        .env(PORT_VAR, port.to_string())
                        .spawn()
                        .expect("re-run the test binary as a peer")
                })
                .collect(),
        )
    }

    fn wait_success(mut self) {
        for (i, child) in self.0.iter_mut().enumerate() {
            let status = child.wait().expect("wait for a peer");
            assert!(status.success(), "rank {} failed: {status}", i + 1);
        }
        self.0.clear();
    }
}

impl Drop for Peers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `Some((rank, port))` in a peer process, None in the harness's own run (rank 0).
fn peer_role() -> Option<(usize, u16)> {
    let rank = std::env::var(RANK_VAR).ok()?.parse().expect("a rank");
    let port = std::env::var(PORT_VAR).ok()?.parse().expect("a port");
    Some((rank, port))
}

/// Runs `body(rank, world, port)` in `world` processes: here as rank 0, the others as children;
/// rank 0 serves the store.
fn on_every_rank(test: &str, world: usize, body: fn(usize, usize, u16)) {
    if let Some((rank, port)) = peer_role() {
        body(rank, world, port);
        return;
    }
    let port = free_loopback_port().unwrap();
    let peers = Peers::spawn(test, world, port);
    body(0, world, port);
    peers.wait_success();
}

fn join(rank: usize, world: usize, port: u16, timeout: Duration) -> (Store, ProcessGroup) {
    let store = Store::tcp("127.0.0.1", port, world, rank == 0, TIMEOUT).unwrap();
    let group = ProcessGroup::new(Backend::Gloo, &store, rank, world, timeout).unwrap();
    (store, group)
}

fn f32s(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t).unwrap()
}

fn f64s(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t).unwrap()
}

/// Sums, broadcasts from every root and a barrier, with values whose sums are exact.
fn collectives(rank: usize, world: usize, port: u16) {
    let (_store, group) = join(rank, world, port, TIMEOUT);
    assert_eq!(group.backend_name().unwrap(), "gloo");
    assert_eq!(
        (group.rank(), group.world(), group.backend()),
        (rank, world, Backend::Gloo)
    );
    let k = (rank + 1) as f64;
    let ranks_sum = (world * (world + 1) / 2) as f64; // Σ (rank + 1)

    let base32 = [1.0f32, 0.5, -1024.0, 0.0009765625];
    let mut a = Tensor::from_slice(&base32) * k;
    group.all_reduce_sum(&mut a).unwrap();
    let want: Vec<f32> = base32.iter().map(|v| v * ranks_sum as f32).collect();
    assert_eq!(f32s(&a), want, "f32 sum on rank {rank}");

    let base64 = [1.0f64, 0.125, 1099511627776.0, -3.0];
    let mut b = Tensor::from_slice(&base64) * k;
    group.all_reduce_sum(&mut b).unwrap();
    let want: Vec<f64> = base64.iter().map(|v| v * ranks_sum).collect();
    assert_eq!(f64s(&b), want, "f64 sum on rank {rank}");

    // Large enough for Gloo's ring to cut it into chunks; integers below 2^24 stay exact.
    let mut big = Tensor::arange(100_000, (tch::Kind::Float, tch::Device::Cpu)) * k;
    group.all_reduce_sum(&mut big).unwrap();
    let want = Tensor::arange(100_000, (tch::Kind::Float, tch::Device::Cpu)) * ranks_sum;
    assert!(big.equal(&want), "large f32 sum on rank {rank}");

    for root in 0..world {
        let mut t = Tensor::from_slice(&[rank as f32 + 10.0, -(rank as f32)]);
        group.broadcast(&mut t, root).unwrap();
        assert_eq!(
            f32s(&t),
            [root as f32 + 10.0, -(root as f32)],
            "broadcast from {root}"
        );
    }
    group.barrier().unwrap();

    // Refused before c10d is reached, so the ranks stay in step.
    let mut strided = Tensor::zeros([2, 3], (tch::Kind::Float, tch::Device::Cpu)).tr();
    let err = group.all_reduce_sum(&mut strided).unwrap_err().to_string();
    assert!(
        err.contains("all_reduce_sum") && err.contains("contiguous"),
        "{err}"
    );
    let mut t = Tensor::zeros([1], (tch::Kind::Float, tch::Device::Cpu));
    let err = group.broadcast(&mut t, world).unwrap_err().to_string();
    assert!(
        err.contains(&format!("broadcast from rank {world}")),
        "{err}"
    );

    group.barrier().unwrap();
}

#[test]
fn gloo_collectives_across_two_processes() {
    on_every_rank("gloo_collectives_across_two_processes", 2, collectives);
}

#[test]
fn gloo_collectives_across_three_processes() {
    on_every_rank("gloo_collectives_across_three_processes", 3, collectives);
}

/// Two groups over one TCPStore, each under its own prefix (as torchrun's
/// `/worker/attempt_N`), used in turn: each sums only its own tensors.
fn two_groups(rank: usize, world: usize, port: u16) {
    let store = Store::tcp("127.0.0.1", port, world, rank == 0, TIMEOUT).unwrap();
    let first = ProcessGroup::new(
        Backend::Gloo,
        &store.prefixed("first"),
        rank,
        world,
        TIMEOUT,
    )
    .unwrap();
    let second = ProcessGroup::new(
        Backend::Gloo,
        &store.prefixed("second"),
        rank,
        world,
        TIMEOUT,
    )
    .unwrap();
    drop(store); // the groups keep what they need of it
    for round in 0..2 {
        let mut a = Tensor::from_slice(&[rank as f64 + 1.0]);
        let mut b = Tensor::from_slice(&[100.0 * (rank as f64 + 1.0)]);
        first.all_reduce_sum(&mut a).unwrap();
        second.all_reduce_sum(&mut b).unwrap();
        assert_eq!(
            (f64s(&a), f64s(&b)),
            (vec![3.0], vec![300.0]),
            "round {round}"
        );
    }
}

#[test]
fn prefixed_stores_keep_two_groups_apart() {
    on_every_rank("prefixed_stores_keep_two_groups_apart", 2, two_groups);
}

const DEAD_PEER: &str = "a_peer_that_dies_is_an_error_not_a_hang";

/// Rank 1 takes part in one sum, then its process exits without dropping anything (as a
/// crashed or killed worker would); rank 0's next sum must fail, well within the timeout.
#[test]
fn a_peer_that_dies_is_an_error_not_a_hang() {
    let timeout = Duration::from_secs(5);
    if let Some((rank, port)) = peer_role() {
        let (_store, group) = join(rank, 2, port, timeout);
        group
            .all_reduce_sum(&mut Tensor::from_slice(&[1.0f32]))
            .unwrap();
        std::process::exit(0);
    }
    let port = free_loopback_port().unwrap();
    let peers = Peers::spawn(DEAD_PEER, 2, port);
    let (_store, group) = join(0, 2, port, timeout);
    let mut t = Tensor::from_slice(&[1.0f32]);
    group.all_reduce_sum(&mut t).unwrap();
    assert_eq!(f32s(&t), [2.0]);
    peers.wait_success(); // it has exited: its sockets are closed

    let started = Instant::now();
    let err = group.all_reduce_sum(&mut t).unwrap_err().to_string();
    let took = started.elapsed();
    eprintln!("after {took:?}: {err}");
    assert!(took < timeout + Duration::from_secs(2), "took {took:?}");
    assert!(
        err.starts_with("libtorch c10d: all_reduce_sum on rank 0 of 2 (gloo): "),
        "{err}"
    );
    // The group still answers, with errors, and drops cleanly.
    assert!(group.barrier().unwrap_err().to_string().contains("barrier"));
}

const SILENT_PEER: &str = "a_peer_that_stops_answering_times_out";

/// Rank 1 joins, then never calls the collective (a hung worker): rank 0's sum must fail after
/// the group's timeout, which shows the timeout given reaches Gloo.
#[test]
fn a_peer_that_stops_answering_times_out() {
    let timeout = Duration::from_secs(3);
    if let Some((rank, port)) = peer_role() {
        let (_store, _group) = join(rank, 2, port, timeout);
        std::thread::sleep(Duration::from_secs(30)); // killed by rank 0 long before
        std::process::exit(0);
    }
    let port = free_loopback_port().unwrap();
    let _peers = Peers::spawn(SILENT_PEER, 2, port);
    let (_store, group) = join(0, 2, port, timeout);
    let started = Instant::now();
    let err = group
        .all_reduce_sum(&mut Tensor::from_slice(&[1.0f32]))
        .unwrap_err()
        .to_string();
    let took = started.elapsed();
    eprintln!("after {took:?}: {err}");
    assert!(
        took >= timeout - Duration::from_millis(500) && took < timeout + Duration::from_secs(3),
        "took {took:?}"
    );
    assert!(
        err.contains("all_reduce_sum on rank 0 of 2 (gloo)"),
        "{err}"
    );
}

#[test]
fn a_store_nobody_serves_is_an_error() {
    let started = Instant::now();
    let err = Store::tcp(
        "127.0.0.1",
        free_loopback_port().unwrap(),
        2,
        false,
        Duration::from_secs(1),
    )
    .err()
    .expect("no server")
    .to_string();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(err.contains("joining the TCPStore at 127.0.0.1:"), "{err}");
}

/// Without a GPU (or without CUDA in libtorch) NCCL is a clear error; with both, a group of one
/// sums, broadcasts and meets at a barrier on the GPU.
#[test]
fn nccl_needs_a_gpu_and_says_so() {
    let store = Store::tcp("127.0.0.1", free_loopback_port().unwrap(), 1, true, TIMEOUT).unwrap();
    let made = ProcessGroup::new(Backend::Nccl, &store, 0, 1, TIMEOUT);
    if nccl_built() && tch::Cuda::is_available() {
        let group = made.unwrap();
        assert_eq!(group.backend_name().unwrap(), "nccl");
        let mut t = Tensor::from_slice(&[1.5f32, -2.0]).to(tch::Device::Cuda(0));
        group.all_reduce_sum(&mut t).unwrap();
        group.broadcast(&mut t, 0).unwrap();
        group.barrier().unwrap();
        assert_eq!(f32s(&t.to(tch::Device::Cpu)), [1.5, -2.0]);
        return;
    }
    let err = made.err().expect("NCCL without a GPU").to_string();
    eprintln!("{err}");
    assert!(
        err.starts_with("libtorch c10d: creating the nccl process group (rank 0 of 1): "),
        "{err}"
    );
    let why = if nccl_built() {
        "needs a CUDA GPU"
    } else {
        "built against a libtorch without CUDA/NCCL"
    };
    assert!(err.contains(why), "{err}");
}
