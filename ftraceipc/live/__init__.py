"""Live mode: the analysis of a capture while it is recorded (``ftraceipc live``)."""
