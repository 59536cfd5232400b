//! Named shared memory: `SharedMemory` between programs that share no
//! parent, and the removal of names nobody uses any more (MISC-07, and
//! MISC-05/P7 of ../shared/spec/cpython-conformance.md done right: no
//! leaked block, no warning).
//!
//! "Another program" here is this test binary run again with
//! `SHM_HELPER` set: it runs only the ignored `helper` test, which does
//! what the variable says.

mod common;

use std::io::ErrorKind;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use multiproc::{Error, SharedMemory, StartMethod};

use common::{LIMIT, children_of, join};

fn path(name: &str) -> String {
    format!("/dev/shm/{name}")
}

fn io_kind(result: multiproc::Result<SharedMemory>) -> ErrorKind {
    match result {
        Err(Error::Io(e)) => e.kind(),
        other => panic!("expected an io error, got {other:?}"),
    }
}

fn unique_name(tag: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("mp-test-{tag}-{}-{nanos}", std::process::id())
}

/// True once `path` is gone, false if it is still there after `within`.
fn vanishes(path: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if !Path::new(path).exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    !Path::new(path).exists()
}

/// Runs this binary again as another program doing `what` (see `helper`).
fn another_program(what: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "helper", "--ignored", "--nocapture", "--test-threads=1"])
        .env("SHM_HELPER", what)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// What the other program says, on a line of its own among the test
/// harness's output.
fn say(what: &str) {
    println!("\n@@{what}");
}

/// The lines the other program said, in `out`.
fn said(out: &str) -> String {
    out.lines().filter_map(|l| l.strip_prefix("@@")).collect::<Vec<_>>().join("\n")
}

/// Waits for `child` (bounded) and gives what it said.
fn finish(child: Child) -> String {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    let out = rx.recv_timeout(LIMIT).unwrap_or_else(|_| panic!("program {pid} did not end"));
    let out = out.unwrap();
    assert!(out.status.success(), "the other program failed: {:?}", out.status);
    said(&String::from_utf8(out.stdout).unwrap())
}

/// The other program. `create:<name>:<then>` creates a block of 4096 bytes
/// holding "made by <pid>", prints READY, then: `exit` returns, `keep`
/// keeps the block and returns, `wait` waits for its stdin to close, `kill`
/// SIGKILLs itself. `read:<name>` opens the block and prints its first
/// bytes as text, then writes "seen" at offset 100.
#[test]
#[ignore = "runs only as the other program of these tests"]
fn helper() {
    let Ok(what) = std::env::var("SHM_HELPER") else { return };
    let parts: Vec<&str> = what.split(':').collect();
    match parts[..] {
        ["create", name, then] => {
            let block = SharedMemory::create(name, 4096).unwrap();
            block.write_at(0, format!("made by {}", std::process::id()).as_bytes());
            say("READY");
            match then {
                "exit" => {}
                "keep" => block.keep().unwrap(),
                "wait" => {
                    let mut line = String::new();
                    let _ = std::io::stdin().read_line(&mut line);
                }
                "kill" => {
                    let _ = std::io::Write::flush(&mut std::io::stdout());
                    nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::SIGKILL).unwrap();
                }
                other => panic!("unknown step {other}"),
            }
        }
        ["read", name] => {
            let block = SharedMemory::open(name).unwrap();
            let text = block.to_vec().into_iter().take_while(|b| *b != 0).collect::<Vec<u8>>();
            say(&String::from_utf8(text).unwrap());
            block.write_at(100, b"seen");
        }
        _ => panic!("unknown helper task {what}"),
    }
}

#[test]
fn a_block_is_shared_by_name_within_a_process() {
    let name = unique_name("same");
    let a = SharedMemory::create(&name, 10_000).unwrap();
    assert_eq!(a.name(), name);
    assert_eq!(a.len(), 10_000);
    assert!(!a.is_empty());
    assert!(a.to_vec().iter().all(|b| *b == 0), "a new block is zeroed");
    let b = SharedMemory::open(&format!("/{name}")).unwrap();
    assert_eq!(b.len(), 10_000);
    a.write_at(9_990, b"0123456789");
    let mut buf = [0u8; 10];
    b.read_at(9_990, &mut buf);
    assert_eq!(&buf, b"0123456789");
    // SAFETY: nothing else writes the block while the slice lives.
    assert_eq!(unsafe { &b.as_slice()[9_995..] }, b"56789");
    a.unlink().unwrap();
    assert!(!Path::new(&path(&name)).exists());
    // Both handles still see the memory after the name is gone.
    b.write_at(0, b"x");
    a.read_at(0, &mut buf[..1]);
    assert_eq!(buf[0], b'x');
}

#[test]
fn as_mut_slice_writes_the_block() {
    let mut a = SharedMemory::create_unique(64).unwrap();
    let b = SharedMemory::open(a.name()).unwrap();
    // SAFETY: no other handle is used while the slice lives.
    unsafe { a.as_mut_slice()[..3].copy_from_slice(b"abc") };
    assert_eq!(&b.to_vec()[..3], b"abc");
    a.unlink().unwrap();
}

/// MISC-07: the errors Python raises, as io error kinds.
#[test]
fn bad_requests_give_the_errors_python_gives() {
    let name = unique_name("errors");
    let a = SharedMemory::create(&name, 100).unwrap();
    assert_eq!(io_kind(SharedMemory::create(&name, 100)), ErrorKind::AlreadyExists);
    assert_eq!(io_kind(SharedMemory::create(&unique_name("zero"), 0)), ErrorKind::InvalidInput);
    for bad in ["", "/", "a/b", "..", "nul\0byte", &"x".repeat(256)] {
        assert_eq!(io_kind(SharedMemory::open(bad)), ErrorKind::InvalidInput, "name {bad:?}");
        assert_eq!(io_kind(SharedMemory::create(bad, 10)), ErrorKind::InvalidInput, "name {bad:?}");
    }
    assert_eq!(io_kind(SharedMemory::open(&unique_name("missing"))), ErrorKind::NotFound);
    a.unlink().unwrap();
    match a.unlink() {
        Err(Error::Io(e)) => assert_eq!(e.kind(), ErrorKind::NotFound),
        other => panic!("a second unlink gave {other:?}"),
    }
    assert_eq!(io_kind(SharedMemory::open(&name)), ErrorKind::NotFound);
}

#[test]
fn out_of_bounds_access_panics_like_a_slice() {
    let a = SharedMemory::create_unique(16).unwrap();
    let name = a.name().to_owned();
    let result = std::panic::catch_unwind(|| a.write_at(10, &[0; 7]));
    assert!(result.is_err());
    let result = std::panic::catch_unwind(|| a.read_at(usize::MAX, &mut [0; 2]));
    assert!(result.is_err());
    SharedMemory::open(&name).unwrap().unlink().unwrap();
}

#[test]
fn unique_names_differ() {
    let a = SharedMemory::create_unique(1).unwrap();
    let b = SharedMemory::create_unique(1).unwrap();
    assert_ne!(a.name(), b.name());
    assert!(Path::new(&path(a.name())).exists());
    a.unlink().unwrap();
    b.unlink().unwrap();
}

#[multiproc::remote]
fn stamp(block: SharedMemory, at: usize) -> String {
    block.write_at(at, b"child");
    block.name().to_owned()
}

/// MISC-07: a handle travels (Python pickles it by name).
#[test]
fn a_handle_passed_to_a_child_reaches_the_same_block() {
    for method in StartMethod::ALL {
        let block = SharedMemory::create_unique(256).unwrap();
        let ctx = multiproc::Context::new(method);
        let name = join(ctx.spawn(stamp, (block.clone(), 40)).unwrap()).unwrap();
        assert_eq!(name, block.name());
        let mut buf = [0u8; 5];
        block.read_at(40, &mut buf);
        assert_eq!(&buf, b"child", "method {method}");
        block.unlink().unwrap();
    }
}

#[test]
fn another_program_opens_the_block_by_name() {
    let name = unique_name("other");
    let block = SharedMemory::create(&name, 4096).unwrap();
    block.write_at(0, b"hello from the creator");
    let out = finish(another_program(&format!("read:{name}")));
    assert_eq!(out, "hello from the creator");
    let mut buf = [0u8; 4];
    block.read_at(100, &mut buf);
    assert_eq!(&buf, b"seen");
    block.unlink().unwrap();
}

/// The name goes when the last program that knew it ends: here the creator
/// ends first, the reader keeps it alive, then ends too.
#[test]
fn a_name_nobody_uses_any_more_is_removed() {
    let name = unique_name("exit");
    let out = finish(another_program(&format!("create:{name}:exit")));
    assert_eq!(out, "READY");
    assert!(vanishes(&path(&name), LIMIT), "{} was left behind", path(&name));
}

#[test]
fn a_name_stays_while_another_program_uses_it() {
    let name = unique_name("shared");
    let mut creator = another_program(&format!("create:{name}:wait"));
    let mut reader = std::io::BufReader::new(creator.stdout.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("@@") {
        line.clear();
        assert_ne!(
            std::io::BufRead::read_line(&mut reader, &mut line).unwrap(),
            0,
            "the creator said nothing"
        );
    }
    assert_eq!(line.trim(), "@@READY");
    let block = SharedMemory::open(&name).unwrap();
    drop(creator.stdin.take());
    finish(creator);
    // The creator is gone; this process still has the block open.
    std::thread::sleep(Duration::from_millis(300));
    assert!(Path::new(&path(&name)).exists(), "removed while still in use");
    assert!(String::from_utf8(block.to_vec()).unwrap().starts_with("made by "));
    // The last handle goes, and the creator has ended: the name goes.
    drop(block);
    assert!(vanishes(&path(&name), LIMIT), "{} was left behind", path(&name));
}

#[test]
fn a_killed_creator_leaves_nothing_behind() {
    let name = unique_name("killed");
    let child = another_program(&format!("create:{name}:kill"));
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), None, "program {pid} was to be killed");
    assert_eq!(said(&String::from_utf8(out.stdout).unwrap()), "READY");
    assert!(vanishes(&path(&name), LIMIT), "{} was left behind by a killed program", path(&name));
}

#[test]
fn a_kept_block_outlives_its_creator() {
    let name = unique_name("kept");
    finish(another_program(&format!("create:{name}:keep")));
    std::thread::sleep(Duration::from_millis(300));
    assert!(Path::new(&path(&name)).exists(), "a kept block was removed");
    let block = SharedMemory::open(&name).unwrap();
    assert!(String::from_utf8(block.to_vec()).unwrap().starts_with("made by "));
    block.unlink().unwrap();
}

/// The tracker is not a child of the program: it does not show among its
/// children, and it has left the program's session.
#[test]
fn the_tracker_is_not_a_child() {
    let block = SharedMemory::create_unique(8).unwrap();
    let me = std::process::id();
    for child in children_of(me) {
        let cmd = common::cmdline(child);
        assert!(!cmd.contains("multiproc:tracker"), "tracker {child} ({cmd}) is a child of this process");
    }
    block.unlink().unwrap();
}

/// Python opens a block made here, and reads and writes it.
#[test]
fn python_opens_the_same_block() {
    let block = SharedMemory::create_unique(64).unwrap();
    block.write_at(0, b"from rust");
    let script = format!(
        "from multiprocessing import shared_memory, resource_tracker\n\
         shm = shared_memory.SharedMemory(name={:?})\n\
         resource_tracker.unregister(shm._name, 'shared_memory')\n\
         print(bytes(shm.buf[:9]).decode())\n\
         shm.buf[20:31] = b'from python'\n\
         shm.close()\n",
        block.name()
    );
    let out = Command::new("python3").arg("-c").arg(script).output().unwrap();
    assert!(out.status.success(), "python3: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), "from rust");
    let mut buf = [0u8; 11];
    block.read_at(20, &mut buf);
    assert_eq!(&buf, b"from python");
    block.unlink().unwrap();
}

#[multiproc::remote]
fn make_block(size: usize) -> String {
    let block = SharedMemory::create_unique(size).unwrap();
    block.write_at(0, b"made in a child");
    block.name().to_owned()
}

/// A child of any start method that makes a block has its name removed
/// after it ends: a forked child starts a tracker of its own rather than
/// using its parent's.
#[test]
fn a_block_made_by_a_child_goes_when_the_child_ends() {
    for method in StartMethod::ALL {
        let ctx = multiproc::Context::new(method);
        let name = join(ctx.spawn(make_block, (4096,)).unwrap()).unwrap();
        assert!(vanishes(&path(&name), LIMIT), "{} was left behind by a {method} child", path(&name));
    }
}
