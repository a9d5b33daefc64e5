//! `berth ps ID [--format table|json] [ps options]`: the container's processes, found through
//! its cgroup; the table is `ps`'s own output filtered to those pids (as runc does).

use anyhow::{anyhow, bail, Context, Result};

use crate::container::Store;

pub fn print(store: &Store, id: &str, format: &str, ps_args: &[String]) -> Result<i32> {
    let c = store.load(id).with_context(|| format!("ps {id}"))?;
    let status = c.status();
    // A stopped container has nothing to list, which is no error (runc prints the header):
    // what is left in its cgroup (no pid namespace) is still listed.
    let pids = match c.cgroup().and_then(|cg| cg.pids()) {
        Ok(p) => p,
        Err(_) if status == crate::container::Status::Stopped => Vec::new(),
        Err(e) => return Err(e.context(format!("ps {id}"))),
    };
    match format {
        "json" => println!("{}", serde_json::to_string(&pids)?),
        "table" => {
            let args: Vec<String> = if ps_args.is_empty() {
                vec!["-ef".into()]
            } else {
                ps_args.to_vec()
            };
            let out = std::process::Command::new("ps")
                .args(&args)
                .output()
                .map_err(|e| anyhow!("ps {id}: run ps: {e}"))?;
            if !out.status.success() {
                bail!(
                    "ps {id}: ps {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            print!(
                "{}",
                filter_ps(&String::from_utf8_lossy(&out.stdout), &pids)?
            );
        }
        other => bail!("--format: invalid format {other:?} (expected table or json)"),
    }
    Ok(0)
}

/// Keeps the header and the lines whose PID column is one of `pids`.
fn filter_ps(text: &str, pids: &[i32]) -> Result<String> {
    let mut lines = text.lines();
    let header = lines.next().ok_or_else(|| anyhow!("ps printed nothing"))?;
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| anyhow!("ps output has no PID column"))?;
    let mut out = format!("{header}\n");
    for l in lines {
        let pid = l
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out.push_str(l);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_by_pid_column() {
        let t = "UID   PID  PPID C STIME TTY TIME CMD\nroot  1 0 0 10:00 ? 00:00 init\nroot  42 1 0 10:00 ? 00:00 sleep 9\n";
        assert_eq!(
            filter_ps(t, &[42]).unwrap(),
            "UID   PID  PPID C STIME TTY TIME CMD\nroot  42 1 0 10:00 ? 00:00 sleep 9\n"
        );
        assert!(filter_ps("A B\n", &[1]).is_err());
    }
}
