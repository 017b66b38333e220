//! The paper's Table 4 (App. B.1) against Techniques 2 and 4 as implemented here.
//!
//! Inputs checked in the paper: σ₁ and L from Table 4, D = H·W·3 from the resolutions of
//! App. B.2 (CIFAR-10 32², CelebA 64², LSUN church_outdoor 96², bedroom/tower 128², FFHQ 256²),
//! σ_L = 0.01 (§3), T and ε from Table 4.

use calibrate::schedule::{gamma_for_overlap, list_ratio, num_scales, overlap};
use calibrate::step_size::best_step_lr;
use calibrate::{Schedule, ScheduleOptions};

struct Row {
    name: &'static str,
    sigma_begin: f64,
    dims: usize,
    /// L of Table 4.
    l: usize,
    t: usize,
}

const ROWS: [Row; 5] = [
    Row {
        name: "CIFAR-10 32²",
        sigma_begin: 50.0,
        dims: 32 * 32 * 3,
        l: 232,
        t: 5,
    },
    Row {
        name: "CelebA 64²",
        sigma_begin: 90.0,
        dims: 64 * 64 * 3,
        l: 500,
        t: 5,
    },
    Row {
        name: "LSUN church_outdoor 96²",
        sigma_begin: 140.0,
        dims: 96 * 96 * 3,
        l: 788,
        t: 4,
    },
    Row {
        name: "LSUN bedroom/tower 128²",
        sigma_begin: 190.0,
        dims: 128 * 128 * 3,
        l: 1086,
        t: 3,
    },
    Row {
        name: "FFHQ 256²",
        sigma_begin: 348.0,
        dims: 256 * 256 * 3,
        l: 2311,
        t: 3,
    },
];

const SIGMA_END: f64 = 0.01;

/// "Table 4's L values are what C ≈ 0.567 gives": the authors' lists, taken as they are, all
/// have an overlap between adjacent scales of 0.566–0.567.
#[test]
fn table4_lists_have_overlap_0_567() {
    for r in &ROWS {
        let gamma = list_ratio(r.sigma_begin, SIGMA_END, r.l);
        let c = overlap(gamma, r.dims);
        assert!(
            (0.5660..=0.5670).contains(&c),
            "{}: the authors' γ = {gamma} has overlap {c}",
            r.name
        );
    }
}

/// With C = 0.567 our L is exactly Table 4's L plus one, for all five datasets.
///
/// Why not equal: SPEC §5's L = ⌈log(σ₁/σ_L)/log γ⌉ + 1 counts scales (L − 1 ratios must
/// cover σ₁/σ_L with ratio ≤ γ), which guarantees adjacent scales overlap by at least C. The
/// authors' L values are ⌈log(σ₁/σ_L)/log γ⌉ (no + 1): their lists have one scale fewer and a
/// final ratio slightly above γ(C). No single C reproduces all five with the + 1: the C that
/// give Table 4's L for church_outdoor (≤ 0.56620) and for FFHQ (> 0.56640) do not overlap.
#[test]
fn overlap_0_567_gives_table4_l_plus_one() {
    for r in &ROWS {
        let g = gamma_for_overlap(r.dims, 0.567).unwrap();
        let ours = num_scales(r.sigma_begin, SIGMA_END, g);
        let authors = ((r.sigma_begin / SIGMA_END).ln() / g.ln()).ceil() as usize;
        assert_eq!(authors, r.l, "{}", r.name);
        assert_eq!(ours, r.l + 1, "{}", r.name);
    }
    // The two C-intervals that exclude each other (see above), from the authors' own ratios:
    // L = Table 4's L needs overlap(ratio(L − 1 steps)) < C ≤ overlap(ratio(L)).
    let c_max = |r: &Row| overlap(list_ratio(r.sigma_begin, SIGMA_END, r.l), r.dims);
    let c_min = |r: &Row| overlap(list_ratio(r.sigma_begin, SIGMA_END, r.l - 1), r.dims);
    let (church, ffhq) = (&ROWS[2], &ROWS[4]);
    assert!(
        c_max(church) < c_min(ffhq),
        "{} {}",
        c_max(church),
        c_min(ffhq)
    );
}

/// Why C = 0.5 (the paper's recommendation in the text) does not give Table 4's L: the
/// authors' configurations used C ≈ 0.567, and at C = 0.5 the ratio is larger, so every
/// dataset gets about 5.5 % fewer scales (220 instead of 232 for CIFAR-10).
#[test]
fn overlap_0_5_gives_about_5_5_percent_fewer_scales() {
    let want = [220, 473, 745, 1026, 2182];
    for (r, want) in ROWS.iter().zip(want) {
        let s = Schedule::new(
            r.sigma_begin,
            r.dims,
            &ScheduleOptions {
                sigma_end: SIGMA_END,
                overlap: 0.5,
                steps_each: r.t,
            },
        )
        .unwrap();
        assert_eq!(s.scales.num_classes, want, "{}", r.name);
        let fewer = 1.0 - want as f64 / r.l as f64;
        assert!((0.045..0.06).contains(&fewer), "{}: {fewer}", r.name);
    }
}

/// Technique 4 with γ of Table 4's lists and Table 4's T reproduces Table 4's ε (2 significant
/// digits, as printed). FFHQ's "0.9e-7" in Table 4 is a typo for 9e-7 (the authors' config
/// uses 9e-7; Eq. 4 gives 8.93e-7). church_outdoor is left out: Table 4 says T = 4,
/// ε = 4.9e-6, but Eq. 4 with T = 4 gives 2.3e-6, so that row was not chosen by Technique 4
/// as printed.
#[test]
fn table4_eps_for_the_given_t() {
    // (row, ε as Table 4 prints it, significant digits printed)
    let cases = [
        (0, "6.2e-6", 2),
        (1, "3.3e-6", 2),
        (3, "1.8e-6", 2),
        (4, "9e-7", 1),
    ];
    for (i, want, digits) in cases {
        let r = &ROWS[i];
        let gamma = list_ratio(r.sigma_begin, SIGMA_END, r.l);
        let s = best_step_lr(gamma, r.t, SIGMA_END).unwrap();
        let printed = format!("{:.*e}", digits - 1, s.step_lr);
        assert_eq!(printed, want, "{}: ε = {:e}", r.name, s.step_lr);
        assert!(s.eq4_value > 1.0 && s.eq4_value < 1.06, "{}", s.eq4_value);
    }
    // And through the whole schedule at C = 0.567 (one more scale, slightly smaller γ): CIFAR-10
    // still rounds to Table 4's 6.2e-6.
    let s = Schedule::new(
        50.0,
        3072,
        &ScheduleOptions {
            sigma_end: SIGMA_END,
            overlap: 0.567,
            steps_each: 5,
        },
    )
    .unwrap();
    assert_eq!(format!("{:.1e}", s.step.step_lr), "6.2e-6");
}
