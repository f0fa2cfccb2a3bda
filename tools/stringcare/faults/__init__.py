"""`stringcare faults`: the fault campaign against the real Linux manager
(docs/reliability.md)."""
