//! berth-cgroups (placeholder until its owner fills it in)
