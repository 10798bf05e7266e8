"""Checking a port is free before a command listens on it: a busy one gets one clear line."""

from __future__ import annotations

import socket

from core.errors import IotCareError


def port_free(host: str, port: int) -> bool:
    """Whether a server could listen on host:port now (SO_REUSEADDR, as the servers bind)."""
    if port == 0:
        return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def require_free_port(host: str, port: int, message: str) -> None:
    """Raise IotCareError(message) when host:port is taken (the CLI prints it as one line)."""
    if not port_free(host, port):
        raise IotCareError(message)
