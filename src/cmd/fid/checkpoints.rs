//! `ncsn fid --checkpoint FILE | --workdir W [--ckpts B:E:S]`: samples drawn here from a
//! checkpoint and scored (`trainer::fid`), or a sweep over a run's checkpoints.

use std::path::Path;

use anyhow::Context;
use trainer::checkpoint::Weights;
use trainer::fid::sweep::list;
use trainer::fid::{
    fid_sampler, score_checkpoint, Draw, Reference, SamplerOverrides, Scorer, SweepEvent,
    SweepRequest, DEFAULT_SAMPLES,
};
use trainer::sample::load_model;

use super::Args;
use crate::cmd::Global;

pub fn run(args: Args, global: &Global) -> anyhow::Result<()> {
    if let Some(raw) = &args.raw {
        schemas::output::check_file(raw).context("--raw")?;
    }
    let reference = match (&args.stats, &args.data) {
        (Some(file), _) => Reference::Stats(file.clone()),
        (None, Some(dir)) => Reference::Data {
            dir: dir.clone(),
            split: args.split.clone(),
        },
        _ => anyhow::bail!("give --stats FILE or --data DIR"),
    };
    // Missing or wrong Inception weights fail here, before any sampling.
    let extractor = args.inception.extractor()?;
    let scorer = Scorer {
        extractor: &extractor,
        inception_batch: args.inception.batch_size,
        splits: args.splits,
        device: extractor.device(),
        progress: global.progress(),
    };
    let weights = if args.no_ema {
        Weights::Model
    } else {
        Weights::Ema
    };
    let overrides = SamplerOverrides {
        step_lr: args.step_lr,
        n_steps_each: args.steps_each,
    };
    match (&args.workdir, args.ckpts) {
        (Some(workdir), Some(range)) => {
            let req = SweepRequest {
                workdir: workdir.clone(),
                range,
                n: args.n,
                batch_size: args.sample_batch_size,
                seed: args.seed,
                weights,
                overrides,
            };
            sweep(&req, &scorer, &reference, args.json)
        }
        _ => {
            let source = args
                .checkpoint
                .as_ref()
                .or(args.workdir.as_ref())
                .expect("clap requires --samples, --checkpoint or --workdir");
            one(&args, source, &scorer, &reference, weights, &overrides)
        }
    }
}

/// The FID of one checkpoint (a file, or a workdir's latest).
fn one(
    args: &Args,
    source: &Path,
    scorer: &Scorer,
    reference: &Reference,
    weights: Weights,
    overrides: &SamplerOverrides,
) -> anyhow::Result<()> {
    let loaded = load_model(source, weights, scorer.device)
        .with_context(|| format!("loading the model from {}", source.display()))?;
    let settings = fid_sampler(&loaded.config, false, overrides)
        .with_context(|| format!("{}: --steps-each/--step-lr", loaded.file.display()))?;
    let stats = reference.load(scorer.extractor, scorer.inception_batch, scorer.progress)?;
    let side = settings.image_size as u32;
    stats.check_comparable(reference.path(), evaluate::POOL3_DIMS, Some([side, side]))?;
    let draw = Draw {
        n: args.n.unwrap_or(DEFAULT_SAMPLES),
        batch_size: args
            .sample_batch_size
            .unwrap_or(loaded.config.sampling.batch_size),
        seed: args.seed,
    };
    warn_if_few(draw.n);
    let start = std::time::Instant::now();
    let mut raw = args.raw.as_ref().map(|_| Vec::new());
    let scored = score_checkpoint(
        &loaded,
        &settings,
        &draw,
        scorer,
        (&stats, reference.path()),
        raw.as_mut(),
    )?;
    let seconds = start.elapsed().as_secs_f64();
    if let (Some(path), Some(bytes)) = (&args.raw, &raw) {
        let s = settings.image_size as usize;
        shards::write_npz_u8(path, &[("arr_0", &[draw.n, s, s, 3], bytes)])
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let is = scored.inception_score;
    if args.json {
        let out = serde_json::json!({
            "checkpoint": loaded.file,
            "step": loaded.meta.step,
            "ema": loaded.ema,
            "seed": draw.seed,
            "step_lr": settings.step_lr,
            "n_steps_each": settings.n_steps_each,
            "num_samples": scored.n,
            "image_size": [side, side],
            "reference": reference.path(),
            "reference_images": stats.num_images,
            "fid": scored.fid,
            "inception_score": is.mean,
            "inception_score_std": is.std,
            "is_splits": is.splits,
            "seconds": seconds,
            "raw": args.raw,
            "weights": scorer.extractor.weights(),
        });
        println!("{out}");
    } else {
        println!(
            "checkpoint: {} (step {}, {} weights)",
            loaded.file.display(),
            loaded.meta.step,
            if loaded.ema { "EMA" } else { "model" }
        );
        println!(
            "samples:    {} (seed {}, T={}, eps={:e}), {seconds:.1} s",
            scored.n, draw.seed, settings.n_steps_each, settings.step_lr
        );
        println!("reference:  {}", reference.path().display());
        println!("FID:        {:.4}", scored.fid);
        println!(
            "IS:         {:.4} ± {:.4} ({} splits)",
            is.mean, is.std, is.splits
        );
        if let Some(raw) = &args.raw {
            println!("wrote {}", raw.display());
        }
    }
    Ok(())
}

/// A sweep over a workdir's checkpoints: a line per checkpoint as it is scored, the best last.
fn sweep(
    req: &SweepRequest,
    scorer: &Scorer,
    reference: &Reference,
    json: bool,
) -> anyhow::Result<()> {
    let work = req.workdir.display().to_string();
    let result = trainer::fid::sweep(req, scorer, reference, |event| match event {
        SweepEvent::Planned { plan, n } => {
            if !plan.missing.is_empty() {
                eprintln!(
                    "warning: {work}: no checkpoint at step {} of --ckpts {}:{}:{} (pruned by \
                     --keep-checkpoints, not reached yet, or off the snapshot grid); scoring \
                     the {} present",
                    list(plan.missing.iter().copied()),
                    plan.begin,
                    plan.end,
                    plan.step,
                    plan.checkpoints.len()
                );
            }
            warn_if_few(n);
        }
        SweepEvent::Skipped(l) if !json => println!(
            "step {}: FID {:.4}, IS {:.4} ± {:.4} ({} samples; already in fid.jsonl)",
            l.step, l.fid, l.is, l.is_std, l.settings.n
        ),
        SweepEvent::Scored(l) if !json => println!(
            "step {}: FID {:.4}, IS {:.4} ± {:.4} ({} samples, {:.1} s)",
            l.step, l.fid, l.is, l.is_std, l.settings.n, l.seconds
        ),
        _ => {}
    })
    .with_context(|| format!("FID sweep of {work}"))?;
    if json {
        let out = serde_json::json!({
            "workdir": req.workdir,
            "ckpts": format!("{}:{}:{}", result.plan.begin, result.plan.end, result.plan.step),
            "missing": result.plan.missing,
            "checkpoints": result.lines,
            "best": result.best,
            "log": result.log,
            "plot": result.plot,
        });
        println!("{out}");
    } else {
        if let Some(b) = &result.best {
            println!(
                "best: step {}, FID {:.4}, IS {:.4} ± {:.4}: {}",
                b.step, b.fid, b.is, b.is_std, b.checkpoint
            );
        }
        println!(
            "wrote {} and {}",
            result.log.display(),
            result.plot.display()
        );
    }
    Ok(())
}

/// The note of a FID from at most as many samples as features (the paper's 1 000): Σ is
/// singular, the FID biased upward.
fn warn_if_few(n: usize) {
    if n <= evaluate::POOL3_DIMS {
        eprintln!(
            "warning: {n} samples ≤ {} feature dimensions, so Σ is singular: the FID is biased \
             upward and comparable only with FIDs of as many samples",
            evaluate::POOL3_DIMS
        );
    }
}
