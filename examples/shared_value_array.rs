//! The seed notes' shared memory example: a child sets a shared `f64` and
//! negates a shared array of ten `i32`s; the parent sees both changes.

use multiproc::{Array, Process, Value};

/// The value the seed's example stores: seven digits of pi, as written
/// there, not `std::f64::consts::PI`.
#[allow(clippy::approx_constant)]
const SEVEN_DIGITS: f64 = 3.1415927;

#[multiproc::remote]
fn f(n: Value<f64>, a: Array<i32>) {
    n.set(SEVEN_DIGITS);
    for i in 0..a.len() {
        a.set(i, -a.get(i));
    }
}

fn main() -> multiproc::Result<()> {
    let num = Value::new(0.0f64)?;
    let arr = Array::from_slice(&(0..10).collect::<Vec<i32>>())?;

    let p = Process::builder().spawn(f, (num.clone(), arr.clone()))?;
    p.join()?;

    println!("{}", num.get());
    println!("{:?}", arr.to_vec());
    assert_eq!(num.get(), SEVEN_DIGITS);
    assert_eq!(arr.to_vec(), (0..10).map(|i| -i).collect::<Vec<i32>>());
    Ok(())
}
