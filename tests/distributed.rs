//! Data-parallel `ncsn train` (issue 16) with two and three CPU processes over libtorch's Gloo
//! backend, launched the ways users launch them: torchrun (its agent hosts the store), srun's
//! variables, and the plain WORLD_SIZE/RANK/MASTER_ADDR/MASTER_PORT environment.
//!
//! What is checked: N ranks × B/N rows take the steps one process takes with B (losses and
//! weights within float32 rounding: only the order of the gradient sum differs), uneven shares
//! and a rank with no row of an epoch's short last batch included; a run checkpointed at one
//! world size resumes at another on the same sequence; a signal to one rank stops every rank
//! after the same step with rank 0's checkpoint; a rank that dies ends the others with an
//! error naming the collective instead of a hang.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{losses, ncsn, train_args};
use tch::Tensor;

struct Run {
    data: PathBuf,
    cfg: PathBuf,
    _tmp: tempfile::TempDir,
}

/// 22 training images of 8×8 (5 batches of 4 and one of 2 per epoch), the tiny network.
fn setup(n_iters: u64, snapshot_freq: u64) -> Run {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    testkit::datasets::id_dataset(&data, 8, 22, 2, 4);
    let cfg = common::tiny_config(tmp.path(), n_iters, snapshot_freq, false);
    Run {
        data,
        cfg,
        _tmp: tmp,
    }
}

impl Run {
    fn work(&self, name: &str) -> PathBuf {
        self._tmp.path().join(name)
    }

    fn args(&self, work: &Path, extra: &[&str]) -> Vec<String> {
        let mut a = vec!["--snapshot-samples", "0", "--quiet", "--threads", "1"];
        a.extend_from_slice(extra);
        train_args(&self.cfg, &self.data, work, &a)
    }

    /// One process.
    fn single(&self, work: &Path, extra: &[&str]) -> Output {
        ncsn().args(self.args(work, extra)).output().unwrap()
    }

    /// `world` processes with the environment torchrun gives its workers, rank 0 serving the
    /// store (as under `torch.distributed.launch` or a hand-made launcher).
    fn spawn_ranks(&self, world: usize, work: &Path, extra: &[&str]) -> Vec<Child> {
        self.spawn_as(["WORLD_SIZE", "RANK", "LOCAL_RANK"], world, work, extra)
    }

    /// `world` processes told their world size, rank and local rank in the variables `names`
    /// (torchrun's, or srun's), with MASTER_ADDR and MASTER_PORT.
    fn spawn_as(&self, names: [&str; 3], world: usize, work: &Path, extra: &[&str]) -> Vec<Child> {
        let port = torchrt::dist::free_loopback_port().unwrap().to_string();
        (0..world)
            .map(|rank| {
                ncsn()
                    .args(self.args(work, extra))
                    .env(names[0], world.to_string())
                    .env(names[1], rank.to_string())
                    .env(names[2], rank.to_string())
                    .env("MASTER_ADDR", "127.0.0.1")
                    .env("MASTER_PORT", &port)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect()
    }

    fn ranks(&self, world: usize, work: &Path, extra: &[&str]) -> Vec<Output> {
        self.spawn_ranks(world, work, extra)
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect()
    }
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Metrics lines written so far (0 before the file exists).
fn lines(work: &Path) -> usize {
    trainer::metrics::read(&work.join("metrics.jsonl")).map_or(0, |r| r.len())
}

fn assert_close_losses(got: &[(u64, f64)], want: &[(u64, f64)], what: &str) {
    assert_eq!(
        got.iter().map(|l| l.0).collect::<Vec<_>>(),
        want.iter().map(|l| l.0).collect::<Vec<_>>(),
        "{what}: steps"
    );
    for ((step, a), (_, b)) in got.iter().zip(want) {
        assert!(
            (a - b).abs() <= 1e-4 * b.abs().max(1e-3),
            "{what}: step {step}: loss {a} vs {b}"
        );
    }
}

/// The latest checkpoint's tensors (model, EMA and Adam's moments) by name.
fn weights(work: &Path) -> Vec<(String, Tensor)> {
    let file = trainer::checkpoint::resolve(work).unwrap();
    let mut t = trainer::checkpoint::read_tensors(&file).unwrap();
    t.sort_by(|a, b| a.0.cmp(&b.0));
    t
}

fn assert_close_weights(a: &Path, b: &Path) {
    let (wa, wb) = (weights(a), weights(b));
    assert_eq!(wa.len(), wb.len());
    for ((na, ta), (nb, tb)) in wa.iter().zip(&wb) {
        assert_eq!(na, nb);
        if ta.kind() == tch::Kind::Int64 {
            assert!(ta.equal(tb), "{na}");
            continue;
        }
        let diff = (ta - tb).abs().max().double_value(&[]);
        let scale = tb.abs().max().double_value(&[]).max(1e-6);
        assert!(diff <= 1e-4 * scale, "{na}: max |Δ| {diff} (scale {scale})");
    }
}

/// 2 ranks × 2 rows and 3 ranks × (2, 1, 1) rows train as 1 process × 4 rows: the same losses
/// and weights over 8 steps, across an epoch boundary where the short batch of 2 rows leaves
/// rank 2 of 3 without a row. Only rank 0 writes.
#[test]
fn ranks_take_the_steps_of_one_process() {
    let run = setup(8, 4);
    let one = run.work("one");
    ok(&run.single(&one, &[]), "one process");
    let want = losses(&one);
    assert_eq!(want.len(), 8);
    for world in [2usize, 3] {
        let work = run.work(&format!("world{world}"));
        for (rank, out) in run.ranks(world, &work, &[]).iter().enumerate() {
            ok(out, &format!("rank {rank} of {world}"));
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert_eq!(
                stdout.contains("step 8:"),
                rank == 0,
                "rank {rank} of {world} reports: {stdout}"
            );
        }
        assert_close_losses(&losses(&work), &want, &format!("world {world}"));
        assert_close_weights(&work, &one);
        // One checkpoint per snapshot, from rank 0 alone.
        let ckpts: Vec<_> = std::fs::read_dir(work.join("checkpoints"))
            .unwrap()
            .filter_map(|e| {
                let n = e.unwrap().file_name().into_string().unwrap();
                n.ends_with(".safetensors").then_some(n)
            })
            .collect();
        assert_eq!(ckpts.len(), 2, "{ckpts:?}");
    }
}

/// The one-GPU speed settings hold across ranks: bf16 autocast and channels-last weights and
/// gradients (flattened for the all-reduce in the standard order on every rank) train as
/// one process with the same settings, within bf16's rounding.
#[test]
fn ranks_take_the_steps_of_one_process_in_bf16_channels_last() {
    let run = setup(4, 4);
    let speed = ["--precision", "bf16", "--channels-last"];
    let one = run.work("one");
    ok(&run.single(&one, &speed), "one process");
    let work = run.work("two");
    for out in run.ranks(2, &work, &speed) {
        ok(&out, "2 ranks, bf16 + channels-last");
    }
    let (got, want) = (losses(&work), losses(&one));
    assert_eq!(got.len(), 4);
    for ((step, a), (_, b)) in got.iter().zip(&want) {
        assert!(
            (a - b).abs() <= 2e-2 * b.abs(),
            "step {step}: loss {a} vs {b}"
        );
    }
}

/// Checkpointed at 2 ranks after 4 steps, resumed by 1 process and by 3 ranks: the same
/// sequence as the run that never stopped (the data cursor counts global rows).
#[test]
fn a_run_resumes_at_another_world_size() {
    let run = setup(8, 4);
    let one = run.work("one");
    ok(&run.single(&one, &[]), "one process");
    let want = losses(&one);
    for (name, world_after) in [("to1", 1usize), ("to3", 3)] {
        let work = run.work(name);
        for out in run.ranks(2, &work, &["--n-iters", "4"]) {
            ok(&out, "first half at 2 ranks");
        }
        if world_after == 1 {
            // Without --resume, rank 0 refuses the workdir and the other rank says why it stops.
            let refused = run.ranks(2, &work, &[]);
            let stderr: Vec<_> = refused
                .iter()
                .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                .collect();
            assert!(refused.iter().all(|o| !o.status.success()));
            assert!(stderr[0].contains("pass --resume"), "{}", stderr[0]);
            assert!(stderr[1].contains("rank 1 of 2"), "{}", stderr[1]);
            ok(&run.single(&work, &["--resume"]), "resumed by one process");
        } else {
            for out in run.ranks(world_after, &work, &["--resume"]) {
                ok(&out, "resumed at 3 ranks");
            }
        }
        assert_close_losses(&losses(&work), &want, name);
        assert_close_weights(&work, &one);
    }
}

/// SIGTERM to rank 1 alone: both ranks stop after the same step, rank 0 writes a checkpoint
/// and exits 143 naming the cause, and the run resumes from it to the end.
#[test]
fn a_signal_to_one_rank_stops_all_with_a_checkpoint() {
    let run = setup(100_000, 100_000);
    let work = run.work("run");
    let mut children = run.spawn_ranks(2, &work, &["--log-every", "1"]);
    let t0 = Instant::now();
    while lines(&work) < 3 {
        assert!(t0.elapsed().as_secs() < 120, "training did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let rank1 = children.pop().unwrap();
    let status = Command::new("kill")
        .args(["-TERM", &rank1.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out1 = rank1.wait_with_output().unwrap();
    let out0 = children.pop().unwrap().wait_with_output().unwrap();
    assert_eq!(
        out0.status.code(),
        Some(143),
        "{}",
        String::from_utf8_lossy(&out0.stderr)
    );
    assert_eq!(
        out1.status.code(),
        Some(143),
        "{}",
        String::from_utf8_lossy(&out1.stderr)
    );
    let stderr0 = String::from_utf8_lossy(&out0.stderr);
    assert!(
        stderr0.contains("stopped by a signal to another rank"),
        "{stderr0}"
    );
    let stopped = losses(&work).last().unwrap().0;
    let meta =
        trainer::checkpoint::read_meta(&trainer::checkpoint::resolve(&work).unwrap()).unwrap();
    assert_eq!(
        meta.step, stopped,
        "rank 0 checkpoints the step all ranks stopped at"
    );
    ok(
        &run.single(
            &work,
            &["--resume", "--n-iters", &(stopped + 2).to_string()],
        ),
        "resume",
    );
    assert_eq!(losses(&work).last().unwrap().0, stopped + 2);
}

/// A rank killed mid-run (SIGKILL: no goodbye) ends the other with a one-line error naming its
/// rank and the collective, within seconds, instead of waiting forever.
#[test]
fn a_dying_rank_ends_the_run_instead_of_hanging() {
    let run = setup(100_000, 100_000);
    let work = run.work("run");
    let mut children = run.spawn_ranks(2, &work, &["--log-every", "1", "--dist-timeout", "60"]);
    let t0 = Instant::now();
    while lines(&work) < 2 {
        assert!(t0.elapsed().as_secs() < 120, "training did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut rank1 = children.pop().unwrap();
    rank1.kill().unwrap();
    rank1.wait().unwrap();
    let killed = Instant::now();
    let out0 = children.pop().unwrap().wait_with_output().unwrap();
    let took = killed.elapsed();
    assert!(
        took < Duration::from_secs(30),
        "rank 0 took {took:?} to notice"
    );
    assert!(!out0.status.success());
    let stderr = String::from_utf8_lossy(&out0.stderr);
    assert!(stderr.contains("rank 0 of 2"), "{stderr}");
    assert!(stderr.contains("summing the gradients of step"), "{stderr}");
}

/// Launched by torchrun itself (`--no-python`, its agent's store, rank 0 a client of it) and
/// by srun's variables: the same losses as one process.
#[test]
fn torchrun_and_srun_launch_the_same_run() {
    let run = setup(4, 4);
    let one = run.work("one");
    ok(&run.single(&one, &[]), "one process");
    let want = losses(&one);

    // torchrun is `python -m torch.distributed.run` (a venv over a system torch has no
    // `torchrun` script of its own).
    let work = run.work("torchrun");
    let out = Command::new(testkit::python::python())
        .args([
            "-m",
            "torch.distributed.run",
            "--no-python",
            "--nproc-per-node",
            "2",
            "--rdzv-backend",
            "c10d",
            "--rdzv-endpoint",
            &format!("127.0.0.1:{}", torchrt::dist::free_loopback_port().unwrap()),
        ])
        .arg(env!("CARGO_BIN_EXE_ncsn"))
        .args(run.args(&work, &[]))
        .output()
        .unwrap();
    ok(&out, "torchrun");
    assert_close_losses(&losses(&work), &want, "torchrun");

    let work = run.work("srun");
    let srun = ["SLURM_STEP_NUM_TASKS", "SLURM_PROCID", "SLURM_LOCALID"];
    let children = run.spawn_as(srun, 2, &work, &[]);
    for (rank, c) in children.into_iter().enumerate() {
        ok(&c.wait_with_output().unwrap(), &format!("srun rank {rank}"));
    }
    assert_close_losses(&losses(&work), &want, "srun");
}

/// A launch that cannot work is refused in one line naming why, without waiting for ranks
/// that will never come: a torchrun environment missing RANK, a batch smaller than the world,
/// NCCL asked for on the CPU, and (after --dist-timeout) a store nobody serves.
#[test]
fn a_broken_launch_is_refused_in_one_line() {
    let run = setup(4, 4);
    let refused = |env: &[(&str, &str)], extra: &[&str]| {
        let work = run.work("refused");
        let out = ncsn()
            .args(run.args(&work, extra))
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let one_line = |err: String| {
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        err
    };
    let local = [("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", "1")];
    let err = one_line(refused(&[("WORLD_SIZE", "2")], &[]));
    assert!(err.contains("RANK is not"), "{err}");
    let eight = [&local[..], &[("WORLD_SIZE", "8"), ("RANK", "0")]].concat();
    let err = one_line(refused(&eight, &[]));
    assert!(
        err.contains("training.batch_size 4 is smaller than the 8 ranks"),
        "{err}"
    );
    let one = [&local[..], &[("WORLD_SIZE", "1"), ("RANK", "0")]].concat();
    let err = one_line(refused(&one, &["--dist-backend", "nccl"]));
    assert!(
        err.contains("--dist-backend nccl needs --device cuda"),
        "{err}"
    );
    // Rank 1 of 2 joins a store that nobody serves. libtorch logs its retries on stderr
    // first; ncsn's own error is the last line.
    let port = torchrt::dist::free_loopback_port().unwrap().to_string();
    let t0 = Instant::now();
    let err = refused(
        &[
            ("WORLD_SIZE", "2"),
            ("RANK", "1"),
            ("MASTER_ADDR", "127.0.0.1"),
            ("MASTER_PORT", &port),
        ],
        &["--dist-timeout", "2"],
    );
    assert!(t0.elapsed() < Duration::from_secs(60), "{:?}", t0.elapsed());
    let last = err.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: rank 1 of 2") && last.contains("TCPStore"),
        "{err}"
    );
}
