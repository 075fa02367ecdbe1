// Intentionally empty: CKVM is header-only (static inline helpers), but SwiftPM needs one source file.
