"""ftraceipc: trace task interactions through pipes and Unix sockets with ftrace."""

__version__ = "0.1.0"
