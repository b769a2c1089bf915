"""Decoding of captures: format files (``formats``), ring-buffer pages (``ringbuf``), merged
columnar batches (``decoder``) and output (``render``)."""

from ftraceipc.decode.decoder import (Batch, DecodeStats, DecodeWarning, Decoder, EventTable, LostMark,
                                      decode_stats)
from ftraceipc.decode.formats import EventFormat, Field, parse_format
from ftraceipc.decode.render import EventsFormat, InfoFormat, render_events, render_info

__all__ = ["Batch", "DecodeStats", "DecodeWarning", "Decoder", "EventTable", "LostMark", "decode_stats",
           "EventFormat", "Field", "parse_format", "EventsFormat", "InfoFormat", "render_events", "render_info"]
