"""A loopback Hugging Face Hub for tests: the real huggingface_hub client talks to it.

It speaks the parts of the Hub protocol that downloads and commits use, on
127.0.0.1 only, from a bounded pool of threads:

- ``HEAD``/``GET /{repo}/resolve/{revision}/{path}``: ``X-Repo-Commit``, the
  hashes the Hub announces (an LFS file: ``X-Linked-Etag`` = its sha256 and
  ``ETag`` = the git id of its pointer; a file kept in git: ``ETag`` = its git
  blob sha1), ``Content-Length``, byte ranges (the client resumes interrupted
  downloads), and the Hub's ``X-Error-Code`` (RepoNotFound, RevisionNotFound,
  EntryNotFound) on 404. Which files are LFS follows the Hub's default
  ``.gitattributes``: weights and archives by extension, anything over 10 MB.
- ``GET /api/models/{repo}/revision/{revision}`` and ``.../tree/{revision}``.
- ``POST /api/repos/create``, ``POST /api/models/{repo}/preupload/{revision}``
  (every file is uploaded "regular": base64 inside the commit),
  ``POST /api/validate-yaml`` (README metadata) and
  ``POST /api/models/{repo}/commit/{revision}`` (the client's NDJSON payload).
- ``GET /files/{name}``: plain files, for weights cards name by URL.

Faults are injected per file name (:meth:`LoopbackHub.inject`): a status code
(404, 500), a truncated body (the connection closes early) or wrong bytes of
the right length, or a slow answer (one second before the body). Status faults
apply to HEAD and GET, body faults to the next GET. Every request is logged.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from socketserver import ThreadingMixIn
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import yaml

Fault = Literal["404", "500", "truncate", "corrupt", "slow"]
BODY_FAULTS = ("truncate", "corrupt", "slow")
SLOW_SECONDS = 1.0
REPO = r"(?P<repo>[\w.-]+/[\w.-]+)"
RESOLVE = re.compile(rf"^/{REPO}/resolve/(?P<revision>[^/]+)/(?P<path>.+)$")
API_REVISION = re.compile(rf"^/api/models/{REPO}/revision/(?P<revision>[^/]+)$")
API_TREE = re.compile(rf"^/api/models/{REPO}/tree/(?P<revision>[^/]+)(?:/(?P<path>.*))?$")
API_PREUPLOAD = re.compile(rf"^/api/models/{REPO}/preupload/(?P<revision>[^/]+)$")
API_COMMIT = re.compile(rf"^/api/models/{REPO}/commit/(?P<revision>[^/]+)$")
PLAIN_FILE = re.compile(r"^/files/(?P<path>.+)$")
SHA1 = re.compile(r"^[0-9a-f]{40}$")
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".pickle", ".pkl", ".ckpt", ".onnx", ".zip")
LFS_MIN_SIZE = 10 * 1024 * 1024


def is_lfs(path: str, content: bytes) -> bool:
    """Whether the Hub would keep this file in LFS (its default .gitattributes)."""
    return path.endswith(LFS_SUFFIXES) or len(content) > LFS_MIN_SIZE


def git_blob_id(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def lfs_pointer(content: bytes) -> bytes:
    return (
        "version https://git-lfs.github.com/spec/v1\n"
        f"oid sha256:{hashlib.sha256(content).hexdigest()}\nsize {len(content)}\n"
    ).encode()


def announced_hashes(path: str, content: bytes) -> dict[str, str]:
    """The headers the Hub sends for a file: what huggingface_hub names the cached blob by."""
    if is_lfs(path, content):
        return {
            "X-Linked-Etag": f'"{hashlib.sha256(content).hexdigest()}"',
            "X-Linked-Size": str(len(content)),
            "ETag": f'"{git_blob_id(lfs_pointer(content))}"',
        }
    return {"ETag": f'"{git_blob_id(content)}"'}


@dataclass
class Repo:
    """Commits as complete snapshots (path -> bytes) and refs (branch or tag -> commit)."""

    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)

    def resolve(self, revision: str) -> str | None:
        if revision in self.commits:
            return revision
        return self.refs.get(revision)


class LoopbackHub:
    """The Hub's state, its faults and its request log; :meth:`start` serves it."""

    def __init__(self, max_threads: int = 16) -> None:
        self.repos: dict[str, Repo] = {}
        self.plain_files: dict[str, bytes] = {}
        self.faults: dict[str, list[Fault]] = {}
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.max_threads = max_threads
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- content --------------------------------------------------------------------------

    def commit(
        self, repo_id: str, files: dict[str, bytes], branch: str = "main", tag: str | None = None
    ) -> str:
        """Add a commit on ``branch`` with ``files`` added to its parent's; return its sha."""
        with self.lock:
            repo = self.repos.setdefault(repo_id, Repo())
            parent = repo.commits.get(repo.refs.get(branch, ""), {})
            return self._commit(repo, {**parent, **files}, branch, tag)

    def _commit(self, repo: Repo, snapshot: dict[str, bytes], branch: str, tag: str | None) -> str:
        digest = hashlib.sha1(f"{len(repo.commits)}".encode())
        for path in sorted(snapshot):
            digest.update(path.encode() + hashlib.sha256(snapshot[path]).digest())
        sha = digest.hexdigest()
        repo.commits[sha] = snapshot
        repo.refs[branch] = sha
        if tag is not None:
            repo.refs[tag] = sha
        return sha

    def add_plain_file(self, name: str, content: bytes) -> str:
        """Serve ``content`` at a plain URL (not a Hub repo); return that URL."""
        with self.lock:
            self.plain_files[name] = content
        return f"{self.endpoint}/files/{name}"

    def inject(self, name: str, *faults: Fault) -> None:
        """The next requests for file ``name`` (a path's last part) meet these faults, in order."""
        with self.lock:
            self.faults.setdefault(name, []).extend(faults)

    def downloads(self, name: str) -> int:
        """How many GET requests asked for a file called ``name``."""
        with self.lock:
            counts = Counter(
                path.rsplit("/", 1)[-1] for method, path in self.requests if method == "GET"
            )
        return counts[name]

    # -- serving --------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("the loopback hub is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self, port: int = 0) -> str:
        self._server = _Server(("127.0.0.1", port), _Handler, self)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self.endpoint

    def stop(self) -> None:
        """Stop listening and cut every open connection, so nothing is served afterwards."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def _take_fault(self, name: str, method: str) -> Fault | None:
        """The next fault for ``name``; faults of the body wait for a GET."""
        with self.lock:
            pending = self.faults.get(name)
            if not pending or (method == "HEAD" and pending[0] in BODY_FAULTS):
                return None
            return pending.pop(0)


class _Server(ThreadingMixIn, HTTPServer):
    """One thread per connection, at most ``hub.max_threads`` at once."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, hub: LoopbackHub) -> None:
        super().__init__(address, handler)
        self.hub = hub
        self.slots = threading.BoundedSemaphore(hub.max_threads)
        self.open: set[socket.socket] = set()
        self.open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        self.slots.acquire()
        with self.open_lock:
            self.open.add(request)
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.open_lock:
                self.open.discard(request)
            self.slots.release()

    def close_connections(self) -> None:
        with self.open_lock:
            for connection in self.open:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Requests go to the hub's log, not to stderr."""

    @property
    def hub(self) -> LoopbackHub:
        return self.server.hub

    def _route(self, method: str) -> None:
        path = urlsplit(self.path).path
        with self.hub.lock:
            self.hub.requests.append((method, unquote(path)))
        body = self._read_body() if method in ("POST", "PUT") else b""
        routes = {
            "HEAD": [(RESOLVE, self._resolve), (PLAIN_FILE, self._plain_file)],
            "GET": [
                (RESOLVE, self._resolve),
                (PLAIN_FILE, self._plain_file),
                (API_REVISION, self._revision),
                (API_TREE, self._tree),
            ],
            "POST": [
                (re.compile(r"^/api/repos/create$"), self._create_repo),
                (API_PREUPLOAD, self._preupload),
                (API_COMMIT, self._commit),
                (re.compile(r"^/api/validate-yaml$"), self._validate_yaml),
            ],
        }
        for pattern, handler in routes[method]:
            match = pattern.match(path)
            if match:
                handler(method, {k: unquote(v or "") for k, v in match.groupdict().items()}, body)
                return
        self._error(404, "EntryNotFound", f"no route for {method} {path}")

    def do_HEAD(self) -> None:
        self._route("HEAD")

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def _read_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    # -- responses --------------------------------------------------------------------------

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, data: Any, status: int = 200) -> None:
        self._send(status, json.dumps(data).encode(), {"Content-Type": "application/json"})

    def _error(self, status: int, code: str | None, message: str, **headers: str) -> None:
        extra = {"X-Error-Message": message, **headers}
        if code:
            extra["X-Error-Code"] = code
        self._send(status, json.dumps({"error": message}).encode(), extra)

    def _repo(self, repo_id: str, revision: str) -> tuple[Repo, str] | None:
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            self._error(404, "RepoNotFound", f"repository {repo_id} not found")
            return None
        sha = repo.resolve(revision)
        if sha is None:
            self._error(404, "RevisionNotFound", f"revision {revision} not found")
            return None
        return repo, sha

    # -- files ------------------------------------------------------------------------------

    def _resolve(self, method: str, match: dict[str, str], body: bytes) -> None:
        with self.hub.lock:
            found = self._repo(match["repo"], match["revision"])
            if found is None:
                return
            repo, sha = found
            content = repo.commits[sha].get(match["path"])
        if content is None:
            self._error(
                404, "EntryNotFound", f"{match['path']} not found", **{"X-Repo-Commit": sha}
            )
            return
        self._file(match["path"], content, {"X-Repo-Commit": sha})

    def _plain_file(self, method: str, match: dict[str, str], body: bytes) -> None:
        with self.hub.lock:
            content = self.hub.plain_files.get(match["path"])
        if content is None:
            self._error(404, None, f"{match['path']} not found")
            return
        self._file(match["path"], content, {})

    def _file(self, path: str, content: bytes, headers: dict[str, str]) -> None:
        """Serve a file (or the range asked for), unless a fault is pending for it."""
        fault = self.hub._take_fault(path.rsplit("/", 1)[-1], self.command)
        if fault in ("404", "500"):
            code = "EntryNotFound" if fault == "404" else None
            self._error(int(fault), code, f"injected {fault}", **headers)
            return
        headers = {**headers, **announced_hashes(path, content), "Accept-Ranges": "bytes"}
        if fault == "corrupt":
            content = bytes(byte ^ 0xFF for byte in content[:64]) + content[64:]
        if fault == "slow":
            time.sleep(SLOW_SECONDS)
        start = _range_start(self.headers.get("Range"))
        status = 206 if start else 200
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(content) - 1}/{len(content)}"
        if fault == "truncate" and self.command == "GET":
            self._send_truncated(status, content[start:], headers)
            return
        self._send(status, content[start:], headers)

    def _send_truncated(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        """Announce the whole body, send half of it, and close: a dropped connection."""
        self.send_response(status)
        for key, value in {"Content-Length": str(len(body)), **headers}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    # -- API ----------------------------------------------------------------------------------

    def _revision(self, method: str, match: dict[str, str], body: bytes) -> None:
        with self.hub.lock:
            found = self._repo(match["repo"], match["revision"])
            if found is None:
                return
            repo, sha = found
            siblings = [{"rfilename": path} for path in sorted(repo.commits[sha])]
        self._json({"id": match["repo"], "sha": sha, "siblings": siblings})

    def _tree(self, method: str, match: dict[str, str], body: bytes) -> None:
        with self.hub.lock:
            found = self._repo(match["repo"], match["revision"])
            if found is None:
                return
            repo, sha = found
            snapshot = dict(repo.commits[sha])
        prefix = match.get("path") or ""
        entries = [
            _tree_entry(path, content)
            for path, content in sorted(snapshot.items())
            if path.startswith(prefix)
        ]
        self._json(entries)

    def _create_repo(self, method: str, match: dict[str, str], body: bytes) -> None:
        payload = json.loads(body)
        repo_id = f"{payload['organization']}/{payload['name']}"
        with self.hub.lock:
            exists = repo_id in self.hub.repos
            if not exists:
                repo = self.hub.repos[repo_id] = Repo()
                self.hub._commit(repo, {".gitattributes": b""}, "main", None)
        if exists:
            self._error(409, None, f"You already created this model repo: {repo_id}")
            return
        self._json({"url": f"{self.hub.endpoint}/{repo_id}", "name": repo_id})

    def _preupload(self, method: str, match: dict[str, str], body: bytes) -> None:
        if match["repo"] not in self.hub.repos:
            self._error(404, "RepoNotFound", f"repository {match['repo']} not found")
            return
        files = json.loads(body)["files"]
        self._json(
            {
                "files": [
                    {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": None}
                    for f in files
                ]
            }
        )

    def _validate_yaml(self, method: str, match: dict[str, str], body: bytes) -> None:
        """README metadata must be a YAML mapping between ``---`` lines, as the Hub requires."""
        content = json.loads(body)["content"]
        found = re.match(r"^---\n(.*?)\n---\n", content, re.DOTALL)
        try:
            metadata = yaml.safe_load(found.group(1)) if found else None
        except yaml.YAMLError as error:
            metadata = f"invalid YAML: {error}"
        if not isinstance(metadata, dict):
            problem = {"message": f"README metadata is not a YAML mapping: {metadata!r}"}
            self._json({"errors": [problem], "warnings": []}, status=400)
            return
        self._json({"errors": [], "warnings": []})

    def _commit(self, method: str, match: dict[str, str], body: bytes) -> None:
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        unsupported = [line["key"] for line in lines if line["key"] not in ("header", "file")]
        if unsupported:
            self._error(400, None, f"loopback hub accepts regular files only, got {unsupported}")
            return
        added = {
            line["value"]["path"]: base64.b64decode(line["value"]["content"])
            for line in lines
            if line["key"] == "file"
        }
        with self.hub.lock:
            found = self._repo(match["repo"], match["revision"])
            if found is None:
                return
            repo, sha = found
            new_sha = self.hub._commit(
                repo, {**repo.commits[sha], **added}, match["revision"], None
            )
        self._json(
            {
                "commitUrl": f"{self.hub.endpoint}/{match['repo']}/commit/{new_sha}",
                "commitOid": new_sha,
                "pullRequestUrl": None,
            }
        )


def _tree_entry(path: str, content: bytes) -> dict[str, Any]:
    if not is_lfs(path, content):
        return {"type": "file", "path": path, "size": len(content), "oid": git_blob_id(content)}
    lfs = {"oid": hashlib.sha256(content).hexdigest(), "size": len(content)}
    pointer = git_blob_id(lfs_pointer(content))
    return {"type": "file", "path": path, "size": len(content), "oid": pointer, "lfs": lfs}


def _range_start(header: str | None) -> int:
    """The first byte of a ``bytes=N-`` range (the only form the client sends), else 0."""
    if not header:
        return 0
    found = re.fullmatch(r"bytes=(\d+)-", header.strip())
    return int(found.group(1)) if found else 0
