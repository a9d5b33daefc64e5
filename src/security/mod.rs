//! Security settings applied to the container process beyond capabilities and
//! no_new_privs: for now seccomp (`linux.seccomp`); AppArmor and SELinux will live here too.

pub mod lsm;
pub mod seccomp;
