use multiproc::Remote;

#[multiproc::remote]
fn describe(name: String, age: u32, tags: Vec<String>, ratio: (f64, bool)) -> String {
    format!("{name} ({age}) [{}] {:?}", tags.join(","), ratio)
}

fn main() -> multiproc::Result<()> {
    let expected = "ann (7) [a,b] (0.5, true)";
    let args = ("ann".to_owned(), 7, vec!["a".to_owned(), "b".to_owned()], (0.5, true));
    assert_eq!(describe(args.0.clone(), args.1, args.2.clone(), args.3), expected);
    assert_eq!(describe.call(args.clone()), expected);
    assert_eq!(multiproc::spawn(describe, args)?.join()?, expected);
    Ok(())
}
