"""A TCP listener on 127.0.0.1 for daemon tests whose tcp probe target goes down and comes
back."""

import socket
import threading


class Listener:
    """A TCP listener on 127.0.0.1 that stop() and start() take down and up again."""

    def __init__(self):
        self.port = None
        self.sock = None
        self.thread = None
        self.running = False
        self.start()

    def start(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port or 0))
        self.port = self.sock.getsockname()[1]
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.running = True
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
                conn.close()
            except (socket.timeout, OSError):
                continue

    def stop(self):
        self.running = False
        self.thread.join(timeout=5)
        self.sock.close()
