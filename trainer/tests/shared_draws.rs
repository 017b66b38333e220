//! A data-parallel rank's random draws (trainer::train::draws_of_rows) are its rows of the draws
//! one process makes for the whole batch, so a sample gets the same noise at any world size.
//! Alone in this binary: the draws come from torch's global generator, which tests running in
//! parallel threads of one process would otherwise share.

use std::sync::Mutex;

use tch::{Device, Kind, Tensor};
use trainer::data_transform::{DataTransform, TorchRng};
use trainer::loader::Shard;
use trainer::train::draws_of_rows;

static GENERATOR: Mutex<()> = Mutex::new(());

fn transform() -> DataTransform {
    DataTransform {
        uniform_dequantization: true,
        rescaled: true,
        ..Default::default()
    }
}

#[test]
fn a_world_of_one_draws_what_one_process_draws() {
    let _one = GENERATOR.lock().unwrap();
    let x = Tensor::rand([6, 3, 4, 4], (Kind::Float, Device::Cpu));
    let t = transform();
    tch::manual_seed(11);
    let (a, ya, za, y_all) = draws_of_rows(Shard::ALL, &x, 6, &t, 10);
    // The single-process draws of train.rs, in their order.
    tch::manual_seed(11);
    let b = t.forward(&x, &mut TorchRng);
    let yb = Tensor::randint(10, [6], (Kind::Int64, Device::Cpu));
    let zb = b.randn_like();
    assert!(a.equal(&b) && ya.equal(&yb) && za.equal(&zb) && y_all.equal(&yb));
}

#[test]
fn ranks_draw_their_rows_of_the_global_draws() {
    let _one = GENERATOR.lock().unwrap();
    let t = transform();
    let x = Tensor::rand([7, 1, 2, 2], (Kind::Float, Device::Cpu));
    tch::manual_seed(5);
    let whole = draws_of_rows(Shard::ALL, &x, 7, &t, 9);
    for world in [2usize, 3, 8] {
        for rank in 0..world {
            let idx =
                Tensor::arange_start_step(rank as i64, 7, world as i64, (Kind::Int64, Device::Cpu));
            tch::manual_seed(5);
            let mine = draws_of_rows(Shard { rank, world }, &x.index_select(0, &idx), 7, &t, 9);
            let what = format!("rank {rank} of {world}");
            assert!(mine.0.equal(&whole.0.index_select(0, &idx)), "{what}: x");
            assert!(mine.1.equal(&whole.1.index_select(0, &idx)), "{what}: y");
            assert!(mine.2.equal(&whole.2.index_select(0, &idx)), "{what}: z");
            assert!(mine.3.equal(&whole.3), "{what}: the batch's y");
        }
    }
}
