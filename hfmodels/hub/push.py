"""Publishing a run folder to the Hub in one commit, after its model card passed the check.

Faults. Every request a push makes has a timeout, HFMODELS_HUB_TIMEOUT seconds (default 60; huggingface_hub sets
none for uploads). It is the push's alone: huggingface_hub sends every request through one shared HTTP client, whose
own timeout (none) stays as it is; a request hook on that client gives the push's timeout to the requests made in
the push's context (`contextvars`), and to no other request of the process. (huggingface_hub uploads two or more git
LFS files in threads of its own, outside that context; those uploads keep its timeout, none, and its retries. Xet
uploads, its default, do not go through that client.) huggingface_hub retries its preupload call and the LFS batch
and uploads itself (408, 429, 5xx, timeouts, dropped connections: 5 retries, waits of 1, 2, 4, 8, 8 s). The calls it
does not retry (the token check, creating the repo and the branch, listing refs, the commit, the tag) are retried
here on the same faults with exponential backoff: HFMODELS_HUB_RETRIES retries (default 5), the first wait
HFMODELS_HUB_RETRY_WAIT seconds (default 1), doubling, at most 8 times the first. Each try of the commit starts over
from the preupload and names the branch head it started from as its parent: a commit that timed out but landed late
is not made twice (the later of the two is refused, or finds nothing left to commit). A commit that opens a pull
request is not retried (a second try could open a second one). A 401 or 403 is never retried. What still fails is a
PushError: one line naming the repo, the step that failed and what to do; the token is never in it.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx2
from huggingface_hub import CommitInfo, CommitOperationAdd, HfApi, get_token
from huggingface_hub.utils import get_session

from ..errors import first_line
from ..training.run_folder import read_run
from .card import ensure_card_ok, write_card

logger = logging.getLogger(__name__)

# namespace/name, as the Hub allows them: letters, digits, "-", "_", "."; no "--" or ".." and no leading/trailing "-."
REPO_ID = re.compile(r"^(?!.*(--|\.\.))[A-Za-z0-9][\w.-]{0,94}(?<![-.])/[A-Za-z0-9][\w.-]{0,94}(?<![-.])$")
NETWORK_ERRORS = (OSError, httpx2.HTTPError)  # the client's HTTP errors, offline mode and refused connections

TIMEOUT_ENV, RETRIES_ENV, RETRY_WAIT_ENV = "HFMODELS_HUB_TIMEOUT", "HFMODELS_HUB_RETRIES", "HFMODELS_HUB_RETRY_WAIT"
DEFAULT_TIMEOUT, CONNECT_TIMEOUT = 60.0, 10.0  # seconds: any one read, write or wait for a pooled connection; connect
RETRIES, DEFAULT_FIRST_WAIT, MAX_WAIT_FACTOR = 5, 1.0, 8  # as huggingface_hub's own backoff: waits 1, 2, 4, 8, 8 s
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})  # what huggingface_hub retries too
AUTH_STATUSES = frozenset({401, 403})
# The steps huggingface_hub sends through its own backoff (`http_backoff`): not retried again here.
RETRIED_BY_CLIENT = frozenset({"preupload", "LFS batch", "LFS upload", "Xet upload"})
# /api/{models,datasets,spaces}/ns/name/<action>/... -> the step of a push it is
REPO_ACTIONS = {"preupload": "preupload", "commit": "commit", "refs": "list refs", "branch": "create branch",
                "tag": "tag"}

T = TypeVar("T")


class PushError(ValueError):
    """A push that could not start or did not complete; the message says why and what to do."""


def check_repo_id(repo_id: str) -> None:
    if not REPO_ID.match(repo_id or ""):
        raise PushError(
            f"repo id {repo_id!r} is not of the form 'namespace/name' (e.g. 'my-name/digits-classifier'): letters, "
            "digits, '-', '_' and '.', at most 96 characters each part"
        )


# --- faults: what went wrong, at which step, and whether to try again ------------------------------------------------


@dataclass(frozen=True)
class HubFault:
    """A failed request of a push, from the client's exception."""

    step: str  # "preupload", "LFS batch", "LFS upload", "commit", "create repo", ...
    status: int | None  # the HTTP status; None when no answer came (timeout, dropped connection)
    description: str  # "HTTP 500", "no answer within 60 s (HFMODELS_HUB_TIMEOUT)", "connection failed (...)"
    detail: str  # the first line of the client's error

    @property
    def transient(self) -> bool:
        return self.status is None or self.status in TRANSIENT_STATUSES

    @property
    def auth(self) -> bool:
        return self.status in AUTH_STATUSES

    @property
    def retried_by_client(self) -> bool:
        return self.step in RETRIED_BY_CLIENT


def hub_fault(error: BaseException, endpoint: str, timeout: float) -> HubFault | None:
    """The HTTP fault behind `error` (following `raise ... from`: the client wraps failed LFS uploads in a
    RuntimeError); None when it is not one (a bug, a bad argument, offline mode)."""
    http_error, seen = error, set()
    while http_error is not None and not isinstance(http_error, httpx2.HTTPError) and id(http_error) not in seen:
        seen.add(id(http_error))
        http_error = http_error.__cause__
    if not isinstance(http_error, httpx2.HTTPError):
        return None
    response = getattr(http_error, "response", None)
    if isinstance(response, httpx2.Response):
        request, status, description = _request_of(response), response.status_code, f"HTTP {response.status_code}"
    elif isinstance(http_error, (httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError)):
        request, status = _request_of(http_error), None
        if isinstance(http_error, httpx2.ConnectTimeout):
            description = f"could not connect within {min(timeout, CONNECT_TIMEOUT):g} s"
        elif isinstance(http_error, httpx2.TimeoutException):
            description = f"no answer within {timeout:g} s ({TIMEOUT_ENV})"
        else:
            description = f"connection failed ({type(http_error).__name__}: {first_line(http_error)})"
    else:
        return None  # e.g. an invalid URL or too many redirects: nothing a retry mends
    return HubFault(_step_of(request, endpoint), status, description, first_line(http_error))


def _request_of(holder) -> httpx2.Request | None:
    try:
        return holder.request
    except RuntimeError:  # httpx2 raises when the request was never attached
        return None


def _step_of(request: httpx2.Request | None, endpoint: str) -> str:
    if request is None:
        return "upload"
    path = request.url.path
    parts = path.strip("/").split("/")
    if parts[:3] == ["api", "repos", "create"]:
        return "create repo"
    if parts[:2] == ["api", "validate-yaml"]:
        return "card metadata check"
    if parts[:2] == ["api", "whoami-v2"]:
        return "token check"
    if parts[0] == "api" and len(parts) >= 5 and parts[1] in ("models", "datasets", "spaces"):
        action = parts[4]
        return "Xet upload" if action.startswith("xet-") else REPO_ACTIONS.get(action, f"{request.method} {path}")
    if path.endswith(".git/info/lfs/objects/batch"):
        return "LFS batch"
    if request.method == "PUT" or ".git/info/lfs/" in path or not str(request.url).startswith(endpoint):
        return "LFS upload"  # the object's bytes (to storage, or multipart completion)
    return f"{request.method} {path}"


@dataclass(frozen=True)
class Backoff:
    """Waits between tries: `first_wait`, doubling, at most `max_wait`; `retries` of them."""

    retries: int = RETRIES
    first_wait: float = DEFAULT_FIRST_WAIT
    max_wait: float = DEFAULT_FIRST_WAIT * MAX_WAIT_FACTOR

    @classmethod
    def from_env(cls) -> Backoff:
        retries = os.environ.get(RETRIES_ENV, "").strip() or str(RETRIES)
        if not (retries.isascii() and retries.isdigit()):
            raise PushError(f"{RETRIES_ENV}={retries!r} is not a whole number >= 0")
        first = _seconds_from_env(RETRY_WAIT_ENV, DEFAULT_FIRST_WAIT, allow_zero=True)
        return cls(int(retries), first, first * MAX_WAIT_FACTOR)

    def waits(self) -> Iterator[float]:
        wait = self.first_wait
        for _ in range(self.retries):
            yield wait
            wait = min(self.max_wait, wait * 2)


def _seconds_from_env(name: str, default: float, allow_zero: bool = False) -> float:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    if not (seconds > 0 or (allow_zero and seconds == 0)) or seconds == float("inf"):
        raise PushError(f"{name}={value!r} is not a number of seconds {'>= 0' if allow_zero else '> 0'}")
    return seconds


PUSH_TIMEOUT: ContextVar[httpx2.Timeout | None] = ContextVar("hfmodels_push_timeout", default=None)
NO_LIMIT = httpx2.Timeout(None).as_dict()  # what huggingface_hub's client gives a request that sets no timeout


def apply_push_timeout(request: httpx2.Request) -> None:
    """A request hook of huggingface_hub's client: a request made inside `request_timeout` that sets no limit of
    its own gets the push's timeout; any other request passes unchanged."""
    timeout = PUSH_TIMEOUT.get()
    if timeout is not None and request.extensions.get("timeout") == NO_LIMIT:
        request.extensions = {**request.extensions, "timeout": timeout.as_dict()}


@contextmanager
def request_timeout(seconds: float) -> Iterator[None]:
    """The requests made in this block, in this context, that set no timeout wait at most `seconds` for any one read
    or write (`connect` at most CONNECT_TIMEOUT). huggingface_hub's client keeps its own timeout; the hook added to
    it (once) changes no request made outside such a block."""
    session = get_session()  # made again after set_client_factory or a fork: the hook is added to the current one
    if apply_push_timeout not in session.event_hooks["request"]:
        session.event_hooks = {**session.event_hooks,
                               "request": [*session.event_hooks["request"], apply_push_timeout]}
    token = PUSH_TIMEOUT.set(httpx2.Timeout(seconds, connect=min(seconds, CONNECT_TIMEOUT)))
    try:
        yield
    finally:
        PUSH_TIMEOUT.reset(token)


@dataclass(frozen=True)
class HubCall:
    """Timeouts and retries for the calls of one push, and the words its messages use."""

    endpoint: str
    where: str  # "<endpoint>/<repo_id>[@revision]"
    timeout: float
    backoff: Backoff

    @classmethod
    def from_env(cls, api: HfApi, where: str) -> HubCall:
        return cls(api.endpoint, where, _seconds_from_env(TIMEOUT_ENV, DEFAULT_TIMEOUT), Backoff.from_env())

    def fault(self, error: BaseException) -> HubFault | None:
        return hub_fault(error, self.endpoint, self.timeout)

    def run(self, call: Callable[[int], T], retry: Callable[[HubFault, int], bool] | None = None) -> T:
        """`call(attempt)` with the request timeout, tried again after a wait when it fails with a transient fault
        that huggingface_hub did not already retry (and `retry(fault, attempt)` agrees)."""
        waits = self.backoff.waits()
        attempt = 0
        while True:
            attempt += 1
            try:
                with request_timeout(self.timeout):
                    return call(attempt)
            except Exception as error:
                fault = self.fault(error)
                if fault is None or not (retry or _retry_transient)(fault, attempt):
                    raise
                wait = next(waits, None)
                if wait is None:
                    raise
                logger.warning("%s: %s at the %s step; trying again in %g s (retry %d of %d)", self.where,
                               fault.description, fault.step, wait, attempt, self.backoff.retries)
                time.sleep(wait)


def _retry_transient(fault: HubFault, attempt: int) -> bool:
    return fault.transient and not fault.retried_by_client


def failure_message(fault: HubFault, action: str, repo_id: str, outcome: str, retried: bool = True) -> str:
    """One line: `action` ("pushing run to <where>") failed at which step, why, what to do, and `outcome`."""
    head = f"{action} failed at the {fault.step} step"
    if fault.auth and fault.step == "LFS upload":  # the bytes go to the link the LFS batch gave, without the token
        return (f"{head}: the storage refused the upload link (HTTP {fault.status}; it may have expired): push again; "
                f"not retried, {outcome}")
    if fault.auth:
        why = ("the Hub rejected the token (401: not authenticated)" if fault.status == 401
               else "the token is not allowed to write there (403: forbidden)")
        return (f"{head}: {why}; use a token with write access to {repo_id} (--token, HF_TOKEN or `hf auth login`), "
                f"or push to a namespace you own; not retried, {outcome}")
    if fault.transient and not retried:
        return f"{head}: {fault.description}; not retried: {outcome}"
    if fault.transient:
        return (f"{head}: {fault.description}, still after retrying with backoff; {outcome}; the Hub or the "
                "network is down or overloaded: try again later")
    return f"{head}: {fault.detail}; {outcome}"


# --- one commit, created and retried safely --------------------------------------------------------------------------


def commit_files(
    api: HfApi,
    repo_id: str,
    files: Sequence[tuple[str, Path]],
    *,
    action: str,
    commit_message: str,
    token: str | None,
    repo_type: str = "model",
    private: bool = False,
    space_sdk: str | None = None,
    revision: str | None = None,
    tag: str | None = None,
    create_pr: bool = False,
) -> CommitInfo:
    """Creates `repo_id` when missing (and the branch `revision`, from main), then commits `files` (path in the
    repo, local path) in ONE commit, retrying what huggingface_hub does not; files the Hub already has unchanged
    are not uploaded again. `action` starts the messages ("pushing run to <where>"). Raises PushError."""
    url = f"{api.endpoint}/{'' if repo_type == 'model' else repo_type + 's/'}{repo_id}"
    hub = HubCall.from_env(api, url + (f"@{revision}" if revision else ""))
    branch = revision or "main"
    started_at: list[str | None] = []  # the branch head each attempt started from

    def attempt(number: int) -> CommitInfo:
        api.create_repo(repo_id, repo_type=repo_type, private=private, space_sdk=space_sdk, exist_ok=True, token=token)
        refs = api.list_repo_refs(repo_id, repo_type=repo_type, token=token)
        if tag and tag in {t.name for t in refs.tags}:
            raise PushError(f"tag {tag!r} already exists in {repo_id}; choose another --tag")
        heads = {b.name: b.target_commit for b in refs.branches}
        if branch not in heads and revision:
            api.create_branch(repo_id, branch=revision, repo_type=repo_type, token=token)
        parent = heads.get(branch, heads.get("main"))  # a new branch starts at main's head
        started_at.append(parent)
        # Fresh operations each attempt: the client remembers what it uploaded and what the Hub had, and an attempt
        # that timed out may have landed after all; then this one finds every file unchanged and commits nothing.
        return api.create_commit(
            repo_id, [CommitOperationAdd(name, path) for name, path in files], repo_type=repo_type, revision=revision,
            create_pr=create_pr, token=token, commit_message=commit_message, parent_commit=parent,
        )

    def retry(fault: HubFault, number: int) -> bool:
        if fault.step == "commit" and create_pr:
            return False  # a commit that timed out may have opened the pull request: a retry could open another
        if fault.step == "commit" and fault.status == 412 and number > 1:
            return True  # the branch moved since this attempt began: maybe by an earlier attempt that landed late
        return _retry_transient(fault, number)

    try:
        return hub.run(attempt, retry)
    except Exception as error:
        fault = hub.fault(error)
        if fault is None:
            if isinstance(error, NETWORK_ERRORS):
                raise PushError(f"{action} failed and nothing was committed: {first_line(error)}") from error
            raise
        outcome = "nothing was committed"
        if fault.step == "commit" and fault.transient:  # no answer, or a gateway's: the commit may have landed
            parent = started_at[-1] if started_at else None
            outcome = _committed_or_not(api, hub, url, repo_id, repo_type, branch, parent, create_pr, token)
        retried = not (fault.step == "commit" and create_pr)
        raise PushError(failure_message(fault, action, repo_id, outcome, retried)) from error


def _committed_or_not(api: HfApi, hub: HubCall, url: str, repo_id: str, repo_type: str, branch: str,
                      parent: str | None, create_pr: bool, token: str | None) -> str:
    """After a commit call that got no answer (or a gateway's error): what the branch shows now."""
    if create_pr:
        return f"a pull request may have been opened all the same: see {url}/discussions"
    try:
        with request_timeout(hub.timeout):
            refs = api.list_repo_refs(repo_id, repo_type=repo_type, token=token)
    except NETWORK_ERRORS:
        return f"whether the commit landed is unknown (the Hub did not answer): see {url}/commits/{branch}"
    head = {b.name: b.target_commit for b in refs.branches}.get(branch)
    if head == parent:
        return f"nothing was committed ({branch} is still at {str(parent)[:8]})"
    return f"{branch} moved from {str(parent)[:8]} to {str(head)[:8]} meanwhile: check whether that is this push"


# --- the run folder --------------------------------------------------------------------------------------------------


def authenticated_user(api: HfApi, token: str | None, hub: HubCall | None = None) -> str:
    """The user a token belongs to; a clear error for a missing or rejected token (a Hub that does not answer
    is retried first)."""
    if token is None:
        raise PushError("no Hub token: pass --token, set HF_TOKEN, or log in with `hf auth login`")
    hub = hub or HubCall.from_env(api, api.endpoint)
    try:
        return hub.run(lambda attempt: api.whoami(token=token))["name"]
    except NETWORK_ERRORS as error:
        fault = hub.fault(error)
        if fault is not None and fault.transient:
            raise PushError(f"could not check the token at {api.endpoint}: {fault.description}, still after retrying "
                            "with backoff; try again later") from error
        raise PushError(f"the Hub at {api.endpoint} did not accept the token: {first_line(error)}") from error


def refuse_local_base(run) -> None:
    """A LoRA run's adapter is only of use beside its base model: a base that is a local folder is not on the Hub."""
    from ..pretrained.adapters import is_adapter_run

    adapter = run.run_info.get("adapter")
    if adapter and Path(adapter["base_model"]).is_absolute() and is_adapter_run(run.path):
        raise PushError(
            f"{run.path} holds a LoRA adapter whose base model is the local folder {adapter['base_model']}, which no "
            "one who downloads the adapter has: push the base first (hfmodels push BASE USER/BASE), then train the "
            "adapter with --init-from USER/BASE"
        )


def push_run(
    run_dir: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    tag: str | None = None,
    create_pr: bool = False,
    commit_message: str | None = None,
    token: str | None = None,
    license: str | None = None,
) -> CommitInfo:
    """Renders and checks the run's model card, then uploads the model, its code, processor, card, plots and
    records in ONE commit to `repo_id` (created when missing; `revision` is a branch, created from main when
    missing). Files the Hub already has unchanged are not uploaded again. Returns the commit. Faults are retried
    as the module says; a push that fails leaves the branch where it was (the repo may have been created)."""
    check_repo_id(repo_id)
    run = read_run(run_dir)
    refuse_local_base(run)
    api = HfApi()
    token = token or get_token()
    where = f"{api.endpoint}/{repo_id}" + (f"@{revision}" if revision else "")
    hub = HubCall.from_env(api, where)
    authenticated_user(api, token, hub)
    write_card(run.path, repo_id, license)
    ensure_card_ok(run.path)
    files = [(name, run.path / name) for name in run.publishable_files()]
    commit = commit_files(
        api, repo_id, files,
        action=f"pushing {run.path} to {where}", token=token, private=private, revision=revision, tag=tag,
        create_pr=create_pr,
        commit_message=commit_message or f"Upload {run.family.name} model from hfmodels run {run.path.resolve().name}",
    )
    logger.info("pushed %d files from %s: %s", len(files), run.path, commit.pr_url or commit.commit_url)
    if tag:
        try:
            hub.run(lambda attempt: api.create_tag(repo_id, tag=tag, revision=commit.oid, token=token))
        except NETWORK_ERRORS as error:
            fault = hub.fault(error)
            why = first_line(error) if fault is None else f"{fault.description}: {fault.detail}"
            raise PushError(f"commit {commit.oid} reached {where}, but tagging it {tag!r} failed: {why}; tag it with "
                            f"`hf repos tag create {repo_id} {tag} --revision {commit.oid}`") from error
    return commit
