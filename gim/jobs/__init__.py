"""One module per job; each exposes `run(ctx)` (called through gim.runner) and the library
functions the job is made of."""
