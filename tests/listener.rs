//! Listener and Client: addresses, authentication, and peers that misbehave.
//! IDs such as LIST-04 cite ../shared/spec/cpython-conformance.md.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use multiproc::Error;
use multiproc::connection::{Address, Client, Connection, Listener};

const KEY: &[u8] = b"secret";

/// Accepts one connection on a thread, so the test can act as the client.
fn accept_in_background(
    listener: Listener,
) -> std::thread::JoinHandle<(Listener, multiproc::Result<Connection<Vec<u8>>>)> {
    std::thread::spawn(move || {
        let result = listener.accept::<Vec<u8>>();
        (listener, result)
    })
}

fn echo_once(address: &Address, key: Option<&[u8]>) -> multiproc::Result<Vec<u8>> {
    let conn = Client::connect::<Vec<u8>>(address, key)?;
    conn.send_bytes(b"ping")?;
    conn.recv_bytes()
}

fn serve_one_echo(listener: &Listener) -> multiproc::Result<()> {
    let conn = listener.accept::<Vec<u8>>()?;
    let got = conn.recv_bytes()?;
    conn.send_bytes(&got)
}

// LIST-04, LIST-05 (in threads; see below for processes)
#[test]
fn tcp_unix_and_abstract_addresses_work_with_and_without_a_key() {
    let dir = std::env::temp_dir().join(format!("mp-listener-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("a.sock");
    let abstract_name = format!("@multiproc-test-{}", std::process::id());
    for address in ["127.0.0.1:0", path.to_str().unwrap(), &abstract_name] {
        for key in [None, Some(KEY)] {
            let listener = Listener::bind(address, key).unwrap();
            let bound = listener.address();
            if let Address::Tcp(addr) = bound {
                assert_ne!(addr.port(), 0, "the port is filled in");
            }
            let server = std::thread::spawn(move || serve_one_echo(&listener));
            assert_eq!(echo_once(&bound, key).unwrap(), b"ping", "{address} {key:?}");
            server.join().unwrap().unwrap();
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn address_round_trips_through_text() {
    let listener = Listener::bind("127.0.0.1:0", None).unwrap();
    let text = listener.address().to_string();
    let parsed: Address = text.parse().unwrap();
    assert_eq!(parsed, listener.address());
}

#[test]
fn unix_socket_files_are_private_and_removed_on_drop() {
    let listener = Listener::bind_private(Some(KEY)).unwrap();
    let Address::Unix(path) = listener.address() else { panic!("a private listener is a Unix socket") };
    let dir = path.parent().unwrap().to_path_buf();
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
    drop(listener);
    assert!(!path.exists() && !dir.exists());

    let path = std::env::temp_dir().join(format!("mp-sock-{}", std::process::id()));
    let listener = Listener::bind(path.as_path(), None).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    drop(listener);
    assert!(!path.exists());
}

// LIST-01
#[test]
fn binding_a_bound_tcp_or_abstract_address_is_refused() {
    let first = Listener::bind("127.0.0.1:0", None).unwrap();
    let err = Listener::bind(first.address(), None).unwrap_err();
    assert!(matches!(&err, Error::Io(e) if e.kind() == std::io::ErrorKind::AddrInUse), "{err:?}");
    let name = format!("@multiproc-twice-{}", std::process::id());
    let _first = Listener::bind(name.as_str(), None).unwrap();
    let err = Listener::bind(name.as_str(), None).unwrap_err();
    assert!(matches!(&err, Error::Io(e) if e.kind() == std::io::ErrorKind::AddrInUse), "{err:?}");
}

// LIST-01
#[test]
fn a_unix_path_in_use_is_refused_and_nothing_is_left_beside_it() {
    let dir = std::env::temp_dir().join(format!("mp-inuse-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("app.sock");
    let first = Listener::bind(path.as_path(), None).unwrap();
    let err = Listener::bind(path.as_path(), None).unwrap_err();
    assert!(matches!(&err, Error::Io(e) if e.kind() == std::io::ErrorKind::AddrInUse), "{err:?}");
    // The first listener still serves on its path.
    let client = std::thread::spawn({
        let path = path.clone();
        move || Client::connect::<u8>(path.as_path(), None).and_then(|c| c.recv())
    });
    first.accept::<u8>().unwrap().send(7).unwrap();
    assert_eq!(client.join().unwrap().unwrap(), 7);
    drop(first);
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    std::fs::remove_dir(&dir).unwrap();
}

#[test]
fn a_unix_path_too_long_is_refused_with_advice() {
    let long = format!("/tmp/{}", "x".repeat(200));
    let err = Listener::bind(long.as_str(), None).unwrap_err().to_string();
    assert!(err.contains("over Linux's limit"), "{err}");
}

// LIST-10: a wrong key is Error::Auth on both sides, with CPython's
// messages, and the listener goes on.
#[test]
fn a_wrong_key_is_refused_on_both_sides_and_the_listener_serves_on() {
    let listener = Listener::bind("127.0.0.1:0", Some(KEY)).unwrap();
    let address = listener.address();
    let server = accept_in_background(listener);
    match Client::connect::<Vec<u8>>(&address, Some(b"wrong")) {
        Err(Error::Auth(msg)) => assert!(msg.contains("rejected"), "{msg}"),
        other => panic!("expected an auth error, got {other:?}"),
    }
    let (listener, accepted) = server.join().unwrap();
    assert!(matches!(accepted, Err(Error::Auth(_))), "{accepted:?}");
    let server = std::thread::spawn(move || serve_one_echo(&listener));
    assert_eq!(echo_once(&address, Some(KEY)).unwrap(), b"ping");
    server.join().unwrap().unwrap();
}

#[test]
fn a_client_without_the_key_is_refused() {
    let listener = Listener::bind("127.0.0.1:0", Some(KEY)).unwrap();
    let address = listener.address();
    let server = accept_in_background(listener);
    let conn = Client::connect::<Vec<u8>>(&address, None).unwrap();
    let _ = conn.send_bytes(b"not a digest");
    let (_, accepted) = server.join().unwrap();
    assert!(matches!(accepted, Err(Error::Auth(_))), "{accepted:?}");
}

// LIST-14 (!): CPython deadlocks here (gh-123736); a timeout ends it.
#[test]
fn a_client_with_a_key_against_a_listener_without_one_times_out() {
    let listener = Listener::bind("127.0.0.1:0", None).unwrap();
    let address = listener.address();
    let server = accept_in_background(listener);
    let start = Instant::now();
    let result = Client::connect_timeout::<Vec<u8>>(&address, Some(KEY), Duration::from_millis(300));
    assert!(matches!(result, Err(Error::Auth(_))), "{result:?}");
    assert!(start.elapsed() < Duration::from_secs(5));
    drop(server.join().unwrap());
}

// LIST-15 (!)
#[test]
fn a_silent_peer_delays_nobody() {
    let listener = Listener::bind("127.0.0.1:0", Some(KEY)).unwrap();
    let address = listener.address();
    let Address::Tcp(addr) = address.clone() else { unreachable!() };
    let _silent = TcpStream::connect(addr).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let server = accept_in_background(listener);
    let start = Instant::now();
    let client = Client::connect::<Vec<u8>>(&address, Some(KEY)).unwrap();
    let (_listener, accepted) = server.join().unwrap();
    let conn = accepted.unwrap();
    assert!(start.elapsed() < Duration::from_secs(5), "the silent peer held up accept");
    client.send_bytes(b"after").unwrap();
    assert_eq!(conn.recv_bytes().unwrap(), b"after");
}

#[test]
fn a_silent_peer_times_out() {
    let mut listener = Listener::bind("127.0.0.1:0", Some(KEY)).unwrap();
    listener.set_handshake_timeout(Duration::from_millis(200));
    let Address::Tcp(addr) = listener.address() else { unreachable!() };
    let _silent = TcpStream::connect(addr).unwrap();
    let start = Instant::now();
    match listener.accept::<Vec<u8>>() {
        Err(Error::Auth(msg)) => assert!(msg.contains("within"), "{msg}"),
        other => panic!("expected a handshake timeout, got {other:?}"),
    }
    assert!(start.elapsed() >= Duration::from_millis(200) && start.elapsed() < Duration::from_secs(5));
}

#[test]
fn garbage_on_the_socket_is_refused_and_the_listener_serves_on() {
    let garbage: [&[u8]; 6] = [
        &(-2i32).to_be_bytes(),                                          // a negative length
        &0x7fff_ffffi32.to_be_bytes(),                                   // a length over the handshake cap
        b"\x00\x00\x01\x2cthis is far too long to be a digest response", // 300 > 256
        &[0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03],                     // random bytes
        b"\x00\x00\x00\x08{sha1}xx",                                     // a wrong digest name
        b"\x00\x00\x00\x28{sha256}trunc",                                // a truncated frame
    ];
    let listener = Listener::bind("127.0.0.1:0", Some(KEY)).unwrap();
    let Address::Tcp(addr) = listener.address() else { unreachable!() };
    for bytes in garbage {
        let mut raw = TcpStream::connect(addr).unwrap();
        raw.write_all(bytes).unwrap();
        raw.shutdown(std::net::Shutdown::Write).unwrap();
        let start = Instant::now();
        let result = listener.accept::<Vec<u8>>();
        assert!(matches!(result, Err(Error::Auth(_))), "{bytes:?}: {result:?}");
        assert!(start.elapsed() < Duration::from_secs(5), "{bytes:?}");
    }
    let address = listener.address();
    let server = std::thread::spawn(move || serve_one_echo(&listener));
    assert_eq!(echo_once(&address, Some(KEY)).unwrap(), b"ping");
    server.join().unwrap().unwrap();
}

#[test]
fn handles_do_not_travel_over_tcp() {
    let listener = Listener::bind("127.0.0.1:0", None).unwrap();
    let address = listener.address();
    let server = std::thread::spawn(move || listener.accept::<Connection<u8>>());
    let client = Client::connect::<Connection<u8>>(&address, None).unwrap();
    let _peer = server.join().unwrap().unwrap();
    let (a, _b) = multiproc::pipe::<u8>().unwrap();
    assert!(matches!(client.send(a), Err(Error::Codec(_))));
}

#[test]
fn handles_travel_over_unix_sockets() {
    let listener = Listener::bind_private(None).unwrap();
    let address = listener.address();
    let server = std::thread::spawn(move || listener.accept::<Connection<u8>>());
    let client = Client::connect::<Connection<u8>>(&address, None).unwrap();
    let peer = server.join().unwrap().unwrap();
    let (a, b) = multiproc::pipe::<u8>().unwrap();
    client.send(a).unwrap();
    let a = peer.recv().unwrap();
    a.send(9).unwrap();
    assert_eq!(b.recv().unwrap(), 9);
}

#[test]
fn connecting_to_nothing_is_an_io_error() {
    let err = Client::connect::<u8>("/tmp/multiproc-no-such-socket", None).unwrap_err();
    assert!(matches!(err, Error::Io(_)), "{err:?}");
}

// LIST-03: an empty key is a key (as in CPython 3.13+), not "no key".
#[test]
fn an_empty_key_authenticates_and_differs_from_other_keys() {
    let listener = Listener::bind("127.0.0.1:0", Some(b"")).unwrap();
    let address = listener.address();
    let server = std::thread::spawn(move || {
        serve_one_echo(&listener)?;
        listener.accept::<Vec<u8>>().map(drop)
    });
    assert_eq!(echo_once(&address, Some(b"")).unwrap(), b"ping");
    assert!(matches!(Client::connect::<Vec<u8>>(&address, Some(b"x")), Err(Error::Auth(_))));
    assert!(matches!(server.join().unwrap(), Err(Error::Auth(_))));
}

#[multiproc::remote]
fn say_hello(address: Address, key: Option<Vec<u8>>) {
    let conn = Client::connect::<String>(&address, key.as_deref()).expect("connect");
    conn.send("hello".to_owned()).expect("send");
}

// LIST-05: a child process's Client reaches the parent's Listener, for
// every family.
#[test]
fn a_child_process_connects_over_every_family() {
    let abstract_name = format!("@multiproc-child-{}", std::process::id());
    let listeners = [
        Listener::bind("127.0.0.1:0", Some(KEY)).unwrap(),
        Listener::bind_private(Some(KEY)).unwrap(),
        Listener::bind(abstract_name.as_str(), None).unwrap(),
    ];
    for (listener, key) in listeners.iter().zip([Some(KEY), Some(KEY), None]) {
        let child = multiproc::spawn(say_hello, (listener.address(), key.map(<[u8]>::to_vec))).unwrap();
        let ready = multiproc::connection::wait(&[listener], Some(common::LIMIT)).unwrap();
        assert_eq!(ready, [0], "{}: the child did not connect", listener.address());
        let conn = listener.accept::<String>().unwrap();
        assert_eq!(conn.recv().unwrap(), "hello");
        common::join(child).unwrap();
    }
}

// LIST-06: a client that sends and closes before accept() still delivers.
#[test]
fn a_message_sent_before_accept_is_delivered() {
    let listener = Listener::bind("127.0.0.1:0", None).unwrap();
    {
        let conn = Client::connect::<String>(listener.address(), None).unwrap();
        conn.send("early".to_owned()).unwrap();
    }
    let conn = listener.accept::<String>().unwrap();
    assert_eq!(conn.recv().unwrap(), "early");
    assert!(matches!(conn.recv(), Err(Error::Closed)));
}

// LIST-13: last_accepted is the TCP peer's address; None for an unnamed
// Unix peer.
#[test]
fn last_accepted_names_the_peer() {
    let listener = Listener::bind("127.0.0.1:0", Some(KEY)).unwrap();
    assert_eq!(listener.last_accepted(), None);
    let address = listener.address();
    let client = std::thread::spawn(move || {
        let conn = Client::connect::<u8>(&address, Some(KEY)).unwrap();
        conn.recv().unwrap()
    });
    let conn = listener.accept::<u8>().unwrap();
    let Some(Address::Tcp(peer)) = listener.last_accepted() else { panic!("{:?}", listener.last_accepted()) };
    assert!(peer.ip().is_loopback() && peer.port() != 0, "{peer}");
    conn.send(1).unwrap();
    assert_eq!(client.join().unwrap(), 1);

    let listener = Listener::bind_private(None).unwrap();
    let _client = Client::connect::<u8>(listener.address(), None).unwrap();
    let _conn = listener.accept::<u8>().unwrap();
    assert_eq!(listener.last_accepted(), None);
}
