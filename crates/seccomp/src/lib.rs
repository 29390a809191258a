//! berth-seccomp (placeholder until its owner fills it in)
