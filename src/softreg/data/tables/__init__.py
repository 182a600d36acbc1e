"""Users' tables through Apache Arrow: reading, their schema, labels, into memory or streamed."""
