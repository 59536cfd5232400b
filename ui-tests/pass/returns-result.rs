#[multiproc::remote]
fn parse(text: String) -> Result<u64, String> {
    text.parse().map_err(|e| format!("{text:?} is not a number: {e}"))
}

fn main() -> multiproc::Result<()> {
    assert_eq!(parse("42".to_owned()), Ok(42));
    assert_eq!(multiproc::spawn(parse, ("7".to_owned(),))?.join()?, Ok(7));
    let err = multiproc::spawn(parse, ("x".to_owned(),))?.join()?;
    assert_eq!(err, Err("\"x\" is not a number: invalid digit found in string".to_owned()));
    Ok(())
}
