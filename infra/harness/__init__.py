"""For tests, the soak and the benchmarks: sandboxes, the system as processes, load, faults."""
