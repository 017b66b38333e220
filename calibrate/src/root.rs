//! A bracketing root finder: bisection, chosen over faster methods because the calibration
//! equations are cheap and bisection cannot leave its bracket or stall on a flat stretch.

/// Finds x in [lo, hi] with f(x) = 0, given f(lo) and f(hi) of opposite signs (or one of them
/// zero). Halves the bracket until it is as narrow as f64 allows around the root (at most
/// ~1100 steps, in practice ~60), so the answer is accurate to a few ulps of x.
///
/// Returns `None` when the bracket does not straddle a root or an endpoint is not finite.
pub fn bisect(f: impl Fn(f64) -> f64, mut lo: f64, mut hi: f64) -> Option<f64> {
    if !(lo.is_finite() && hi.is_finite()) {
        return None;
    }
    let (mut flo, fhi) = (f(lo), f(hi));
    if flo == 0.0 {
        return Some(lo);
    }
    if fhi == 0.0 {
        return Some(hi);
    }
    if flo.is_nan() || fhi.is_nan() || (flo > 0.0) == (fhi > 0.0) {
        return None;
    }
    loop {
        let mid = lo + (hi - lo) / 2.0;
        // No representable number strictly between lo and hi: the bracket is as tight as it gets.
        if mid <= lo.min(hi) || mid >= lo.max(hi) {
            return Some(mid);
        }
        let fmid = f(mid);
        if fmid == 0.0 {
            return Some(mid);
        }
        if (fmid > 0.0) == (flo > 0.0) {
            lo = mid;
            flo = fmid;
        } else {
            hi = mid;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_roots_to_the_last_ulps() {
        let r = bisect(|x| x * x - 2.0, 0.0, 3.0).unwrap();
        assert!((r - std::f64::consts::SQRT_2).abs() <= 4.0 * f64::EPSILON);
        // Decreasing function, reversed bracket.
        let r = bisect(|x| (-x).exp() - 0.25, 5.0, 0.0).unwrap();
        assert!((r - 4f64.ln()).abs() <= 4.0 * f64::EPSILON);
        // A root at an endpoint.
        assert_eq!(bisect(|x| x - 1.0, 1.0, 2.0), Some(1.0));
    }

    #[test]
    fn refuses_a_bracket_without_a_sign_change() {
        assert_eq!(bisect(|x| x * x + 1.0, -1.0, 1.0), None);
        assert_eq!(bisect(|x| x, f64::NAN, 1.0), None);
        assert_eq!(bisect(|_| f64::NAN, 0.0, 1.0), None);
    }
}
