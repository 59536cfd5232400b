use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Default)]
struct Grid {
    cells: Vec<u8>,
}

#[multiproc::managed]
impl Grid {
    const N: usize = 4;

    // A method compiled out is not served either.
    #[cfg(any())]
    fn gone(&self) -> u8 {
        0
    }

    fn row(&self) -> [u8; Self::N] {
        let mut row = [0; Self::N];
        row.copy_from_slice(&self.cells[..Self::N]);
        row
    }

    fn set(&mut self, (at, value): (usize, u8), mut times: u8, _: bool) {
        while times > 0 {
            self.cells[at] = value;
            times -= 1;
        }
    }

    fn with_args(&self, __multiproc_f: u8, __multiproc_arg0: u8) -> u8 {
        __multiproc_f + __multiproc_arg0
    }

    fn copy(&self) -> Self {
        Grid { cells: self.cells.clone() }
    }
}

fn use_proxy(grid: &GridProxy) -> multiproc::Result<[u8; 4]> {
    grid.set((0, 1), 2, true)?;
    let _: Grid = grid.copy()?;
    let _ = grid.clone();
    let _: u8 = grid.with_args(1, 2)?;
    grid.row()
}

fn main() {
    let _ = use_proxy;
}
