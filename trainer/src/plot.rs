//! The loss-curve PNG of a training run, drawn from its `metrics.jsonl` records: train loss per
//! step, test loss at snapshots; log₁₀ scale since the σ²-weighted loss of Eq. 2 falls by orders
//! of magnitude early on. And the FID curve of a sweep over its checkpoints (linear). A tiny canvas and bitmap font, so no plotting library is linked.

use std::path::Path;

use crate::metrics::Record;

const W: usize = 800;
const H: usize = 480;
const LEFT: usize = 70;
const RIGHT: usize = 20;
const TOP: usize = 30;
const BOTTOM: usize = 50;
type Rgb = [u8; 3];
const BLACK: Rgb = [0, 0, 0];
const GRID: Rgb = [225, 225, 225];
const TRAIN: Rgb = [31, 119, 180];
const TEST: Rgb = [214, 39, 40];

/// Draws train loss (blue line) and test loss (red dots) against the step, y in log₁₀, with
/// labelled axes, and writes it as an RGB PNG.
pub fn plot_loss(records: &[Record], out: &Path) -> std::io::Result<()> {
    // (step, log₁₀ loss): the scale they are drawn in.
    let train: Vec<(f64, f64)> = records
        .iter()
        .filter_map(|r| Some((r.step as f64, r.loss?)))
        .filter(|(_, l)| l.is_finite() && *l > 0.0)
        .map(|(x, l)| (x, l.log10()))
        .collect();
    let test: Vec<(f64, f64)> = records
        .iter()
        .filter_map(|r| Some((r.step as f64, r.test_loss?)))
        .filter(|(_, l)| l.is_finite() && *l > 0.0)
        .map(|(x, l)| (x, l.log10()))
        .collect();
    let (x0, x1, y0, y1) = extent(train.iter().chain(&test));
    // Whole decades on the y axis, so every tick is a round number.
    let (y0, y1) = (y0.floor(), y1.ceil().max(y0.floor() + 1.0));
    let f = Frame { x0, x1, y0, y1 };
    let mut img = Canvas::new(W, H);

    // Grid and ticks: decades on y, ~6 round steps on x.
    let mut d = y0;
    while d <= y1 + 1e-9 {
        let y = f.py(d);
        img.line(LEFT as i64, y, (W - RIGHT) as i64, y, GRID);
        img.text(&format!("1e{}", d as i64), 8, y - 3, BLACK);
        d += 1.0;
    }
    x_axis(&mut img, &f);
    img.text("LOSS", 8, 10, BLACK);
    img.text("TRAIN", (W - 160) as i64, 10, TRAIN);
    img.text("TEST", (W - 80) as i64, 10, TEST);

    polyline(&mut img, &f, &train, TRAIN);
    if let [(x, y)] = train[..] {
        img.dot(f.px(x), f.py(y), TRAIN);
    }
    for &(x, y) in &test {
        img.dot(f.px(x), f.py(y), TEST);
    }
    img.write_png(out)
}

/// FID (red line and dots) against the training step (`ncsn fid --ckpts`' `fid.png`, the
/// paper's Figs. 4–5), y linear from a round number below the smallest FID, the best point
/// ringed, and writes it as an RGB PNG.
pub fn plot_fid(points: &[(u64, f64)], out: &Path) -> std::io::Result<()> {
    let pts: Vec<(f64, f64)> = points
        .iter()
        .map(|&(s, f)| (s as f64, f))
        .filter(|(_, f)| f.is_finite())
        .collect();
    let (x0, x1, y0, y1) = extent(&pts);
    let ystep = nice_step((y1 - y0) / 5.0);
    let (y0, y1) = (
        (y0 / ystep).floor() * ystep,
        ((y1 / ystep).ceil() * ystep).max((y0 / ystep).floor() * ystep + ystep),
    );
    let f = Frame { x0, x1, y0, y1 };
    let mut img = Canvas::new(W, H);
    let mut t = y0;
    while t <= y1 + 1e-9 {
        let y = f.py(t);
        img.line(LEFT as i64, y, (W - RIGHT) as i64, y, GRID);
        img.text(&format!("{}", t as u64), 8, y - 3, BLACK);
        t += ystep;
    }
    x_axis(&mut img, &f);
    img.text("FID", 8, 10, BLACK);
    polyline(&mut img, &f, &pts, TEST);
    for &(x, y) in &pts {
        img.dot(f.px(x), f.py(y), TEST);
    }
    if let Some(&(x, y)) = pts.iter().min_by(|a, b| a.1.total_cmp(&b.1)) {
        img.ring(f.px(x), f.py(y), BLACK);
        img.text("BEST", (W - 80) as i64, 10, BLACK);
    }
    img.write_png(out)
}

/// The data range a plot shows: the points' bounding box, a unit box when there are none, and
/// at least one step wide.
fn extent<'a>(points: impl IntoIterator<Item = &'a (f64, f64)>) -> (f64, f64, f64, f64) {
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in points {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if x1 - x0 < 1.0 {
        x1 = x0 + 1.0;
    }
    (x0, x1, y0, y1)
}

/// Data coordinates (x0..x1, y0..y1) onto the plot area's pixels, y upwards.
struct Frame {
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
}

impl Frame {
    fn px(&self, x: f64) -> i64 {
        let w = (W - LEFT - RIGHT) as f64;
        (LEFT as f64 + (x - self.x0) / (self.x1 - self.x0) * w) as i64
    }

    fn py(&self, y: f64) -> i64 {
        let h = (H - TOP - BOTTOM) as f64;
        (TOP as f64 + (1.0 - (y - self.y0) / (self.y1 - self.y0)) * h) as i64
    }
}

/// Straight segments between consecutive points.
fn polyline(img: &mut Canvas, f: &Frame, points: &[(f64, f64)], color: Rgb) {
    for w in points.windows(2) {
        let (a, b) = (w[0], w[1]);
        img.line(f.px(a.0), f.py(a.1), f.px(b.0), f.py(b.1), color);
    }
}

/// Vertical grid lines at ~6 round steps, their labels, both axes and the `STEP` title.
fn x_axis(img: &mut Canvas, f: &Frame) {
    let step = nice_step((f.x1 - f.x0) / 6.0);
    let mut t = (f.x0 / step).ceil() * step;
    while t <= f.x1 + 1e-9 {
        let x = f.px(t);
        img.line(x, TOP as i64, x, (H - BOTTOM) as i64, GRID);
        let label = format!("{}", t as u64);
        img.text(
            &label,
            x - 2 * label.len() as i64,
            (H - BOTTOM) as i64 + 8,
            BLACK,
        );
        t += step;
    }
    img.line(
        LEFT as i64,
        TOP as i64,
        LEFT as i64,
        (H - BOTTOM) as i64,
        BLACK,
    );
    img.line(
        LEFT as i64,
        (H - BOTTOM) as i64,
        (W - RIGHT) as i64,
        (H - BOTTOM) as i64,
        BLACK,
    );
    img.text("STEP", (W / 2) as i64 - 8, (H - 18) as i64, BLACK);
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let raw = raw.max(1.0);
    let p = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * p)
}

struct Canvas {
    w: usize,
    h: usize,
    px: Vec<u8>,
}

impl Canvas {
    fn new(w: usize, h: usize) -> Self {
        Self {
            w,
            h,
            px: vec![255; w * h * 3],
        }
    }

    fn set(&mut self, x: i64, y: i64, c: Rgb) {
        if x >= 0 && y >= 0 && (x as usize) < self.w && (y as usize) < self.h {
            let i = (y as usize * self.w + x as usize) * 3;
            self.px[i..i + 3].copy_from_slice(&c);
        }
    }

    /// Bresenham, two pixels thick so it reads at a glance.
    fn line(&mut self, mut x0: i64, mut y0: i64, x1: i64, y1: i64, c: Rgb) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let mut err = dx + dy;
        loop {
            self.set(x0, y0, c);
            if c != GRID {
                self.set(x0, y0 + 1, c);
            }
            if x0 == x1 && y0 == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x0 += sx;
            }
            if e2 <= dx {
                err += dx;
                y0 += sy;
            }
        }
    }

    fn dot(&mut self, x: i64, y: i64, c: Rgb) {
        for dy in -3..=3 {
            for dx in -3..=3 {
                if dx * dx + dy * dy <= 9 {
                    self.set(x + dx, y + dy, c);
                }
            }
        }
    }

    /// A circle of radius 6 around a point.
    fn ring(&mut self, x: i64, y: i64, c: Rgb) {
        for dy in -7i64..=7 {
            for dx in -7i64..=7 {
                if (30..=49).contains(&(dx * dx + dy * dy)) {
                    self.set(x + dx, y + dy, c);
                }
            }
        }
    }

    /// Text in a 3×5 pixel font scaled ×2 (digits, `e`, `-`, `.`, and the capitals we use).
    fn text(&mut self, s: &str, x: i64, y: i64, c: Rgb) {
        for (k, ch) in s.chars().enumerate() {
            let glyph = glyph(ch);
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..3 {
                    if bits >> (2 - col) & 1 == 1 {
                        for (ox, oy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                            self.set(x + k as i64 * 8 + col * 2 + ox, y + row as i64 * 2 + oy, c);
                        }
                    }
                }
            }
        }
    }

    fn write_png(&self, path: &Path) -> std::io::Result<()> {
        let mut bytes = vec![];
        {
            let mut enc = png::Encoder::new(&mut bytes, self.w as u32, self.h as u32);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut w = enc.write_header().map_err(std::io::Error::other)?;
            w.write_image_data(&self.px)
                .map_err(std::io::Error::other)?;
        }
        schemas::write_atomic(path, &bytes).map_err(std::io::Error::other)
    }
}

/// Rows of a 3-wide glyph, top to bottom, high bit = left.
fn glyph(c: char) -> [u8; 5] {
    match c.to_ascii_uppercase() {
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 7, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 1, 2, 2],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        '-' => [0, 0, 7, 0, 0],
        '.' => [0, 0, 0, 0, 2],
        'E' => [7, 4, 6, 4, 7],
        'S' => [7, 4, 7, 1, 7],
        'T' => [7, 2, 2, 2, 2],
        'P' => [7, 5, 7, 4, 4],
        'L' => [4, 4, 4, 4, 7],
        'O' => [7, 5, 5, 5, 7],
        'R' => [6, 5, 6, 5, 5],
        'A' => [2, 5, 7, 5, 5],
        'I' => [7, 2, 2, 2, 7],
        'N' => [5, 7, 7, 7, 5],
        'B' => [6, 5, 6, 5, 6],
        'D' => [6, 5, 5, 5, 6],
        'F' => [7, 4, 6, 4, 4],
        _ => [0; 5],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(17.0), 20.0);
        assert_eq!(nice_step(0.2), 1.0);
    }

    #[test]
    fn fid_plot_draws_the_curve_and_rings_the_best() {
        let dir = tempfile::tempdir().unwrap();
        let count = |points: &[(u64, f64)], name: &str, c: Rgb| {
            let out = dir.path().join(name);
            plot_fid(points, &out).unwrap();
            let file = std::io::BufReader::new(std::fs::File::open(&out).unwrap());
            let mut reader = png::Decoder::new(file).read_info().unwrap();
            let mut px = vec![0; reader.output_buffer_size().unwrap()];
            reader.next_frame(&mut px).unwrap();
            px.chunks(3).filter(|p| *p == c).count()
        };
        let curve = [(5000, 80.0), (10000, 31.5), (15000, 40.0)];
        assert!(count(&curve, "fid.png", TEST) > count(&[], "empty.png", TEST) + 300);
        assert!(
            count(&curve[..1], "one.png", TEST) > 20,
            "one point is a dot"
        );
    }

    #[test]
    fn plot_draws_both_curves() {
        let dir = tempfile::tempdir().unwrap();
        let records: Vec<Record> = (1..=5)
            .map(|step| Record {
                step,
                loss: Some(10.0 / step as f64),
                test_loss: (step % 2 == 1).then_some(20.0 / step as f64),
                ..Default::default()
            })
            .collect();
        let pixels = |records: &[Record], name: &str| {
            let out = dir.path().join(name);
            plot_loss(records, &out).unwrap();
            let file = std::io::BufReader::new(std::fs::File::open(&out).unwrap());
            let mut reader = png::Decoder::new(file).read_info().unwrap();
            assert_eq!(
                (reader.info().width, reader.info().height),
                (W as u32, H as u32)
            );
            let mut px = vec![0; reader.output_buffer_size().unwrap()];
            reader.next_frame(&mut px).unwrap();
            px
        };
        let count = |px: &[u8], c: Rgb| px.chunks(3).filter(|p| *p == c).count();
        // The legend uses both colours too: the curves are what a plot of no records lacks.
        let (full, empty) = (pixels(&records, "loss.png"), pixels(&[], "empty.png"));
        assert!(
            count(&full, TRAIN) > count(&empty, TRAIN) + 100,
            "no train curve"
        );
        assert!(
            count(&full, TEST) > count(&empty, TEST) + 3 * 20,
            "no test dots"
        );
    }
}
