//! The standard normal CDF Φ, for Technique 2's overlap equation.
//!
//! Φ(x) = erfc(−x/√2)/2 with erfc computed two ways, each where it is accurate and neither with
//! fitted constants: the all-positive Taylor series of erf near zero (no cancellation between
//! terms), and the Laplace continued fraction of erfc in the tail (relative accuracy, so Φ stays
//! meaningful far below 1e-12). Both converge to f64 round-off; the tests compare against
//! mpmath at 50 digits.

/// Below this |x| erfc comes from the series, above it from the continued fraction. At 2.5 the
/// series needs ~60 terms and the fraction ~100; both are then accurate to a few ulps.
const SWITCH: f64 = 2.5;

/// 2/√π.
const TWO_OVER_SQRT_PI: f64 = std::f64::consts::FRAC_2_SQRT_PI;

/// The complementary error function erfc(x) = 1 − erf(x), for any finite x.
pub fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x < SWITCH {
        1.0 - erf_series(x)
    } else {
        erfc_continued_fraction(x)
    }
}

/// The standard normal CDF Φ(x) = P(Z ≤ x), Z ~ N(0, 1).
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// erf(x) = 2/√π · e^{−x²} · Σ_{n≥0} x^{2n+1} 2ⁿ / (1·3·5···(2n+1)), x ≥ 0.
///
/// Unlike the alternating Maclaurin series, every term is positive, so summing loses nothing
/// to cancellation.
fn erf_series(x: f64) -> f64 {
    let x2 = x * x;
    let mut term = x;
    let mut sum = x;
    let mut n = 0u32;
    loop {
        n += 1;
        term *= 2.0 * x2 / f64::from(2 * n + 1);
        sum += term;
        if term <= sum * 1e-17 || n > 500 {
            break;
        }
    }
    TWO_OVER_SQRT_PI * (-x2).exp() * sum
}

/// erfc(x) = e^{−x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + …))))), x > 0,
/// evaluated with the modified Lentz algorithm.
fn erfc_continued_fraction(x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    // f = b0 + a1/(b1 + a2/(b2 + …)) with b_n = x, a_n = n/2.
    let mut f = x;
    let mut c = f;
    let mut d = 0.0;
    for n in 1..2000 {
        let a = f64::from(n) / 2.0;
        d = x + a * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = x + a / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let delta = c * d;
        f *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    (-x * x).exp() / (f * std::f64::consts::PI.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Φ(x) from mpmath 1.3 at 50 digits (`mp.ncdf`), rounded to 17 significant digits:
    /// x = −10, −9.5, …, 10 and a few points either side of the series/fraction switch
    /// (x/√2 = ±2.5 is x = ±3.5355…). Generated with `mp.mp.dps = 50; mp.ncdf(mp.mpf(x))`.
    // 17 digits as mpmath printed them; f64 keeps what it can.
    #[allow(clippy::excessive_precision)]
    const PHI: &[(f64, f64)] = &[
        (-10.0, 7.6198530241605261e-24),
        (-9.5, 1.0494515075362607e-21),
        (-9.0, 1.1285884059538406e-19),
        (-8.5, 9.4795348222033184e-18),
        (-8.0, 6.2209605742717841e-16),
        (-7.5, 3.1908916729108962e-14),
        (-7.0, 1.279812543885835e-12),
        (-6.5, 4.0160005838591178e-11),
        (-6.0, 9.8658764503769814e-10),
        (-5.5, 1.8989562465887719e-8),
        (-5.0, 2.8665157187919391e-7),
        (-4.5, 3.3976731247300604e-6),
        (-4.0, 3.1671241833119921e-5),
        (-3.6, 1.5910859015753383e-4),
        (-3.5355339059327378, 2.0347600872247937e-4),
        (-3.5, 2.3262907903552504e-4),
        (-3.0, 1.3498980316300945e-3),
        (-2.5, 6.2096653257761352e-3),
        (-2.0, 2.2750131948179207e-2),
        (-1.5, 6.6807201268858066e-2),
        (-1.0, 1.5865525393145705e-1),
        (-0.5, 3.085375387259869e-1),
        (-1e-09, 4.9999999960105772e-1),
        (0.0, 5.0e-1),
        (0.3, 6.1791142218895263e-1),
        (0.5, 6.914624612740131e-1),
        (1.0, 8.4134474606854295e-1),
        (1.5, 9.3319279873114193e-1),
        (2.0, 9.7724986805182079e-1),
        (2.5, 9.9379033467422386e-1),
        (3.0, 9.9865010196836991e-1),
        (3.4, 9.9966307073432312e-1),
        (3.5, 9.9976737092096447e-1),
        (3.5355339059327378, 9.9979652399127752e-1),
        (3.7, 9.9989220026652261e-1),
        (4.0, 9.9996832875816688e-1),
        (4.5, 9.9999660232687527e-1),
        (5.0, 9.9999971334842812e-1),
        (5.5, 9.9999998101043753e-1),
        (6.0, 9.9999999901341235e-1),
        (6.5, 9.9999999995983999e-1),
        (7.0, 9.9999999999872019e-1),
        (7.5, 9.9999999999996809e-1),
        (8.0, 9.9999999999999938e-1),
        (8.5, 9.9999999999999999e-1),
        (9.0, 1.0),
        (9.5, 1.0),
        (10.0, 1.0),
    ];

    #[test]
    fn phi_matches_mpmath_to_1e_12_absolute_over_minus_10_to_10() {
        for &(x, want) in PHI {
            let got = normal_cdf(x);
            assert!(
                (got - want).abs() <= 1e-12,
                "Φ({x}) = {got:e}, mpmath says {want:e}"
            );
        }
    }

    #[test]
    fn phi_keeps_relative_accuracy_in_the_lower_tail() {
        // The tail matters when the overlap equation's lower bound sits far below zero.
        for &(x, want) in PHI.iter().filter(|(x, _)| *x <= -3.0) {
            let got = normal_cdf(x);
            assert!(
                ((got - want) / want).abs() < 1e-12,
                "Φ({x}) = {got:e}, mpmath says {want:e}"
            );
        }
    }

    #[test]
    fn erfc_is_continuous_across_the_switch_and_symmetric() {
        let below = erfc(SWITCH - 1e-12);
        let above = erfc(SWITCH + 1e-12);
        // d/dx erfc at 2.5 is ≈ −0.0022, so 2e-12 apart differ by ≈ 4e-15.
        assert!((below - above).abs() < 1e-14, "{below:e} vs {above:e}");
        for x in [0.1, 0.7, 1.9, 2.6, 4.0] {
            assert!((erfc(x) + erfc(-x) - 2.0).abs() < 1e-15);
        }
        assert!(erfc(f64::NAN).is_nan());
        assert_eq!(erfc(40.0), 0.0);
        assert_eq!(erfc(-40.0), 2.0);
    }
}
