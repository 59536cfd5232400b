use std::borrow::Cow;

#[multiproc::remote]
fn shout<'a>(text: Cow<'a, str>) -> String {
    text.to_uppercase()
}

fn main() {
    let _ = shout(Cow::Borrowed("hi"));
}
