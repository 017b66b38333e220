//! `ncsn doctor`: versions, libtorch location, CUDA devices. The first thing to run when
//! something is off.

use super::Global;

/// Print versions (ncsn, tch, libtorch), where libtorch was loaded from and how it was found,
/// and what CUDA sees.
#[derive(clap::Args)]
pub struct Args {
    /// Also run a tiny matrix product on every device to prove it works.
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
    }
    Ok(())
}
