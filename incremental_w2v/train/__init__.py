"""Training: planning a run, the ledger, rehearsal, updates, add-corpus and rebuild."""
