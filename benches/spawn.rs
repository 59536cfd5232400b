//! Start+join of processes, beside Python and the bare system calls.

fn main() {}
