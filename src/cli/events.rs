//! `berth events ID [--stats] [--interval D]`: runc's event stream, one JSON object a line:
//! `{"type":"stats","id":...,"data":{...}}` every interval and `{"type":"oom","id":...}` when
//! the kernel OOM-kills a process of the container; it ends when the container stops.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use crate::container::Store;

/// runc's event, its fields in runc's order.
#[derive(serde::Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a serde_json::Value>,
}

pub fn run(store: &Store, id: &str, stats_once: bool, interval: &str) -> Result<i32> {
    let c = store.load(id).with_context(|| format!("events {id}"))?;
    if !c.status().has_process() {
        bail!(
            "events {id}: container not running ({})",
            c.status().as_str()
        );
    }
    let cg = c.cgroup()?;
    let event = |kind: &str, data: Option<serde_json::Value>| {
        let e = Event {
            kind,
            id,
            data: data.as_ref(),
        };
        if let Ok(line) = serde_json::to_string(&e) {
            println!("{line}");
        }
    };
    if stats_once {
        event(
            "stats",
            Some(cg.stats().with_context(|| format!("events {id}"))?),
        );
        return Ok(0);
    }
    let interval = parse_duration(interval).with_context(|| format!("--interval {interval:?}"))?;
    // OOM kills are noticed by polling the kernel's counter; stats go out every interval.
    let poll = interval.min(Duration::from_millis(100));
    let mut ooms = cg.oom_kills().unwrap_or(0);
    let mut since_stats = interval;
    while c.status().has_process() {
        if since_stats >= interval {
            if let Ok(s) = cg.stats() {
                event("stats", Some(s));
            }
            since_stats = Duration::ZERO;
        }
        let now = cg.oom_kills().unwrap_or(ooms);
        for _ in ooms..now {
            event("oom", None);
        }
        ooms = now;
        std::thread::sleep(poll);
        since_stats += poll;
    }
    Ok(0)
}

/// Go's duration syntax as runc takes it: "5s", "100ms", "1m30s", "2h".
fn parse_duration(s: &str) -> Result<Duration> {
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        bail!("empty duration");
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| anyhow!("missing unit"))?;
        let (num, tail) = rest.split_at(n);
        let v: f64 = num.parse().map_err(|_| anyhow!("bad number {num:?}"))?;
        let u = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(u);
        let mult = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => bail!("unknown unit {unit:?}"),
        };
        total += v * mult;
        rest = next;
    }
    if total <= 0.0 {
        bail!("duration interval must be greater than 0");
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("100ms").unwrap(), Duration::from_millis(100));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("3x").is_err());
    }
}
