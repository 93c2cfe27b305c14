"""A stand-in for the Docker Engine (none runs on these machines) that speaks its real wire format on a unix socket.

It implements the five calls the ``docker_socket`` backend makes, as the Engine API v1.43 documents them:
``POST /containers/create`` (201 ``{"Id"}``, or 404 for a missing image), ``POST /containers/{id}/start`` (204),
``GET /containers/{id}/logs?follow=1`` (the multiplexed stream: an 8-byte header per frame), ``POST
/containers/{id}/wait`` (``{"StatusCode"}``), ``POST /containers/{id}/kill`` and ``DELETE /containers/{id}``.
A "container" is a local process run in the bind-mounted directory; the test reads what the backend asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


@dataclass
class Container:
    spec: dict[str, Any]
    process: asyncio.subprocess.Process | None = None
    frames: list[bytes] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    done: bool = False
    deleted: bool = False


class FakeEngine:
    def __init__(self) -> None:
        self.containers: dict[str, Container] = {}
        self.app = Starlette(
            routes=[
                Route("/v1.43/containers/create", self.create, methods=["POST"]),
                Route("/v1.43/containers/{id}/start", self.start, methods=["POST"]),
                Route("/v1.43/containers/{id}/logs", self.logs, methods=["GET"]),
                Route("/v1.43/containers/{id}/wait", self.wait, methods=["POST"]),
                Route("/v1.43/containers/{id}/kill", self.kill, methods=["POST"]),
                Route("/v1.43/containers/{id}", self.delete, methods=["DELETE"]),
            ]
        )

    async def create(self, request: Request) -> Response:
        spec = await request.json()
        if spec["Image"] == "missing:latest":
            return JSONResponse({"message": "No such image: missing:latest"}, status_code=404)
        container_id = secrets.token_hex(32)
        self.containers[container_id] = Container(spec)
        return JSONResponse({"Id": container_id, "Warnings": []}, status_code=201)

    async def start(self, request: Request) -> Response:
        container = self.containers[request.path_params["id"]]
        spec = container.spec
        source, target, _ = spec["HostConfig"]["Binds"][0].split(":")
        cwd = Path(source) / PurePosixPath(spec["WorkingDir"]).relative_to(target)
        env = {"PATH": os.environ["PATH"], **dict(item.split("=", 1) for item in spec["Env"])}
        container.process = await asyncio.create_subprocess_exec(
            *spec["Cmd"], cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        asyncio.get_running_loop().create_task(self._collect(container))
        return Response(status_code=204)

    async def _collect(self, container: Container) -> None:
        process = container.process
        assert process is not None and process.stdout is not None and process.stderr is not None

        async def pump(stream: asyncio.StreamReader, kind: int) -> None:
            while chunk := await stream.read(4096):
                container.frames.append(struct.pack(">BxxxL", kind, len(chunk)) + chunk)
                container.changed.set()

        await asyncio.gather(pump(process.stdout, 1), pump(process.stderr, 2))
        await process.wait()
        container.done = True
        container.changed.set()

    async def logs(self, request: Request) -> Response:
        container = self.containers[request.path_params["id"]]

        async def frames() -> AsyncIterator[bytes]:
            sent = 0
            while True:
                while sent < len(container.frames):
                    yield container.frames[sent]
                    sent += 1
                if container.done:
                    return
                container.changed.clear()
                await container.changed.wait()

        return StreamingResponse(frames(), media_type="application/vnd.docker.multiplexed-stream")

    async def wait(self, request: Request) -> Response:
        container = self.containers[request.path_params["id"]]
        assert request.query_params["condition"] == "not-running"
        while not container.done:
            container.changed.clear()
            await container.changed.wait()
        assert container.process is not None
        code = container.process.returncode
        return JSONResponse({"StatusCode": 128 - code if code is not None and code < 0 else code, "Error": None})

    async def kill(self, request: Request) -> Response:
        container = self.containers[request.path_params["id"]]
        if container.process is not None and container.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                container.process.send_signal(signal.SIGKILL)
        return Response(status_code=204)

    async def delete(self, request: Request) -> Response:
        container = self.containers[request.path_params["id"]]
        assert request.query_params["force"] == "1"
        await self.kill(request)
        container.deleted = True
        return Response(status_code=204)
