"""The simulated world: writes a data root in the benchmarks' official formats. The library never imports it."""
