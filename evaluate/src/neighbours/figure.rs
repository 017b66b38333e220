//! The picture of Figs. 16–19 (App. C.5.2): one row per sample, the sample at the left, a red
//! vertical line, then its nearest training images, nearest first.

use shards::Rgb8;

/// Pixels around every image, as `make_grid`'s default.
pub const PADDING: u32 = 2;
/// The background: white, so the red line stands out as in the paper's figures.
pub const BACKGROUND: [u8; 3] = [255, 255, 255];
/// The line between each sample and its neighbours.
pub const LINE: [u8; 3] = [255, 0, 0];

/// The red line's width for images `cell_w` wide: thin, but visible at 256 pixels.
pub fn line_width(cell_w: u32) -> u32 {
    (cell_w / 32).max(2)
}

/// (width, height) of a figure of `rows` rows of one sample and `k` neighbours, in cells of
/// `cell` = [height, width]: p + (w + p) + (line + p) + k(w + p) by p + rows(h + p), p =
/// [`PADDING`].
pub fn figure_size(rows: usize, k: usize, cell: [u32; 2]) -> (u32, u32) {
    let [h, w] = cell;
    let p = PADDING;
    let width = p + (w + p) + (line_width(w) + p) + k as u32 * (w + p);
    let height = p + rows as u32 * (h + p);
    (width, height)
}

/// Lays out `rows` of (sample, neighbours). Cells are as large as the largest image; a smaller
/// one (samples of another size than the training images) is centred in its cell.
pub fn figure(rows: &[(&Rgb8, Vec<&Rgb8>)]) -> Rgb8 {
    let all = rows
        .iter()
        .flat_map(|(s, n)| std::iter::once(*s).chain(n.iter().copied()));
    let cell = all.fold([1, 1], |[h, w], im| [h.max(im.height), w.max(im.width)]);
    let k = rows.iter().map(|(_, n)| n.len()).max().unwrap_or(0);
    let (gw, gh) = figure_size(rows.len(), k, cell);
    let mut data: Vec<u8> = BACKGROUND
        .iter()
        .copied()
        .cycle()
        .take((gw * gh * 3) as usize)
        .collect();
    let p = PADDING;
    let [ch, cw] = cell;
    let line_x = p + cw + p;
    for y in 0..gh {
        for x in line_x..line_x + line_width(cw) {
            let at = ((y * gw + x) * 3) as usize;
            data[at..at + 3].copy_from_slice(&LINE);
        }
    }
    let mut paste = |im: &Rgb8, x0: u32, y0: u32| {
        let (x0, y0) = (x0 + (cw - im.width) / 2, y0 + (ch - im.height) / 2);
        let stride = (im.width * 3) as usize;
        for y in 0..im.height {
            let src = &im.data[y as usize * stride..(y as usize + 1) * stride];
            let at = (((y0 + y) * gw + x0) * 3) as usize;
            data[at..at + stride].copy_from_slice(src);
        }
    };
    let first = line_x + line_width(cw) + p;
    for (r, (sample, neighbours)) in rows.iter().enumerate() {
        let y0 = p + r as u32 * (ch + p);
        paste(sample, p, y0);
        for (j, n) in neighbours.iter().enumerate() {
            paste(n, first + j as u32 * (cw + p), y0);
        }
    }
    Rgb8 {
        width: gw,
        height: gh,
        data,
    }
}

/// `im` mirrored left to right (a horizontally flipped training image, as the trainer's random
/// flip makes it).
pub fn flip_horizontal(pixels: &[u8], width: u32) -> Vec<u8> {
    let row = (width * 3) as usize;
    pixels
        .chunks(row)
        .flat_map(|r| r.chunks(3).rev().flatten().copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(h: u32, w: u32, v: u8) -> Rgb8 {
        Rgb8 {
            width: w,
            height: h,
            data: vec![v; (h * w * 3) as usize],
        }
    }

    fn pixel(im: &Rgb8, x: u32, y: u32) -> [u8; 3] {
        let at = ((y * im.width + x) * 3) as usize;
        [im.data[at], im.data[at + 1], im.data[at + 2]]
    }

    #[test]
    fn rows_of_a_sample_a_red_line_and_neighbours() {
        let (s, a, b) = (solid(4, 6, 10), solid(4, 6, 20), solid(4, 6, 30));
        let fig = figure(&[(&s, vec![&a, &b]), (&s, vec![&b, &a])]);
        // p + (6 + p) + (2 + p) + 2(6 + p) by p + 2(4 + p).
        assert_eq!((fig.width, fig.height), (2 + 8 + 4 + 16, 2 + 12));
        assert_eq!(figure_size(2, 2, [4, 6]), (fig.width, fig.height));
        assert_eq!(pixel(&fig, 2, 2), [10; 3]);
        assert_eq!(pixel(&fig, 10, 0), LINE);
        assert_eq!(pixel(&fig, 11, 13), LINE);
        assert_eq!(pixel(&fig, 9, 3), BACKGROUND);
        assert_eq!(pixel(&fig, 14, 2), [20; 3]);
        assert_eq!(pixel(&fig, 22, 2), [30; 3]);
        assert_eq!(pixel(&fig, 14, 8), [30; 3]);
        assert_eq!(pixel(&fig, 22, 8), [20; 3]);
    }

    #[test]
    fn a_smaller_sample_is_centred_in_its_cell() {
        let (s, a) = (solid(2, 2, 7), solid(4, 6, 20));
        let fig = figure(&[(&s, vec![&a])]);
        assert_eq!(pixel(&fig, 2 + 2, 2 + 1), [7; 3]);
        assert_eq!(pixel(&fig, 2, 2), BACKGROUND);
    }

    #[test]
    fn flip_mirrors_each_row() {
        let px: Vec<u8> = (0..2 * 3 * 3).map(|v| v as u8).collect();
        assert_eq!(
            flip_horizontal(&px, 3),
            [6, 7, 8, 3, 4, 5, 0, 1, 2, 15, 16, 17, 12, 13, 14, 9, 10, 11]
        );
    }
}
