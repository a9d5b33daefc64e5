//! The runtime's log: runc's `--log FILE` and `--log-format text|json`.
//!
//! containerd's shim and conmon read the JSON lines (`{"level","msg","time"}`) of a failed call
//! to report why it failed, so errors go both there and to stderr.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warning",
            Level::Error => "error",
        }
    }
}

struct Logger {
    file: Option<File>,
    json: bool,
    min: Level,
}

static LOGGER: Mutex<Option<Logger>> = Mutex::new(None);

/// Sets up the log from the global flags. An unopenable log file is an error: an engine that
/// asked for one would otherwise lose every message.
pub fn init(path: Option<&std::path::Path>, format: &str, debug: bool) -> anyhow::Result<()> {
    let json = match format {
        "json" => true,
        "text" => false,
        other => anyhow::bail!("--log-format: unknown format {other:?} (expected text or json)"),
    };
    let file = match path {
        Some(p) => Some(
            // 0644 as runc's, less the caller's umask: never writable by others.
            OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o644)
                .open(p)
                .map_err(|e| anyhow::anyhow!("--log: open {}: {e}", p.display()))?,
        ),
        None => None,
    };
    let min = if debug { Level::Debug } else { Level::Info };
    *LOGGER.lock().unwrap_or_else(|e| e.into_inner()) = Some(Logger { file, json, min });
    Ok(())
}

/// Writes one message. Errors and warnings also reach stderr when there is no log file, as
/// runc does; an error is printed to stderr by the caller in either case.
pub fn log(level: Level, msg: &str) {
    let mut guard = LOGGER.lock().unwrap_or_else(|e| e.into_inner());
    let Some(logger) = guard.as_mut() else {
        if level >= Level::Warn {
            eprintln!("berth: {}: {msg}", level.as_str());
        }
        return;
    };
    if level < logger.min {
        return;
    }
    let line = format_line(logger.json, level, msg, &rfc3339_now());
    match logger.file.as_mut() {
        Some(f) => {
            let _ = f.write_all(line.as_bytes());
        }
        None if level != Level::Error => eprint!("{line}"),
        None => {}
    }
}

fn format_line(json: bool, level: Level, msg: &str, time: &str) -> String {
    if json {
        let v = serde_json::json!({"level": level.as_str(), "msg": msg, "time": time});
        format!("{v}\n")
    } else {
        format!(
            "time=\"{time}\" level={} msg={}\n",
            level.as_str(),
            serde_json::Value::String(msg.to_string())
        )
    }
}

pub fn warn(msg: &str) {
    log(Level::Warn, msg)
}

pub fn debug(msg: &str) {
    log(Level::Debug, msg)
}

pub fn error(msg: &str) {
    log(Level::Error, msg)
}

/// The current time as RFC 3339 in UTC with nanoseconds, the form runc's state and logs use.
pub fn rfc3339_now() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(rfc3339(1_795_000_000, 0), "2026-11-18T11:06:40.000000000Z");
    }

    #[test]
    fn json_line_has_runc_fields() {
        let l = format_line(true, Level::Error, "boom \"x\"", "T");
        let v: serde_json::Value = serde_json::from_str(l.trim()).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "boom \"x\"");
        assert_eq!(v["time"], "T");
        assert!(l.ends_with('\n'));
    }

    #[test]
    fn text_line_quotes_msg() {
        let l = format_line(false, Level::Warn, "a b", "T");
        assert_eq!(l, "time=\"T\" level=warning msg=\"a b\"\n");
    }
}
