"""Pure domain logic: states, the job graph, payloads, variable resolution. No I/O."""
