//! `imp::set_log_callback` against libimp: failed calls logged at `LogLevel::Error` with the status name, the
//! level threshold, a panicking handler, re-entrancy refused, many threads, the old handler dropped when
//! replaced, uninstalling. One test function: the log sink is process-wide, and this file is its own process.
use imp::{LogLevel, Model, Status};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

type Lines = Arc<Mutex<Vec<(LogLevel, String)>>>;

fn recorder(lines: &Lines) -> imp::LogCallback {
    let lines = Arc::clone(lines);
    Box::new(move |level, message| lines.lock().unwrap().push((level, message.to_string())))
}

fn has(lines: &Lines, level: LogLevel, part: &str) -> bool {
    lines.lock().unwrap().iter().any(|(l, m)| *l == level && m.contains(part))
}

fn count(lines: &Lines) -> usize {
    lines.lock().unwrap().len()
}

const BAD: &str = "/nonexistent/imp-log-test";

fn fail_load() {
    let e = Model::load(BAD).err().expect("loading a missing path fails");
    assert_eq!(e.status, Status::NotFound);
}

#[test]
fn log_callback() {
    // Debug: libimp's "callback set" line, then the failed load at Error, naming the status and the path.
    let a: Lines = Arc::default();
    imp::set_log_callback(Some(recorder(&a)), LogLevel::Debug).unwrap();
    assert!(has(&a, LogLevel::Debug, imp::version()), "the 'callback set' line: {:?}", a.lock().unwrap());
    fail_load();
    assert!(has(&a, LogLevel::Error, "IMP_ERR_NOT_FOUND"), "failure logged with its status: {:?}", a.lock().unwrap());
    assert!(has(&a, LogLevel::Error, BAD), "failure logged with the path");
    for (l, m) in a.lock().unwrap().iter() {
        println!("[{:?}] {}", l, m);
    }

    // Error threshold with a new handler: the old one is dropped and called no more; nothing above Error arrives.
    let b: Lines = Arc::default();
    assert_eq!(Arc::strong_count(&a), 2, "the installed handler holds a clone");
    let a_count = count(&a);
    imp::set_log_callback(Some(recorder(&b)), LogLevel::Error).unwrap();
    assert_eq!(Arc::strong_count(&a), 1, "the replaced handler was dropped");
    fail_load();
    assert_eq!(count(&a), a_count);
    assert!(has(&b, LogLevel::Error, "IMP_ERR_NOT_FOUND"));
    assert!(b.lock().unwrap().iter().all(|(l, _)| *l <= LogLevel::Error), "{:?}", b.lock().unwrap());

    // Warn threshold: Debug's "callback set" line is filtered out.
    let w: Lines = Arc::default();
    imp::set_log_callback(Some(recorder(&w)), LogLevel::Warn).unwrap();
    assert_eq!(count(&w), 0, "no Debug line at the Warn threshold");
    fail_load();
    assert!(has(&w, LogLevel::Error, "IMP_ERR_NOT_FOUND"));

    // A panicking handler: the panic stops in the trampoline, the call returns its own status.
    let panics = Arc::new(AtomicUsize::new(0));
    let p = Arc::clone(&panics);
    imp::set_log_callback(
        Some(Box::new(move |_, _| {
            p.fetch_add(1, Ordering::SeqCst);
            panic!("from the log handler");
        })),
        LogLevel::Debug,
    )
    .unwrap();
    fail_load();
    assert!(panics.load(Ordering::SeqCst) >= 2, "the panicking handler ran (callback set line, failed load)");

    // Re-entrancy: set_log_callback from inside a handler is refused with BadState and changes nothing.
    let nested: Arc<Mutex<Vec<Status>>> = Arc::default();
    let c: Lines = Arc::default();
    let (n2, c2) = (Arc::clone(&nested), Arc::clone(&c));
    imp::set_log_callback(
        Some(Box::new(move |level, message| {
            c2.lock().unwrap().push((level, message.to_string()));
            if let Err(e) = imp::set_log_callback(None, LogLevel::Error) {
                n2.lock().unwrap().push(e.status);
            }
        })),
        LogLevel::Debug,
    )
    .unwrap();
    fail_load();
    assert!(has(&c, LogLevel::Error, "IMP_ERR_NOT_FOUND"), "the handler stayed installed");
    let seen = nested.lock().unwrap().clone();
    assert!(seen.len() >= 2 && seen.iter().all(|s| *s == Status::BadState), "nested calls: {:?}", seen);

    // Many threads: every failure reaches the handler, one call at a time.
    let d: Lines = Arc::default();
    let running = Arc::new(AtomicUsize::new(0));
    let overlapped = Arc::new(AtomicUsize::new(0));
    let (d2, r2, o2) = (Arc::clone(&d), Arc::clone(&running), Arc::clone(&overlapped));
    imp::set_log_callback(
        Some(Box::new(move |level, message| {
            if r2.fetch_add(1, Ordering::SeqCst) != 0 {
                o2.fetch_add(1, Ordering::SeqCst);
            }
            d2.lock().unwrap().push((level, message.to_string()));
            std::thread::yield_now();
            r2.fetch_sub(1, Ordering::SeqCst);
        })),
        LogLevel::Error,
    )
    .unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(|| {
                for _ in 0..25 {
                    assert!(Model::load(BAD).is_err());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(count(&d), 100, "every failure from 4 threads is logged");
    assert_eq!(overlapped.load(Ordering::SeqCst), 0, "handler calls never overlap");

    // Off: nothing is called any more, and the last handler is dropped.
    imp::set_log_callback(None, LogLevel::Debug).unwrap();
    assert_eq!(Arc::strong_count(&d), 1, "uninstalling dropped the handler");
    let counts = (count(&b), count(&c), count(&d), count(&w), panics.load(Ordering::SeqCst));
    fail_load();
    assert_eq!(counts, (count(&b), count(&c), count(&d), count(&w), panics.load(Ordering::SeqCst)));
    println!(
        "log lines: {} + {} + {} + {} + {}, {} panics caught",
        count(&a),
        count(&b),
        count(&w),
        count(&c),
        count(&d),
        panics.load(Ordering::SeqCst)
    );
}
