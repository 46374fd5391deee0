"""Live cameras: `footage record` records each enabled live camera into rolling chunk files
and hands every closed chunk to ingest (the queue, or an in-process ingest thread).

One concern per module: `source` opens a stream (timeouts, one-line reasons without
passwords), `clock` turns packet timestamps into wall-clock times, `chunks` writes the
files (remuxed, never re-encoded), `report` keeps the camera's row and gaps, `sink` hands
closed chunks on, `recorder` is one camera's loop (reconnect, backoff, gaps), `retention`
deletes indexed files past their camera's retention, `supervisor` runs the recorders.
"""
