"""A TCP proxy for the integration tests: it sits between two servers and can delay each
direction, blackhole the path, heal it, and cut its connections.

It listens on a port of its own and forwards each connection it accepts to a target (host,
port), on an asyncio event loop in a thread of its own, so a test drives it with plain calls:

    proxy = TcpProxy(herd.peer_port("Beta")).start()   # then point Alpha's dial at proxy.port
    proxy.delay(2.5, towards="dialer")                 # Beta's bytes reach Alpha 2.5 s late
    proxy.blackhole(); ...; proxy.heal()
    proxy.close()

A blackhole is what a partition looks like from both ends: bytes already on their way are
held, closes are not passed on, and new connections get no answer at all. For that last part
the proxy stops accepting, shrinks its listening socket's backlog to 0 (Linux lets listen()
be called again) and fills the accept queue with connections of its own: Linux drops a SYN
that arrives while the accept queue is full, so the dialer's connect() sees neither SYN-ACK
nor RST and retries like a SYN into a partition. blackhole() checks that this holds (a probe connect must time out) and fails
loudly if it does not. On heal() connections that one side closed meanwhile are cut, the
others go on with what was held, and dialers get through at their next SYN.
"""

import asyncio
import socket
import struct
import threading
import time

from herdtest import free_ports

DIRECTIONS = ("target", "dialer")  # bytes travelling towards the target, towards the dialer
BACKLOG = 16


class _Pipe:
    """One direction of one connection: reads as it comes, writes when due and not held."""

    def __init__(self, proxy, reader, writer, towards):
        self.proxy, self.reader, self.writer, self.towards = proxy, reader, writer, towards
        self.queue = asyncio.Queue()  # (due, bytes, or None for the end of the stream)

    async def read(self, connection):
        try:
            while True:
                chunk = await self.reader.read(1 << 16)
                due = time.monotonic() + self.proxy.delays[self.towards]
                await self.queue.put((due, chunk or None))
                if not chunk:
                    break
        except OSError:
            await self.queue.put((0, None))
        if not self.proxy.flowing.is_set():
            connection.broken = True

    async def write(self, connection):
        try:
            while True:
                due, chunk = await self.queue.get()
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                await self.proxy.flowing.wait()
                if connection.broken:
                    return
                if chunk is None:
                    if self.writer.can_write_eof():
                        self.writer.write_eof()
                    return
                self.writer.write(chunk)
                await self.writer.drain()
        except OSError:
            connection.cut()


class _Connection:
    def __init__(self, proxy, dialer, target):
        (d_reader, d_writer), (t_reader, t_writer) = dialer, target
        self.writers = (d_writer, t_writer)
        self.broken = False  # one side went away during a blackhole: cut it when healed
        self.pipes = (_Pipe(proxy, d_reader, t_writer, "target"),
                      _Pipe(proxy, t_reader, d_writer, "dialer"))
        self.tasks = [asyncio.create_task(f(self)) for pipe in self.pipes for f in (pipe.read, pipe.write)]
        self.closing = asyncio.create_task(self.close_when_done())

    async def close_when_done(self):
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for writer in self.writers:
            writer.close()

    def cut(self):
        for writer in self.writers:
            sock = writer.get_extra_info("socket")
            if sock is not None:  # close with a reset, not a FIN
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        for task in self.tasks:
            task.cancel()

    def done(self):
        return self.closing.done()


class TcpProxy:
    def __init__(self, target_port, target_host="127.0.0.1", port=None, patience=0.0):
        """patience: how long a connection waits for the target to listen (then it is cut)."""
        self.target = (target_host, target_port)
        self.patience = patience
        self.port = port or free_ports(1)[0]
        self.delays = dict.fromkeys(DIRECTIONS, 0.0)
        self.connections = []
        self.fillers = []  # our own connections that keep the accept queue full
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="tcp-proxy")
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(BACKLOG)
        self.listener.setblocking(False)
        self.accepting = None

    # The test's side: each call runs on the proxy's loop and returns once done there.

    def start(self):
        self.thread.start()
        self._call(self._start())
        return self

    def delay(self, seconds, towards):
        """Bytes read from now on towards `towards` ("target" or "dialer") go out `seconds` late."""
        assert towards in DIRECTIONS, towards
        self._call(self._delay(towards, seconds))

    def blackhole(self, probe_timeout=0.3):
        self._call(self._blackhole())
        # Fill the accept queue until a connect gets no answer at all: that is the proof that
        # SYNs are dropped now, and the dialers' SYNs are dropped the same way.
        for _ in range(8):
            probe = socket.socket()
            probe.settimeout(probe_timeout)
            try:
                probe.connect(("127.0.0.1", self.port))
            except socket.timeout:
                probe.close()
                return
            except OSError as e:
                probe.close()
                raise AssertionError(f"the blackholed proxy answered a SYN: {e}") from e
            self.fillers.append(probe)
        raise AssertionError("the proxy's accept queue does not fill: SYNs are not dropped here")

    def heal(self):
        self._call(self._heal())

    def cut(self):
        """Closes every connection, both sides at once, with a reset."""
        self._call(self._cut())

    def count(self):
        """Connections open through the proxy."""
        return self._call(self._count())

    def close(self):
        if self.thread.is_alive():
            self._call(self._close())
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=5)
        self.listener.close()
        for filler in self.fillers:
            filler.close()

    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=10)

    # The loop's side.

    async def _start(self):
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.accepting = asyncio.create_task(self._accept())

    async def _accept(self):
        while True:
            sock, _ = await self.loop.sock_accept(self.listener)
            asyncio.create_task(self._forward(sock))

    async def _forward(self, sock):
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        dialer = await asyncio.open_connection(sock=sock)
        give_up = time.monotonic() + self.patience
        while True:
            try:
                target = await asyncio.wait_for(asyncio.open_connection(*self.target), 5)
                break
            except (OSError, asyncio.TimeoutError):
                if time.monotonic() >= give_up:
                    dialer[1].transport.abort()  # the target is down: so is the path through us
                    return
                await asyncio.sleep(0.02)
        target[1].get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connections = [c for c in self.connections if not c.done()]
        self.connections.append(_Connection(self, dialer, target))

    async def _delay(self, towards, seconds):
        self.delays[towards] = seconds

    async def _blackhole(self):
        self.flowing.clear()
        self.accepting.cancel()
        await asyncio.gather(self.accepting, return_exceptions=True)
        self.listener.listen(0)  # an accept queue of one: easy to fill

    async def _heal(self):
        for connection in self.connections:
            if connection.broken:
                connection.cut()
        self.flowing.set()
        # What waits in the accept queue: our fillers, and connections that came in before it
        # was full (their dialers have most likely given up on them by now).
        fillers = {filler.getsockname() for filler in self.fillers}
        while True:
            try:
                sock, address = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                break
            if address in fillers:
                sock.close()
            else:
                asyncio.create_task(self._forward(sock))
        for filler in self.fillers:
            filler.close()
        self.fillers.clear()
        self.listener.listen(BACKLOG)
        self.accepting = asyncio.create_task(self._accept())

    async def _cut(self):
        for connection in self.connections:
            if not connection.done():  # a closed one's sockets are gone
                connection.cut()
        self.connections.clear()

    async def _count(self):
        return sum(not c.done() for c in self.connections)

    async def _close(self):
        await self._cut()
        others = asyncio.all_tasks() - {asyncio.current_task()}
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
