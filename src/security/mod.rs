//! Security settings applied to the container process beyond capabilities and
//! no_new_privs: for now seccomp (`linux.seccomp`); AppArmor and SELinux will live here too.

// Goes when init and bundle validation call into this module: until then the whole API is
// unused as far as the compiler can see.
#![allow(dead_code)]

pub mod seccomp;
