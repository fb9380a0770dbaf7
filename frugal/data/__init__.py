"""The data half's start: the source read and validated (`source`, `readers`), the raw table
split into pool / dev / test / selection (`dataset`), and new domains arriving (`domains`)."""
