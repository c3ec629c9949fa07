//! cgroups v1 and v2 behind one model (DESIGN.md section 3).
