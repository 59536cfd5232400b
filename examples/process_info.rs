//! The seed notes' `info()` example: the module name, the parent's pid and
//! the own pid, printed by the main process and by a child.

use multiproc::current_process;

/// What `info(title)` prints, as lines, so main can check them.
fn info(title: &str) -> Vec<String> {
    vec![
        title.to_owned(),
        format!("module name {}", module_path!()),
        format!("parent process {}", std::os::unix::process::parent_id()),
        format!("process ID: {}", std::process::id()),
    ]
}

#[multiproc::remote]
fn f(name: String) -> Vec<String> {
    let mut lines = info("function f");
    lines.push(format!("hello  {name} (I am {})", current_process().name()));
    for line in &lines {
        println!("{line}");
    }
    lines
}

fn main() -> multiproc::Result<()> {
    let main_lines = info("main line");
    for line in &main_lines {
        println!("{line}");
    }
    println!("======");
    let p = multiproc::spawn(f, ("zhaifg".to_owned(),))?;
    let child_pid = p.pid();
    let child_lines = p.join()?;

    assert_eq!(main_lines[1], "module name process_info");
    assert_eq!(main_lines[3], format!("process ID: {}", std::process::id()));
    assert_eq!(child_lines[0], "function f");
    assert_eq!(child_lines[1], "module name process_info");
    assert_eq!(child_lines[3], format!("process ID: {child_pid}"));
    assert_eq!(child_lines[4], "hello  zhaifg (I am Process-1)");
    // The OS parent of a child is the fork server; the process that asked
    // for it, the one multiproc reports as its parent, is this one.
    assert_eq!(multiproc::parent_process(), None);
    Ok(())
}
