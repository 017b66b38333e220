//! The stage tables of the authors' models/ncsnv2.py (paper Table 3), and of models/ncsn.py,
//! whose NCSN / NCSNdeeper have the same shapes (Table 2a = 3a, 2b = 3b) with σ-conditional
//! norms. `ngf` is the base width (128 in the paper).

use super::layers::{RefineSpec, ResSpec};
use super::net::Stage;

fn res(cin: i64, cout: i64, down: bool, dilation: Option<i64>) -> ResSpec {
    ResSpec {
        cin,
        cout,
        down,
        dilation,
    }
}

/// A stage of two ResBlocks: the first maps `cin → cout` (optionally `down`), the second keeps
/// `cout`; both with the same dilation.
fn stage(
    res_name: &'static str,
    refine_name: &'static str,
    (cin, cout): (i64, i64),
    down: bool,
    dilation: Option<i64>,
    refine: RefineSpec,
) -> Stage {
    Stage {
        res_name,
        blocks: vec![
            res(cin, cout, down, dilation),
            res(cout, cout, false, dilation),
        ],
        refine_name,
        refine,
    }
}

fn refine(in_planes: &[i64], features: i64) -> RefineSpec {
    RefineSpec {
        in_planes: in_planes.to_vec(),
        features,
        start: in_planes.len() == 1,
        end: false,
    }
}

fn last(mut stages: Vec<Stage>) -> Vec<Stage> {
    stages[0].refine.end = true;
    stages
}

/// `NCSNv2` (Table 3a, 32–64 px): one mean-pool halving (res2), then dilated levels 2 and 4
/// whose `down` keeps the resolution.
pub fn ncsnv2(ngf: i64) -> Vec<Stage> {
    let (c1, c2) = (ngf, 2 * ngf);
    last(vec![
        stage(
            "res1",
            "refine4",
            (c1, c1),
            false,
            None,
            refine(&[c1, c1], c1),
        ),
        stage(
            "res2",
            "refine3",
            (c1, c2),
            true,
            None,
            refine(&[c2, c2], c1),
        ),
        stage(
            "res3",
            "refine2",
            (c2, c2),
            true,
            Some(2),
            refine(&[c2, c2], c2),
        ),
        stage(
            "res4",
            "refine1",
            (c2, c2),
            true,
            Some(4),
            refine(&[c2], c2),
        ),
    ])
}

/// `NCSNv2Deeper` (Table 3b, 96–128 px): one more halving level and 4·ngf in the dilated ones.
pub fn ncsnv2_deeper(ngf: i64) -> Vec<Stage> {
    deeper(ngf, false)
}

/// `NCSNv2Deepest` (Table 3c, 256 px): Deeper plus the `res31`/`refine31` halving level.
pub fn ncsnv2_deepest(ngf: i64) -> Vec<Stage> {
    deeper(ngf, true)
}

/// The levels Deeper and Deepest share, with Deepest's extra `res31` between `res3` and `res4`.
fn deeper(ngf: i64, with_res31: bool) -> Vec<Stage> {
    let (c1, c2, c4) = (ngf, 2 * ngf, 4 * ngf);
    let mut stages = vec![
        stage(
            "res1",
            "refine5",
            (c1, c1),
            false,
            None,
            refine(&[c1, c1], c1),
        ),
        stage(
            "res2",
            "refine4",
            (c1, c2),
            true,
            None,
            refine(&[c2, c2], c1),
        ),
        stage(
            "res3",
            "refine3",
            (c2, c2),
            true,
            None,
            refine(&[c2, c2], c2),
        ),
    ];
    if with_res31 {
        stages.push(stage(
            "res31",
            "refine31",
            (c2, c2),
            true,
            None,
            refine(&[c2, c2], c2),
        ));
    }
    stages.extend([
        stage(
            "res4",
            "refine2",
            (c2, c4),
            true,
            Some(2),
            refine(&[c4, c4], c2),
        ),
        stage(
            "res5",
            "refine1",
            (c4, c4),
            true,
            Some(4),
            refine(&[c4], c4),
        ),
    ]);
    last(stages)
}
