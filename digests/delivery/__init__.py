"""The send engine: claim due delivery rows, send each once through the Sender port, record
what happened; it knows nothing of digests, pushes or texts."""
