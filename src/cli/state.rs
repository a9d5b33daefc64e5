//! `berth state ID`: runc's state JSON.

use anyhow::{Context, Result};

use crate::container::Store;

pub fn print(store: &Store, id: &str) -> Result<i32> {
    let c = store.load(id).with_context(|| format!("state {id}"))?;
    let v = c.oci_state();
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(0)
}
