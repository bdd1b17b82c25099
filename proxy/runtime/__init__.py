"""The process: `tollgate serve` with its workers, their supervisor and their signals."""
