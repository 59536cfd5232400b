//! A server and a client that find each other by address and prove they
//! share a secret: the Rust twin of the `Listener`/`Client` example of
//! Python's documentation.
//!
//! The server listens on 127.0.0.1 (port 0: the system picks one) with an
//! authkey; a client process connects with the same key, receives a typed
//! value, a byte message, and bytes into a buffer of its own. A client
//! with the wrong key is refused on both sides.

use multiproc::connection::{Address, Client, Listener};
use multiproc::{Error, Result};
use serde::{Deserialize, Serialize};

const KEY: &[u8] = b"secret password";

/// Python's `[2.25, None, 'junk', float]`, typed.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Junk {
    value: f64,
    nothing: Option<()>,
    text: String,
}

/// The client: connects, prints what it receives, and returns it.
#[multiproc::remote]
fn client(address: Address) -> (Junk, Vec<u8>, Vec<i32>) {
    let conn = Client::connect::<Junk>(&address, Some(KEY)).expect("connect");
    let junk = conn.recv().expect("recv");
    println!("client: {junk:?}");
    let hello = conn.recv_bytes().expect("recv_bytes");
    println!("client: {:?}", String::from_utf8_lossy(&hello));
    // Like Python's recv_bytes_into(array('i', [0, 0, 0, 0, 0])).
    let mut buf = [0u8; 5 * 4];
    let n = conn.recv_bytes_into(&mut buf).expect("recv_bytes_into");
    let ints: Vec<i32> = buf.chunks(4).map(|c| i32::from_ne_bytes(c.try_into().unwrap())).collect();
    println!("client: {n} bytes, {ints:?}");
    (junk, hello, ints)
}

/// A client with the wrong key: returns what connecting gave.
#[multiproc::remote]
fn intruder(address: Address) -> String {
    match Client::connect::<Junk>(&address, Some(b"guess")) {
        Ok(_) => "connected".to_owned(),
        Err(e) => e.to_string(),
    }
}

fn main() -> Result<()> {
    let listener = Listener::bind("127.0.0.1:0", Some(KEY))?;
    let address = listener.address();
    println!("server: listening on {address}");

    let p = multiproc::spawn(client, (address.clone(),))?;
    let conn = listener.accept::<Junk>()?;
    println!("server: connection accepted");
    conn.send(Junk { value: 2.25, nothing: None, text: "junk".into() })?;
    conn.send_bytes(b"hello")?;
    let ints: Vec<u8> = [42i32, 1729].iter().flat_map(|i| i.to_ne_bytes()).collect();
    conn.send_bytes(&ints)?;
    let (junk, hello, got) = p.join()?;
    assert_eq!(junk, Junk { value: 2.25, nothing: None, text: "junk".into() });
    assert_eq!(hello, b"hello");
    assert_eq!(got, [42, 1729, 0, 0, 0]);

    // The wrong key: the server's accept reports it, and so does the client.
    let p = multiproc::spawn(intruder, (address,))?;
    let refused = listener.accept::<Junk>();
    println!("server: {}", refused.as_ref().map_or_else(ToString::to_string, |_| "accepted".into()));
    assert!(matches!(refused, Err(Error::Auth(_))));
    let said = p.join()?;
    println!("intruder: {said}");
    assert!(said.contains("authentication"), "{said}");
    Ok(())
}
