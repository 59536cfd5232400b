//! Connections as handles: a `Connection` passed to a remote fn under every
//! start method, sent over another connection, returned by a remote fn.
//! IDs such as CONN-05 cite ../shared/spec/cpython-conformance.md.

mod common;

use std::time::{Duration, Instant};

use multiproc::connection::Connection;
use multiproc::{Context, Error, StartMethod};

use common::{LIMIT, join};

fn recv_within<T: serde::Serialize + serde::de::DeserializeOwned>(
    conn: &Connection<T>,
) -> multiproc::Result<T> {
    assert!(conn.poll(LIMIT)?, "nothing arrived within {LIMIT:?}");
    conn.recv()
}

/// Answers each string with its upper case until the parent closes.
#[multiproc::remote]
fn shout(conn: Connection<String>) -> usize {
    let mut answered = 0;
    while let Ok(line) = conn.recv() {
        conn.send(line.to_uppercase()).expect("send");
        answered += 1;
    }
    answered
}

#[multiproc::remote]
fn bytes_back(conn: Connection<()>) {
    let got = conn.recv_bytes().expect("recv_bytes");
    conn.send_bytes(&got.iter().rev().copied().collect::<Vec<_>>()).expect("send_bytes");
    // Wait for the parent's go before polling: poll must not consume.
    let _ = conn.recv_bytes();
}

#[multiproc::remote]
fn make_pipe_and_return_one_end() -> Connection<u64> {
    let (mine, theirs) = multiproc::pipe::<u64>().expect("pipe");
    mine.send(42).expect("send");
    theirs
}

#[multiproc::remote]
fn forward_a_connection(via: Connection<Connection<String>>) {
    let inner = via.recv().expect("recv a connection");
    inner.send("through a connection".to_owned()).expect("send");
}

#[multiproc::remote]
fn send_then_hang(conn: Connection<u32>) {
    conn.send(1).expect("send");
    std::thread::sleep(Duration::from_secs(3600));
}

#[test]
fn a_connection_argument_works_under_every_method() {
    for method in StartMethod::ALL {
        let (mine, theirs) = multiproc::pipe::<String>().unwrap();
        let p = Context::new(method).spawn(shout, (theirs,)).unwrap();
        for word in ["one", "", "three"] {
            mine.send(word.to_owned()).unwrap();
            assert_eq!(recv_within(&mine).unwrap(), word.to_uppercase(), "{method}");
        }
        drop(mine);
        assert_eq!(join(p).unwrap(), 3, "{method}");
    }
}

#[test]
fn raw_byte_messages_and_poll_cross_processes() {
    for method in StartMethod::ALL {
        let (mine, theirs) = multiproc::pipe::<()>().unwrap();
        let p = Context::new(method).spawn(bytes_back, (theirs,)).unwrap();
        assert!(!mine.poll(Duration::ZERO).unwrap());
        mine.send_bytes(b"abc").unwrap();
        assert!(mine.poll(LIMIT).unwrap());
        // CONN-12: polling again does not consume.
        assert!(mine.poll(Duration::ZERO).unwrap());
        assert_eq!(mine.recv_bytes().unwrap(), b"cba", "{method}");
        mine.send_bytes(b"go").unwrap();
        join(p).unwrap();
    }
}

// CONN-05: a peer that is gone gives Closed, not a hang.
#[test]
fn a_dead_peer_gives_closed() {
    for method in StartMethod::ALL {
        let (mine, theirs) = multiproc::pipe::<u32>().unwrap();
        let mut p = Context::new(method).spawn(send_then_hang, (theirs,)).unwrap();
        assert_eq!(recv_within(&mine).unwrap(), 1);
        p.kill().unwrap();
        let start = Instant::now();
        assert!(mine.poll(LIMIT).unwrap());
        assert!(matches!(mine.recv(), Err(Error::Closed)), "{method}");
        assert!(start.elapsed() < Duration::from_secs(5));
        let _ = join(p);
    }
}

#[test]
fn a_connection_can_be_returned_by_a_remote_fn() {
    for method in StartMethod::ALL {
        let end = join(Context::new(method).spawn(make_pipe_and_return_one_end, ()).unwrap()).unwrap();
        assert_eq!(recv_within(&end).unwrap(), 42, "{method}");
        // The child that held the other end has exited.
        assert!(end.poll(LIMIT).unwrap());
        assert!(matches!(end.recv(), Err(Error::Closed)));
    }
}

// CONN-14
#[test]
fn a_connection_can_travel_through_a_connection() {
    let (mine, theirs) = multiproc::pipe::<Connection<String>>().unwrap();
    let p = multiproc::spawn(forward_a_connection, (theirs,)).unwrap();
    let (inner_mine, inner_theirs) = multiproc::pipe::<String>().unwrap();
    mine.send(inner_theirs).unwrap();
    assert_eq!(recv_within(&inner_mine).unwrap(), "through a connection");
    join(p).unwrap();
}

// CONN-11, CONN-13: messages keep their boundaries, empty ones included.
#[test]
fn messages_keep_their_boundaries() {
    let (a, b) = multiproc::pipe::<()>().unwrap();
    let sent: [&[u8]; 8] = [b"hello", b"", b"a", b"b", b"", b"bye", b"", b"lop"];
    for m in sent {
        a.send_bytes(m).unwrap();
    }
    for m in sent {
        assert!(b.poll(Duration::ZERO).unwrap());
        assert_eq!(b.recv_bytes().unwrap(), m);
    }
    assert!(!b.poll(Duration::ZERO).unwrap());
}

// CONN-04
#[test]
fn poll_waits_about_its_timeout() {
    let (_a, b) = multiproc::pipe::<u8>().unwrap();
    let start = Instant::now();
    assert!(!b.poll(Duration::from_millis(100)).unwrap());
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(100) && waited < Duration::from_secs(2), "{waited:?}");
}

#[test]
fn a_message_of_another_type_is_a_codec_error_and_the_stream_goes_on() {
    let (a, b) = multiproc::pipe::<Vec<u64>>().unwrap();
    a.send_bytes(&[0xff, 0xff, 0xff]).unwrap();
    a.send(vec![1, 2]).unwrap();
    assert!(matches!(b.recv(), Err(Error::Codec(_))));
    assert_eq!(b.recv().unwrap(), vec![1, 2]);
}

#[test]
fn sending_to_a_closed_peer_is_closed() {
    let (a, b) = multiproc::pipe::<u8>().unwrap();
    drop(b);
    assert!(matches!(a.send(1), Err(Error::Closed)));
}

#[test]
fn a_big_message_round_trips() {
    let (a, b) = multiproc::pipe::<Vec<u8>>().unwrap();
    let big: Vec<u8> = (0..16 << 20).map(|i: u32| (i % 253) as u8).collect();
    let expected = big.clone();
    let sender = std::thread::spawn(move || a.send(big));
    assert_eq!(b.recv().unwrap(), expected);
    sender.join().unwrap().unwrap();
}

// CONN-08: a sub-slice is sent as it is.
#[test]
fn a_sub_slice_is_one_message() {
    let (a, b) = multiproc::pipe::<()>().unwrap();
    let buf: Vec<u8> = (b'a'..=b'z').collect();
    for range in [5..26, 7..15, 26..26, 0..26] {
        a.send_bytes(&buf[range.clone()]).unwrap();
        assert_eq!(b.recv_bytes().unwrap(), &buf[range]);
    }
}

// CONN-02, CONN-03
#[test]
fn recv_bytes_into_reports_a_short_buffer_with_the_whole_message() {
    let (a, b) = multiproc::pipe::<()>().unwrap();
    a.send_bytes(&[7u8; 110]).unwrap();
    a.send_bytes(&[1, 2, 3, 4]).unwrap();
    let mut buf = [0u8; 40];
    match b.recv_bytes_into(&mut buf) {
        Err(Error::BufferTooShort(whole)) => assert_eq!(whole, vec![7u8; 110]),
        other => panic!("{other:?}"),
    }
    assert_eq!(b.recv_bytes_into(&mut buf[3..]).unwrap(), 4);
    assert_eq!(&buf[3..7], &[1, 2, 3, 4]);
}

// CONN-10 (!): an oversized message is skipped, and the stream stays framed.
#[test]
fn an_oversized_message_is_skipped_and_the_next_one_reads() {
    let (a, b) = multiproc::pipe::<()>().unwrap();
    b.set_max_message_len(10);
    a.send_bytes(&[0u8; 1000]).unwrap();
    a.send_bytes(b"fits").unwrap();
    assert!(matches!(b.recv_bytes(), Err(Error::MessageTooLong { len: 1000, max: 10 })));
    assert_eq!(b.recv_bytes().unwrap(), b"fits");
}

// CONN-06
#[test]
fn a_one_way_pipe_refuses_the_wrong_direction() {
    let (reader, writer) = multiproc::connection::pipe_oneway::<u8>().unwrap();
    assert!(reader.is_readable() && !reader.is_writable());
    assert!(writer.is_writable() && !writer.is_readable());
    let err = reader.send(1).unwrap_err().to_string();
    assert!(err.contains("read-only"), "{err}");
    let err = writer.recv().unwrap_err().to_string();
    assert!(err.contains("write-only"), "{err}");
    assert!(writer.poll(Duration::ZERO).is_err());
    writer.send(5).unwrap();
    assert_eq!(reader.recv().unwrap(), 5);
    writer.close();
    assert!(matches!(reader.recv(), Err(Error::Closed)));
}

#[multiproc::remote]
fn one_way_writer(writer: Connection<String>) {
    writer.send("from the child".to_owned()).expect("send");
}

#[test]
fn a_one_way_end_keeps_its_direction_in_a_child() {
    let (reader, writer) = multiproc::connection::pipe_oneway::<String>().unwrap();
    let p = multiproc::spawn(one_way_writer, (writer,)).unwrap();
    assert_eq!(recv_within(&reader).unwrap(), "from the child");
    join(p).unwrap();
}

// CONN-18, CONN-19: wait returns the ready subset, and honours its timeout.
#[test]
fn wait_returns_what_is_ready() {
    use multiproc::connection::wait;
    let (a, b) = multiproc::pipe::<u8>().unwrap();
    let (c, d) = multiproc::pipe::<u8>().unwrap();
    let start = Instant::now();
    assert!(wait(&[&b, &d], Some(Duration::from_millis(200))).unwrap().is_empty());
    assert!(start.elapsed() >= Duration::from_millis(200));
    c.send(1).unwrap();
    assert_eq!(wait(&[&b, &d], Some(Duration::ZERO)).unwrap(), vec![1]);
    a.send(2).unwrap();
    assert_eq!(wait(&[&b, &d], None).unwrap(), vec![0, 1]);
    drop((a, c));
}

#[multiproc::remote]
fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

// CONN-20, PROC-15: process sentinels wait beside connections.
#[test]
fn wait_takes_process_sentinels_beside_connections() {
    use multiproc::connection::wait;
    for method in StartMethod::ALL {
        let (a, b) = multiproc::pipe::<u8>().unwrap();
        let p = Context::new(method).spawn(sleep_ms, (300,)).unwrap();
        assert!(wait(&[&p, &b], Some(Duration::ZERO)).unwrap().is_empty(), "{method}");
        a.send(1).unwrap();
        assert_eq!(wait(&[&p, &b], Some(LIMIT)).unwrap(), vec![1], "{method}");
        assert_eq!(b.recv().unwrap(), 1);
        assert_eq!(wait(&[&p, &b], Some(LIMIT)).unwrap(), vec![0], "{method}: the sentinel fires at exit");
        join(p).unwrap();
    }
}

/// Receives every message left on `conn` until the peer closes, with the
/// strings that connections among them carry.
#[multiproc::remote]
fn drain(conn: Connection<Message>) -> Vec<String> {
    let mut got = Vec::new();
    while let Ok(message) = conn.recv() {
        match message {
            Message::Text(text) => got.push(text),
            Message::Pipe(inner) => got.push(format!("via pipe: {}", inner.recv().expect("inner recv"))),
        }
    }
    got
}

#[derive(serde::Serialize, serde::Deserialize)]
enum Message {
    Text(String),
    Pipe(Connection<String>),
}

/// A connection reads ahead of the message it returns; handing it to
/// another process hands on what it read ahead too (messages and the
/// handles inside them), so nothing is lost or reordered.
#[test]
fn a_connection_read_ahead_goes_on_in_another_process() {
    let (a, b) = multiproc::pipe::<Message>().unwrap();
    let (inner_tx, inner_rx) = multiproc::pipe::<String>().unwrap();
    inner_tx.send("inside".into()).unwrap();
    a.send(Message::Text("first".into())).unwrap();
    a.send(Message::Text("second".into())).unwrap();
    a.send(Message::Pipe(inner_rx)).unwrap();
    a.send(Message::Text("third".into())).unwrap();
    assert!(matches!(recv_within(&b).unwrap(), Message::Text(t) if t == "first"));
    // All of the rest is in `b`'s reader by now: poll and wait know it
    // without asking the socket.
    assert!(b.poll(Duration::ZERO).unwrap());
    assert_eq!(multiproc::connection::wait(&[&b], Some(Duration::ZERO)).unwrap(), [0]);
    let child = multiproc::spawn(drain, (b,)).unwrap();
    a.send(Message::Text("fourth".into())).unwrap();
    drop(a);
    assert_eq!(join(child).unwrap(), ["second", "via pipe: inside", "third", "fourth"]);
}
