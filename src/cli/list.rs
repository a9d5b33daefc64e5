//! `berth list`: a table (runc's columns), JSON, or ids only.

use anyhow::{bail, Result};

use crate::container::Store;

pub fn print(store: &Store, format: &str, quiet: bool) -> Result<i32> {
    let all = store.load_all()?;
    if quiet {
        for c in &all {
            println!("{}", c.state.id);
        }
        return Ok(0);
    }
    match format {
        "json" => {
            let v: Vec<_> = all.iter().map(|c| c.oci_state()).collect();
            println!("{}", serde_json::to_string(&v)?);
        }
        "table" => {
            let mut rows = vec![[
                "ID".to_string(),
                "PID".into(),
                "STATUS".into(),
                "BUNDLE".into(),
                "CREATED".into(),
                "OWNER".into(),
            ]];
            for c in &all {
                let status = c.status();
                let pid = if status.has_process() { c.state.pid } else { 0 };
                rows.push([
                    c.state.id.clone(),
                    pid.to_string(),
                    status.as_str().into(),
                    c.state.bundle.display().to_string(),
                    c.state.created.clone(),
                    c.state.owner.clone(),
                ]);
            }
            let widths: Vec<usize> = (0..6)
                .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
                .collect();
            for r in rows {
                let mut line = String::new();
                for (i, cell) in r.iter().enumerate() {
                    if i == 5 {
                        line.push_str(cell);
                    } else {
                        line.push_str(&format!("{cell:<w$}   ", w = widths[i]));
                    }
                }
                println!("{}", line.trim_end());
            }
        }
        other => bail!("--format: invalid format {other:?} (expected table or json)"),
    }
    Ok(0)
}
