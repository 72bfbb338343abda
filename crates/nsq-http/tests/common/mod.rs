//! What the HTTP integration tests share: a logger that keeps every line, so tests can check
//! what the server logged.

use std::sync::{Mutex, OnceLock};

pub struct CaptureLogger {
    lines: Mutex<Vec<String>>,
}

impl log::Log for CaptureLogger {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        if let Ok(mut lines) = self.lines.lock() {
            lines.push(format!("{} {}", record.level(), record.args()));
        }
    }
    fn flush(&self) {}
}

pub fn logger() -> &'static CaptureLogger {
    static LOGGER: OnceLock<&'static CaptureLogger> = OnceLock::new();
    LOGGER.get_or_init(|| {
        let logger: &'static CaptureLogger = Box::leak(Box::new(CaptureLogger {
            lines: Mutex::new(Vec::new()),
        }));
        let _ = log::set_logger(logger);
        log::set_max_level(log::LevelFilter::Info);
        logger
    })
}

pub fn log_lines_containing(needle: &str) -> Vec<String> {
    logger()
        .lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains(needle))
        .cloned()
        .collect()
}
