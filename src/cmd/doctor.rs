//! `ncsn doctor`: versions, libtorch location, CUDA devices. The first thing to run when
//! something is off.

use tch::Device;
use torchrt::dist::Backend;

use super::Global;

/// Print versions (ncsn, tch, libtorch), where libtorch was loaded from and how it was found,
/// and what CUDA sees.
#[derive(clap::Args)]
pub struct Args {
    /// Also run a tiny matrix product on every device, and a one-process all-reduce with each
    /// collective backend `ncsn train` uses under torchrun (Gloo; NCCL on the first GPU), to
    /// prove they work.
    #[arg(long)]
    check: bool,
}

pub fn run(args: Args, _global: &Global) -> anyhow::Result<()> {
    let mut report = torchrt::doctor::Report::gather();
    report.libtorch_found = Some(
        std::env::var(crate::cli::ENV_LIBTORCH_FOUND).unwrap_or_else(|_| {
            "by ncsn-torch's RUNPATH or LD_LIBRARY_PATH (run without the ncsn front-end)".into()
        }),
    );
    print!("{report}");
    if args.check {
        for device in report.devices() {
            let took = torchrt::doctor::smoke_matmul(device)?;
            println!(
                "check {device:?}: 256x256 matmul ok in {:.2} ms",
                took.as_secs_f64() * 1e3
            );
        }
        let mut collectives = vec![(Backend::Gloo, Device::Cpu)];
        if report.nccl_built && report.cuda_available {
            collectives.push((Backend::Nccl, Device::Cuda(0)));
        }
        for (backend, device) in collectives {
            let took = torchrt::doctor::smoke_collective(backend, device)?;
            println!(
                "check {backend}: one-rank all-reduce on {device:?} ok in {:.2} ms",
                took.as_secs_f64() * 1e3
            );
        }
    }
    Ok(())
}
