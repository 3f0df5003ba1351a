"""A loopback Hub: enough of the Hugging Face Hub HTTP API for the unmodified `huggingface_hub` client.

Point the client at it with `HF_ENDPOINT=<hub.endpoint>` (read at import: set it before importing, e.g. in a
subprocess) or `HfApi(endpoint=hub.endpoint)`. Everything lives in memory; commits are snapshots, so branches,
tags and old revisions keep their files. The endpoints and headers follow what the client sends and reads
(see the team's hub-protocol notes). Tests can inject failures with `hub.fail(...)`: an HTTP status, a wait, or a
dropped connection (a timeout when the wait is longer than the client's), on any path; `STAGE_PATHS` names the paths
of each stage of an upload. `hub.log` has every request with the time it arrived. A client that hangs up before its
answer is complete (it timed out, say) is normal: it is only counted in `hub.disconnects`; any other error of the
server prints its traceback to stderr (a bug in routing also answers 500, so the client does not hang).

    python -m hfmodels.testing.hub --port 8765 --token hf_loopback=tester
"""

from __future__ import annotations

import argparse
import base64
import fnmatch
import hashlib
import itertools
import json
import re
import select
import socket
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/"}
DEFAULT_TOKENS = {"hf_loopback_token": "tester"}
INVALID_TOKEN = "Invalid credentials in Authorization header"  # the client reads this exact text as "bad token"
LFS_POINTER_SIZE = 134  # what a git-lfs pointer file takes; reported in tree entries
GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.bin filter=lfs diff=lfs merge=lfs -text\n"
# What the Hub's own new repos start with (`upload_modes="hub"`): the binary formats of models and data sets.
HUB_LFS_PATTERNS = (
    "*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.ftz", "*.gz", "*.h5", "*.joblib", "*.lfs.*", "*.lz4", "*.mlmodel",
    "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.ot", "*.parquet", "*.pb", "*.pickle", "*.pkl", "*.pt",
    "*.pth", "*.rar", "*.safetensors", "saved_model/**/*", "*.tar.*", "*.tar", "*.tflite", "*.tgz", "*.wasm", "*.xz",
    "*.zip", "*.zst", "*tfevents*",
)
HUB_GITATTRIBUTES = "".join(f"{pattern} filter=lfs diff=lfs merge=lfs -text\n" for pattern in HUB_LFS_PATTERNS).encode()
HUB_LFS_SIZE = 10 * 1024 * 1024  # the Hub refuses larger files inline
UPLOAD_MODES = ("inline", "hub")
# The part of the request path of each stage of a push, for `hub.fail(STAGE_PATHS[stage], ...)`. The LFS stages are
# used only for files answered "lfs" in preupload (`lfs_threshold`, with the client's Xet off).
STAGE_PATHS = {
    "preupload": "/preupload/",  # POST /api/{t}/ns/name/preupload/{rev}: upload modes and stored oids
    "lfs-batch": "/info/lfs/objects/batch",  # POST /{P}ns/name.git/info/lfs/objects/batch
    "lfs-upload": "/lfs-upload/",  # PUT of an LFS object's bytes (the href the batch answer gives)
    "commit": "/commit/",  # POST /api/{t}/ns/name/commit/{rev}
}
INJECTED_MESSAGES = {
    401: INVALID_TOKEN,
    403: "You don't have the rights to write to this repository: the token has no write access",
}


def git_blob_sha1(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    size: int
    git_oid: str
    lfs: bool  # uploaded through the LFS batch API (else inline in the commit)

    @property
    def etag(self) -> str:
        """What the client names its cache file after: sha256 for LFS files, the git blob sha1 otherwise."""
        return self.sha256 if self.lfs else self.git_oid


@dataclass
class Commit:
    oid: str
    parent: str | None
    title: str
    message: str
    files: dict[str, StoredFile]
    date: str


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)  # name -> commit oid
    tags: dict[str, str] = field(default_factory=dict)
    pull_requests: int = 0

    def resolve(self, revision: str) -> str | None:
        """The commit a branch, tag or commit oid names; None when it names nothing."""
        if revision in self.branches:
            return self.branches[revision]
        if revision in self.tags:
            return self.tags[revision]
        return revision if revision in self.commits else None

    def history(self, oid: str) -> list[Commit]:
        commits = []
        while oid is not None:
            commits.append(self.commits[oid])
            oid = self.commits[oid].parent
        return commits


@dataclass
class Failure:
    """The next `times` requests whose path contains `path` (and method matches) fail, wait or are dropped."""

    path: str
    status: int | None
    times: int
    delay: float
    method: str | None
    drop: bool = False

    def matches(self, method: str, path: str) -> bool:
        return self.times > 0 and self.path in path and self.method in (None, method)


@dataclass(frozen=True)
class Served:
    """One request as the hub saw it: `status` None when the connection was dropped without an answer."""

    method: str
    path: str
    status: int | None
    arrived: float  # time.monotonic() when the request came in (its headers read)
    seconds: float  # from arrival to the answer (or the drop), injected delays included


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


class LoopbackHub:
    """The server and its state. Use as a context manager, or `start()` / `stop()`."""

    def __init__(self, tokens: dict[str, str] | None = None, host: str = "127.0.0.1", port: int = 0,
                 lfs_threshold: int | None = None, upload_modes: str = "inline"):
        """`tokens` maps each valid token to its user name. `upload_modes`: "inline" answers "regular" in preupload
        for every file (it travels inside the commit), so clients with Xet work unchanged; "hub" answers as the Hub
        does: "lfs" for the LFS patterns of the revision's .gitattributes (a new repo gets the Hub's), for files of
        10 MiB or more and for binary content; `datasets.push_to_hub` needs it. `lfs_threshold`: files this large
        or larger are answered "lfs" too. Clients of "lfs" answers must run with `HF_HUB_DISABLE_XET=1` (this Hub
        has no Xet storage)."""
        if upload_modes not in UPLOAD_MODES:
            raise ValueError(f"upload_modes must be one of {UPLOAD_MODES}, got {upload_modes!r}")
        self.tokens = dict(DEFAULT_TOKENS if tokens is None else tokens)
        self.lfs_threshold = lfs_threshold
        self.upload_modes = upload_modes
        self.repos: dict[tuple[str, str], Repo] = {}
        self.blobs: dict[str, bytes] = {}  # sha256 -> content
        self.failures: list[Failure] = []
        self.requests: list[tuple[str, str, int | None]] = []  # (method, path, status) of every request answered
        self.log: list[Served] = []  # the same requests with their times, in the order they were answered
        self.uploaded: list[str] = []  # path of every file whose content reached the server (commit or LFS PUT)
        self.lock = threading.RLock()
        self.idle = threading.Condition(self.lock)  # notified when a request is done
        self.in_flight = 0  # requests being handled (held by an injected delay, say)
        self.disconnects = 0  # connections the client closed or reset while the hub read or answered a request
        self.counter = itertools.count()
        self.server = _Server((host, port), _handler_for(self), self)
        self.thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> LoopbackHub:
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), name="loopback-hub", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self.thread is not None:
            self.thread.join()

    def __enter__(self) -> LoopbackHub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def fail(self, path: str, status: int | None = 500, times: int = 1, delay: float = 0.0,
             method: str | None = None, drop: bool = False) -> None:
        """Makes the next `times` requests whose path contains `path` answer `status` (after `delay` seconds);
        with `status=None` they only wait `delay` seconds and are then served normally (a slow Hub: a client that
        timed out meanwhile does not see the answer, but what the request did, e.g. a commit, happens). With
        `drop=True` the request is not handled and gets no answer: its connection is closed after `delay` seconds,
        or as soon as the client hangs up (a client whose timeout is shorter than `delay` sees a timeout); with
        `delay=0`, the client sees a reset connection. 401 and 403 carry the messages the Hub sends for a rejected
        token and for one without write access."""
        if drop and status is not None:
            raise ValueError("a dropped request has no status: pass status=None with drop=True")
        with self.lock:
            self.failures.append(Failure(path, status, times, delay, method, drop))

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Waits until no request is being handled: a request held past the client's timeout is logged only when
        its delay is over."""
        with self.idle:
            if not self.idle.wait_for(lambda: self.in_flight == 0, timeout):
                raise TimeoutError(f"{self.in_flight} requests still in flight after {timeout} s")

    def log_for(self, path: str) -> list[Served]:
        """The requests whose path contains `path`, in the order they arrived (after waiting for those in flight)."""
        self.wait_idle()
        with self.lock:
            return sorted((entry for entry in self.log if path in entry.path), key=lambda entry: entry.arrived)

    def commits(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> list[Commit]:
        """The history of `revision`, newest first."""
        with self.lock:
            repo = self.repos[(repo_type, repo_id)]
            return repo.history(repo.resolve(revision))

    def files(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> dict[str, bytes]:
        with self.lock:
            repo = self.repos[(repo_type, repo_id)]
            return {path: self.blobs[f.sha256] for path, f in repo.commits[repo.resolve(revision)].files.items()}

    # --- state changes, each under the lock -------------------------------------------------------------------

    def _store(self, content: bytes, lfs: bool) -> StoredFile:
        sha256 = hashlib.sha256(content).hexdigest()
        self.blobs[sha256] = content
        return StoredFile(sha256, len(content), git_blob_sha1(content), lfs)

    def _commit(self, repo: Repo, branch: str, files: dict[str, StoredFile], title: str, message: str) -> Commit:
        parent = repo.branches.get(branch)
        seed = (f"{repo.repo_id}\0{parent}\0{title}\0{next(self.counter)}\0"
                f"{sorted((p, f.sha256) for p, f in files.items())}")
        commit = Commit(
            oid=hashlib.sha1(seed.encode()).hexdigest(), parent=parent, title=title, message=message, files=files,
            date=time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        )
        repo.commits[commit.oid] = commit
        repo.branches[branch] = commit.oid
        return commit


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], hub: LoopbackHub):
        super().__init__(address, handler)
        self.hub = hub

    def handle_error(self, request, client_address) -> None:
        """Called by socketserver for an exception of a request's thread: a client that hung up (a broken pipe, a
        reset connection) is counted quietly; anything else prints its traceback, as socketserver does."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            with self.hub.idle:
                self.hub.disconnects += 1
                self.hub.idle.notify_all()
            return
        super().handle_error(request, client_address)


class _Request:
    """One parsed request: method, path segments (split first, then unquoted), query, body, user."""

    def __init__(self, handler: BaseHTTPRequestHandler, hub: LoopbackHub, body: bytes):
        url = urlsplit(handler.path)
        self.method = handler.command
        self.path = url.path
        self.segments = [unquote(part) for part in url.path.strip("/").split("/")]
        self.query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        self.body = body
        self.host_url = f"http://{handler.headers.get('Host')}"  # the address the client used, for URLs we hand out
        authorization = handler.headers.get("Authorization", "")
        token = authorization[len("Bearer "):] if authorization.startswith("Bearer ") else None
        if token is not None and token not in hub.tokens:
            raise HubError(401, INVALID_TOKEN)
        self.user = hub.tokens.get(token)

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"{}")
        except json.JSONDecodeError as error:
            raise HubError(400, f"request body is not JSON: {error}") from error


def _handler_for(hub: LoopbackHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms wait for a delayed ACK

        def log_message(self, format, *args):  # quiet: tests read `hub.requests` instead
            pass

        def handle_one(self):
            arrived = time.monotonic()  # the request line and headers are read; the body is next
            with hub.lock:
                hub.in_flight += 1
            try:
                body = _read_body(self)  # always, so a keep-alive connection stays in step
                self.answer(body, arrived)
            finally:
                with hub.idle:
                    hub.in_flight -= 1
                    hub.idle.notify_all()

        def answer(self, body: bytes, arrived: float):
            try:
                injected = _injected_failure(hub, self.command, urlsplit(self.path).path, self.connection)
                if injected is _DROP:
                    with hub.lock:
                        hub.requests.append((self.command, self.path, None))
                        hub.log.append(Served(self.command, self.path, None, arrived, time.monotonic() - arrived))
                    self.close_connection = True  # no answer: the client sees a timeout or a reset connection
                    return
                if injected is not None:
                    raise injected
                status, headers, body = _route(hub, _Request(self, hub, body))
            except Exception as error:  # noqa: BLE001  a bug here must still answer, or the client hangs
                if not isinstance(error, HubError):
                    traceback.print_exc()  # and be seen in the test output
                    error = HubError(500, f"loopback Hub bug: {error!r}")
                status = error.status
                headers = {"X-Error-Message": error.message}
                if error.code:
                    headers["X-Error-Code"] = error.code
                body = json.dumps({"error": error.message}).encode()
                headers["Content-Type"] = "application/json"
            with hub.lock:
                hub.requests.append((self.command, self.path, status))
                hub.log.append(Served(self.command, self.path, status, arrived, time.monotonic() - arrived))
            self.send_response(status)
            headers.setdefault("Content-Length", str(len(body)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_one

    return Handler


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while size := int(handler.rfile.readline().split(b";")[0], 16):
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()  # the CRLF after each chunk
        while handler.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
            pass
        return b"".join(chunks)
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


_DROP = object()  # what _injected_failure returns for a request to leave unanswered


def _injected_failure(hub: LoopbackHub, method: str, path: str, connection: socket.socket) -> HubError | object | None:
    """Waits as the first matching failure says; returns its error, _DROP for no answer, or None to serve."""
    with hub.lock:
        failure = next((f for f in hub.failures if f.matches(method, path)), None)
        if failure is not None:
            failure.times -= 1
    if failure is None:
        return None
    if failure.drop:
        _hold_until_hang_up(connection, failure.delay)
        return _DROP
    time.sleep(failure.delay)
    if failure.status is None:
        return None
    message = INJECTED_MESSAGES.get(failure.status, f"injected failure ({failure.status})")
    return HubError(failure.status, message)


def _hold_until_hang_up(connection: socket.socket, seconds: float) -> None:
    """Waits `seconds`, or less when the client closes the connection first (it timed out)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if not select.select([connection], [], [], left)[0]:
            return
        try:
            if not connection.recv(1, socket.MSG_PEEK):
                return  # the client hung up
        except OSError:
            return
        time.sleep(min(left, 0.01))  # the client sent more (a next request): keep holding this one


def _json(value: Any, status: int = 200) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(value).encode()


def _route(hub: LoopbackHub, request: _Request) -> tuple[int, dict[str, str], bytes]:
    s, method = request.segments, request.method
    if s[:2] == ["api", "whoami-v2"]:
        if request.user is None:
            raise HubError(401, INVALID_TOKEN)
        return _json({"type": "user", "name": request.user, "fullname": request.user, "orgs": [],
                      "auth": {"type": "access_token", "accessToken": {"displayName": "loopback", "role": "write"}}})
    if s[:3] == ["api", "repos", "create"] and method == "POST":
        return _create_repo(hub, request)
    if s[:2] == ["api", "validate-yaml"] and method == "POST":
        return _validate_yaml(request)
    if s[0] == "api" and len(s) >= 4 and s[1] in REPO_TYPES:
        repo_type, repo_id, action, rest = REPO_TYPES[s[1]], f"{s[2]}/{s[3]}", s[4] if len(s) > 4 else None, s[5:]
        return _repo_api(hub, request, repo_type, repo_id, action, rest)
    if method == "PUT" and s[0] == "lfs-upload":
        return _lfs_put(hub, request, s[1])
    # file and git-lfs URLs: /{prefix}ns/name/resolve/..., /{prefix}ns/name.git/info/lfs/objects/batch
    prefix_type = {"datasets": "dataset", "spaces": "space"}.get(s[0])
    parts = s[1:] if prefix_type else s
    repo_type = prefix_type or "model"
    if len(parts) >= 4 and parts[2] == "resolve" and method in ("GET", "HEAD"):
        return _resolve(hub, request, repo_type, f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:]))
    if len(parts) == 6 and parts[1].endswith(".git") and parts[2:] == ["info", "lfs", "objects", "batch"]:
        return _lfs_batch(hub, request, repo_type, f"{parts[0]}/{parts[1][:-4]}")
    raise HubError(404, f"no route for {method} {request.path}")


def _create_repo(hub: LoopbackHub, request: _Request):
    if request.user is None:
        raise HubError(401, INVALID_TOKEN)
    payload = request.json()
    repo_type = payload.get("type") or "model"
    if repo_type not in URL_PREFIXES:
        raise HubError(400, f"unknown repo type {repo_type!r}")
    namespace = payload.get("organization") or request.user
    if namespace != request.user:
        raise HubError(403, f"you ({request.user}) cannot create repos in {namespace!r}")
    repo_id = f"{namespace}/{payload['name']}"
    url = f"{request.host_url}/{URL_PREFIXES[repo_type]}{repo_id}"
    with hub.lock:
        if (repo_type, repo_id) in hub.repos:
            return _json({"error": "You already created this model repo", "url": url}, status=409)
        repo = Repo(repo_type, repo_id, private=payload.get("visibility") == "private" or bool(payload.get("private")))
        hub.repos[(repo_type, repo_id)] = repo
        attributes = HUB_GITATTRIBUTES if hub.upload_modes == "hub" else GITATTRIBUTES
        hub._commit(repo, "main", {".gitattributes": hub._store(attributes, lfs=False)}, "initial commit", "")
    return _json({"url": url, "name": repo_id, "id": repo_id})


def _validate_yaml(request: _Request):
    content = request.json().get("content", "")
    match = re.match(r"^---\s*\n(.*?)\n---\s*\n", content, re.DOTALL)
    errors = []
    if match:
        try:
            yaml.safe_load(match.group(1))
        except yaml.YAMLError as error:
            errors.append({"message": f"README.md metadata is not valid YAML: {error}"})
    return _json({"errors": errors, "warnings": []}, status=400 if errors else 200)


def _readable_repo(hub: LoopbackHub, request: _Request, repo_type: str, repo_id: str) -> Repo:
    """The repo, when it exists and the caller may read it; a private repo is 'not found' to anyone else."""
    repo = hub.repos.get((repo_type, repo_id))
    if repo is None:
        raise HubError(404, f"Repository {repo_id} not found", "RepoNotFound")
    if repo.private and request.user != repo_id.split("/")[0]:
        raise HubError(401, f"Repository {repo_id} not found", "RepoNotFound")
    return repo


def _writable_repo(hub: LoopbackHub, request: _Request, repo_type: str, repo_id: str) -> Repo:
    if request.user is None:
        raise HubError(401, f"Repository {repo_id} not found", "RepoNotFound")
    repo = _readable_repo(hub, request, repo_type, repo_id)
    if request.user != repo_id.split("/")[0]:
        raise HubError(403, f"you ({request.user}) cannot write to {repo_id}")
    return repo


def _commit_of(repo: Repo, revision: str) -> Commit:
    oid = repo.resolve(revision)
    if oid is None:
        raise HubError(404, f"Revision {revision!r} not found in {repo.repo_id}", "RevisionNotFound")
    return repo.commits[oid]


def _repo_api(hub: LoopbackHub, request: _Request, repo_type: str, repo_id: str, action: str | None, rest: list[str]):
    method = request.method
    with hub.lock:
        if action is None or (action == "revision" and method == "GET"):
            repo = _readable_repo(hub, request, repo_type, repo_id)
            return _repo_info(repo, _commit_of(repo, rest[0] if rest else "main"))
        if action == "tree" and method == "GET":
            repo = _readable_repo(hub, request, repo_type, repo_id)
            recursive = request.query.get("recursive", "false").lower() in ("1", "true")
            return _json(_tree(_commit_of(repo, rest[0]), "/".join(rest[1:]), recursive))
        if action == "refs" and method == "GET":
            repo = _readable_repo(hub, request, repo_type, repo_id)
            return _json({
                "branches": [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": c} for n, c in repo.branches.items()
                             if not n.startswith("refs/pr/")],
                "tags": [{"name": n, "ref": f"refs/tags/{n}", "targetCommit": c} for n, c in repo.tags.items()],
                "converts": [],
            })
        if action == "commits" and method == "GET":
            repo = _readable_repo(hub, request, repo_type, repo_id)
            return _json([{"id": c.oid, "title": c.title, "message": c.message, "date": c.date,
                           "authors": [{"user": repo_id.split("/")[0]}]}
                          for c in repo.history(_commit_of(repo, rest[0] if rest else "main").oid)])
        if action == "branch" and method == "POST":
            repo = _writable_repo(hub, request, repo_type, repo_id)
            start = request.json().get("startingPoint") or "main"
            if rest[0] in repo.branches:
                raise HubError(409, f"Branch {rest[0]!r} already exists")
            repo.branches[rest[0]] = _commit_of(repo, start).oid
            return _json({})
        if action == "tag" and method == "POST":
            repo = _writable_repo(hub, request, repo_type, repo_id)
            tag = request.json()["tag"]
            if tag in repo.tags:
                raise HubError(409, f"Tag {tag!r} already exists")
            repo.tags[tag] = _commit_of(repo, rest[0]).oid
            return _json({})
        if action == "preupload" and method == "POST":
            repo = _writable_repo(hub, request, repo_type, repo_id)
            stored = _commit_of(repo, rest[0]).files
            patterns = lfs_patterns(hub.blobs[stored[".gitattributes"].sha256]) if ".gitattributes" in stored else []
            answers = []
            for file in request.json()["files"]:
                mode = _upload_mode(hub, file, patterns)
                answers.append({"path": file["path"], "uploadMode": mode, "shouldIgnore": False,
                                "oid": _oid_for_client(stored.get(file["path"]), mode)})
            return _json({"files": answers})
        if action == "commit" and method == "POST":
            repo = _writable_repo(hub, request, repo_type, repo_id)
            return _apply_commit(hub, request, repo, rest[0])
    raise HubError(404, f"no route for {method} {request.path}")


def lfs_patterns(gitattributes: bytes) -> list[str]:
    """The patterns a .gitattributes file sends to LFS (`pattern filter=lfs ...`)."""
    lines = (line.split() for line in gitattributes.decode(errors="replace").splitlines())
    return [fields[0] for fields in lines if len(fields) > 1 and "filter=lfs" in fields[1:]]


def matches_pattern(path: str, pattern: str) -> bool:
    """git's rule, as far as the Hub's patterns need it: a pattern without a slash matches the file name."""
    return fnmatch.fnmatchcase(path if "/" in pattern else path.rsplit("/", 1)[-1], pattern)


def _upload_mode(hub: LoopbackHub, file: dict[str, Any], patterns: list[str]) -> str:
    size = file["size"]
    if hub.lfs_threshold is not None and size >= hub.lfs_threshold:
        return "lfs"
    if hub.upload_modes == "inline":
        return "regular"
    binary = b"\0" in base64.b64decode(file.get("sample") or "")
    lfs = size >= HUB_LFS_SIZE or binary or any(matches_pattern(file["path"], p) for p in patterns)
    return "lfs" if lfs else "regular"


def _oid_for_client(stored: StoredFile | None, mode: str) -> str | None:
    """The oid the client compares with its own to skip an unchanged file: sha256 for LFS, git sha1 otherwise."""
    if stored is None:
        return None
    return stored.sha256 if mode == "lfs" else stored.git_oid


def _repo_info(repo: Repo, commit: Commit):
    return _json({
        "id": repo.repo_id, "modelId": repo.repo_id, "sha": commit.oid, "private": repo.private,
        "lastModified": commit.date, "tags": [], "downloads": 0, "likes": 0,
        "siblings": [{"rfilename": path, "size": f.size} for path, f in sorted(commit.files.items())],
    })


def _tree(commit: Commit, path: str, recursive: bool) -> list[dict[str, Any]]:
    prefix = f"{path.strip('/')}/" if path.strip("/") else ""
    if prefix and not any(p.startswith(prefix) for p in commit.files):
        raise HubError(404, f"{path} does not exist in {commit.oid}", "EntryNotFound")
    entries, folders = [], set()
    for file_path, stored in sorted(commit.files.items()):
        if not file_path.startswith(prefix):
            continue
        relative = file_path[len(prefix):].split("/")
        for depth in range(1, len(relative)):
            folders.add(prefix + "/".join(relative[:depth]))
        if len(relative) > 1 and not recursive:
            continue
        entry = {"type": "file", "path": file_path, "size": stored.size, "oid": stored.git_oid}
        if stored.lfs:
            entry["lfs"] = {"oid": stored.sha256, "size": stored.size, "pointerSize": LFS_POINTER_SIZE}
        entries.append(entry)
    shown = folders if recursive else {f for f in folders if "/" not in f[len(prefix):]}
    directories = [{"type": "directory", "path": f, "oid": hashlib.sha1(f"{commit.oid}/{f}".encode()).hexdigest()}
                   for f in sorted(shown)]
    return directories + entries


def _apply_commit(hub: LoopbackHub, request: _Request, repo: Repo, revision: str):
    """One commit from the client's ndjson lines; nothing changes unless every line is valid."""
    lines = [json.loads(line) for line in request.body.splitlines() if line.strip()]
    header = next((line["value"] for line in lines if line["key"] == "header"), None)
    if header is None:
        raise HubError(400, "commit payload has no header line")
    head = _commit_of(repo, revision)
    if revision not in repo.branches:
        raise HubError(400, f"Revision {revision!r} is not a branch: commits go to branches")
    parent = header.get("parentCommit")
    if parent and parent != head.oid:
        raise HubError(412, f"A commit has happened since {parent}; {revision} is now at {head.oid}")
    files, uploaded = dict(head.files), []
    for line in lines:
        key, value = line["key"], line["value"]
        if key == "file":
            files[value["path"]] = hub._store(base64.b64decode(value["content"]), lfs=False)
            uploaded.append(value["path"])
        elif key == "lfsFile":
            content = hub.blobs.get(value["oid"])
            if content is None:
                raise HubError(422, f"LFS object {value['oid']} for {value['path']} was never uploaded")
            files[value["path"]] = hub._store(content, lfs=True)
        elif key == "deletedFile":
            if files.pop(value["path"], None) is None:
                raise HubError(404, f"A file with this name doesn't exist: {value['path']}", "EntryNotFound")
        elif key == "deletedFolder":
            folder = value["path"].rstrip("/") + "/"
            files = {p: f for p, f in files.items() if not p.startswith(folder)}
    branch = revision
    if request.query.get("create_pr") in ("1", "true"):  # a pull request is a branch refs/pr/N off the revision
        repo.pull_requests += 1
        branch = f"refs/pr/{repo.pull_requests}"
        repo.branches[branch] = head.oid
    commit = hub._commit(repo, branch, files, header.get("summary", ""), header.get("description", ""))
    hub.uploaded.extend(uploaded)
    url = f"{request.host_url}/{URL_PREFIXES[repo.repo_type]}{repo.repo_id}"
    pr_url = f"{url}/discussions/{repo.pull_requests}" if branch != revision else None
    return _json({"commitOid": commit.oid, "commitUrl": f"{url}/commit/{commit.oid}", "pullRequestUrl": pr_url})


def _lfs_batch(hub: LoopbackHub, request: _Request, repo_type: str, repo_id: str):
    with hub.lock:
        _writable_repo(hub, request, repo_type, repo_id)
        objects = []
        for item in request.json()["objects"]:
            entry = {"oid": item["oid"], "size": item["size"]}
            if item["oid"] not in hub.blobs:  # no actions: the server has it already
                entry["actions"] = {"upload": {"href": f"{request.host_url}/lfs-upload/{item['oid']}"}}
            objects.append(entry)
    return _json({"transfer": "basic", "objects": objects})


def _lfs_put(hub: LoopbackHub, request: _Request, oid: str):
    if hashlib.sha256(request.body).hexdigest() != oid:
        raise HubError(400, f"uploaded content does not match LFS oid {oid}")
    with hub.lock:
        hub.blobs[oid] = request.body
        hub.uploaded.append(f"lfs:{oid}")
    return 200, {}, b""


def _resolve(hub: LoopbackHub, request: _Request, repo_type: str, repo_id: str, revision: str, path: str):
    with hub.lock:
        repo = _readable_repo(hub, request, repo_type, repo_id)
        commit = _commit_of(repo, revision)
        stored = commit.files.get(path)
        if stored is None:
            raise HubError(404, f"Entry {path} not found in {repo_id}@{revision}", "EntryNotFound")
        content = hub.blobs[stored.sha256]
    headers = {
        "X-Repo-Commit": commit.oid,
        "ETag": f'"{stored.etag}"',
        "Content-Length": str(stored.size),
        "Content-Type": "application/octet-stream",
    }
    if stored.lfs:
        headers["X-Linked-Etag"] = f'"{stored.sha256}"'
        headers["X-Linked-Size"] = str(stored.size)
    return 200, headers, content


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hfmodels.testing.hub", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--token", action="append", default=[], metavar="TOKEN=USER",
                        help=f"a valid token and its user (repeatable; default {DEFAULT_TOKENS})")
    parser.add_argument("--lfs-threshold", type=int,
                        help="answer 'lfs' for files this large (needs HF_HUB_DISABLE_XET=1)")
    parser.add_argument("--upload-modes", choices=UPLOAD_MODES, default="inline",
                        help="hub: 'lfs' where the Hub answers it (needs HF_HUB_DISABLE_XET=1); inline: never")
    args = parser.parse_args(argv)
    tokens = dict(item.split("=", 1) for item in args.token) or None
    hub = LoopbackHub(tokens, args.host, args.port, args.lfs_threshold, args.upload_modes)
    print(f"loopback Hub at {hub.endpoint}  (export HF_ENDPOINT={hub.endpoint}; tokens: {hub.tokens})", flush=True)
    try:
        hub.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        hub.server.server_close()


if __name__ == "__main__":
    main()
