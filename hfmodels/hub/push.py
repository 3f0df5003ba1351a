"""Publishing a run folder to the Hub in one commit, after its model card passed the check."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import httpx2
from huggingface_hub import CommitInfo, CommitOperationAdd, HfApi, get_token

from .card import ensure_card_ok, write_card
from ..training.run_folder import read_run

logger = logging.getLogger(__name__)

# namespace/name, as the Hub allows them: letters, digits, "-", "_", "."; no "--" or ".." and no leading/trailing "-."
REPO_ID = re.compile(r"^(?!.*(--|\.\.))[A-Za-z0-9][\w.-]{0,94}(?<![-.])/[A-Za-z0-9][\w.-]{0,94}(?<![-.])$")
NETWORK_ERRORS = (OSError, httpx2.HTTPError)  # the client's HTTP errors, offline mode and refused connections


class PushError(ValueError):
    """A push that could not start or did not complete; the message says why and what to do."""


def check_repo_id(repo_id: str) -> None:
    if not REPO_ID.match(repo_id or ""):
        raise PushError(
            f"repo id {repo_id!r} is not of the form 'namespace/name' (e.g. 'my-name/digits-classifier'): letters, "
            "digits, '-', '_' and '.', at most 96 characters each part"
        )


def authenticated_user(api: HfApi, token: str | None) -> str:
    """The user a token belongs to; a clear error for a missing or rejected token."""
    if token is None:
        raise PushError("no Hub token: pass --token, set HF_TOKEN, or log in with `hf auth login`")
    try:
        return api.whoami(token=token)["name"]
    except NETWORK_ERRORS as error:
        raise PushError(f"the Hub at {api.endpoint} did not accept the token: {first_line(error)}") from error


def first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


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
    missing). Files the Hub already has unchanged are not uploaded again. Returns the commit."""
    check_repo_id(repo_id)
    run = read_run(run_dir)
    api = HfApi()
    token = token or get_token()
    authenticated_user(api, token)
    write_card(run.path, repo_id, license)
    ensure_card_ok(run.path)
    operations = [CommitOperationAdd(name, run.path / name) for name in run.publishable_files()]
    where = f"{api.endpoint}/{repo_id}" + (f"@{revision}" if revision else "")
    try:
        api.create_repo(repo_id, private=private, exist_ok=True, token=token)
        refs = api.list_repo_refs(repo_id, token=token)
        if tag and tag in {t.name for t in refs.tags}:
            raise PushError(f"tag {tag!r} already exists in {repo_id}; choose another --tag")
        if revision and revision not in {b.name for b in refs.branches}:
            api.create_branch(repo_id, branch=revision, token=token)
        commit = api.create_commit(
            repo_id, operations, revision=revision, create_pr=create_pr, token=token,
            commit_message=commit_message or f"Upload {run.family.name} model from hfmodels run {run.path.resolve().name}",
        )
    except NETWORK_ERRORS as error:
        raise PushError(f"pushing {run.path} to {where} failed and nothing was committed: {first_line(error)}") from error
    logger.info("pushed %d files from %s: %s", len(operations), run.path, commit.pr_url or commit.commit_url)
    if tag:
        try:
            api.create_tag(repo_id, tag=tag, revision=commit.oid, token=token)
        except NETWORK_ERRORS as error:
            raise PushError(f"commit {commit.oid} reached {where}, but tagging it {tag!r} failed: "
                            f"{first_line(error)}") from error
    return commit
