"""Energy per inference: the modeled energy of every tensor, request and workload on a device
profile (`modeled`), the measured kernel latencies the planner may budget (`latency`), and the
measured CPU figures of a served model (`measure`)."""
