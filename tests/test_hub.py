"""Publishing to the Hub, against the loopback Hub in hfmodels.testing (no test touches the internet)."""

import hashlib
import json
import shutil
import subprocess
import sys
import threading
from itertools import pairwise
from pathlib import Path

import pytest
import torch
from huggingface_hub import HfApi, constants
from huggingface_hub.errors import RepositoryNotFoundError
from huggingface_hub.utils import get_session, http_backoff

from hfmodels.hub import CardCheckError, NotAModelError, PushError, push_run, write_card
from hfmodels.hub.push import request_timeout
from hfmodels.testing.fixtures import TEST_TOKEN, TEST_USER, client_env
from hfmodels.testing.hub import STAGE_PATHS
from hfmodels.training import TrainingArguments, train

from .model_tester import run_without_hfmodels

REPO_ID = f"{TEST_USER}/digits-classifier"
TINY = ["hidden_sizes=[8,8]", "depths=[1,1]"]
RUN_FILES = {
    "config.json", "model.safetensors", "configuration_image_classifier.py", "modeling_image_classifier.py",
    "image_processing_image_classifier.py", "image_processing_base.py", "loading.py", "validation.py", "backbone.py",
    "conv_blocks.py",
    "preprocessor_config.json",
    "README.md", "learning_curves.png",
    "confusion_matrix.png",
    "eval_results.json", "training_args.json", "run_info.json", "training_log.json",
}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    output_dir = tmp_path_factory.mktemp("hub") / "run"
    train(TrainingArguments(max_steps=3, batch_size=16, output_dir=str(output_dir), model_config=TINY))
    return output_dir


@pytest.fixture
def run_dir(trained_run, tmp_path) -> Path:
    """A copy of the trained run that a test may change (a push writes the card and plots into it)."""
    return Path(shutil.copytree(trained_run, tmp_path / "run"))


@pytest.fixture(scope="module")
def carded_run(trained_run, tmp_path_factory) -> Path:
    """The trained run with its card and plots written once (rendering the plots is most of a push's time)."""
    output_dir = Path(shutil.copytree(trained_run, tmp_path_factory.mktemp("hub") / "carded"))
    write_card(output_dir, REPO_ID)
    return output_dir


# Hub faults: short timeouts and waits, so a push that retries 3 times and gives up takes at most 2 s. A request
# that times out is held until the client hangs up (HELD is only the limit).
CLIENT_TIMEOUT, HELD, FIRST_WAIT, RETRIES = 0.4, 5.0, 0.05, 3
WAITS = [FIRST_WAIT * 2**i for i in range(RETRIES)]  # 0.05, 0.1, 0.2 s: both hfmodels' backoff and the client's


@pytest.fixture
def fast_faults(monkeypatch):
    """hfmodels' timeout and backoff from its environment variables; huggingface_hub's own backoff (preupload, LFS)
    from its defaults, which have no other setting."""
    monkeypatch.setenv("HFMODELS_HUB_TIMEOUT", str(CLIENT_TIMEOUT))
    monkeypatch.setenv("HFMODELS_HUB_RETRIES", str(RETRIES))
    monkeypatch.setenv("HFMODELS_HUB_RETRY_WAIT", str(FIRST_WAIT))
    monkeypatch.setitem(http_backoff.__kwdefaults__, "max_retries", RETRIES)
    monkeypatch.setitem(http_backoff.__kwdefaults__, "base_wait_time", FIRST_WAIT)
    monkeypatch.setitem(http_backoff.__kwdefaults__, "max_wait_time", FIRST_WAIT * 8)


@pytest.fixture
def quick_run(carded_run, tmp_path, monkeypatch, fast_faults) -> Path:
    """A copy of the carded run whose pushes keep its card as it is (not rendered again)."""
    monkeypatch.setattr("hfmodels.hub.push.write_card", lambda *args, **kwargs: None)
    return Path(shutil.copytree(carded_run, tmp_path / "run"))


@pytest.fixture
def pushed(loopback_hub, quick_run, monkeypatch) -> Path:
    """The quick run pushed once to `REPO_ID`, then its README changed: a second push uploads that one file, and
    through git LFS (the client's Xet off), so each stage of an upload happens. The hub's records are cleared: they
    hold the second push's requests only."""
    push_run(quick_run, REPO_ID, token=TEST_TOKEN)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    loopback_hub.lfs_threshold = 1  # the files stored inline are "unchanged" for LFS too: same sha256
    readme = quick_run / "README.md"
    keep = "<!-- hfmodels:keep notes -->"
    readme.write_text(readme.read_text().replace(keep, f"{keep}Retrained."))
    loopback_hub.requests.clear()
    loopback_hub.log.clear()
    loopback_hub.uploaded.clear()
    return quick_run


def hfmodels_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hfmodels.cli", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_pushed_run_loads_without_hfmodels_with_identical_outputs_and_a_truthful_card(loopback_hub, run_dir, tmp_path):
    commit = push_run(run_dir, REPO_ID, token=TEST_TOKEN, license="apache-2.0")

    history = loopback_hub.commits(REPO_ID)
    assert [c.oid for c in history][:1] == [commit.oid] and len(history) == 2  # the Hub's initial commit + ours
    assert set(loopback_hub.files(REPO_ID)) == RUN_FILES | {".gitattributes"}

    from hfmodels.training.evaluation import load_trained

    model, _, _ = load_trained(run_dir)
    pixel_values = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    torch.save(pixel_values, tmp_path / "inputs.pt")
    run_without_hfmodels(
        f"""
        import json, torch
        from huggingface_hub import ModelCard
        from transformers import AutoModelForImageClassification
        model = AutoModelForImageClassification.from_pretrained("{REPO_ID}", trust_remote_code=True).eval()
        assert not type(model).__module__.startswith("hfmodels"), type(model).__module__
        with torch.no_grad():
            torch.save(model(pixel_values=torch.load("inputs.pt")).logits, "outputs.pt")
        card = ModelCard.load("{REPO_ID}")
        json.dump({{"data": card.data.to_dict(), "text": card.text}}, open("card.json", "w"))
        """,
        cwd=tmp_path, env=client_env(loopback_hub, tmp_path / "empty_hf_home"),
    )
    with torch.no_grad():
        expected = model.eval()(pixel_values=pixel_values).logits
    torch.testing.assert_close(torch.load(tmp_path / "outputs.pt"), expected, rtol=0, atol=0)

    card = json.loads((tmp_path / "card.json").read_text())
    data, eval_results = card["data"], json.loads((run_dir / "eval_results.json").read_text())
    assert data["library_name"] == "transformers" and data["pipeline_tag"] == "image-classification"
    assert data["license"] == "apache-2.0" and data["tags"] == ["hfmodels", "image-classifier", "custom_code"]
    [result] = data["model-index"][0]["results"]
    assert result["task"]["type"] == "image-classification"
    assert result["dataset"]["name"] == "digits" and result["dataset"]["split"] == "test"
    assert result["metrics"] == [{"type": "accuracy", "value": eval_results["metrics"]["accuracy"]}]
    assert "![Learning curves" in card["text"] and f'from_pretrained("{REPO_ID}"' in card["text"]


def test_pushing_the_same_run_twice_uploads_no_file_twice(loopback_hub, run_dir):
    push_run(run_dir, REPO_ID, token=TEST_TOKEN)
    # as on the Hub, the weights and pictures travel through LFS (named by their sha256 there), the rest inline
    by_hash = {f"lfs:{hashlib.sha256((run_dir / name).read_bytes()).hexdigest()}": name for name in RUN_FILES}
    assert {"model.safetensors", "learning_curves.png"} <= {by_hash.get(path) for path in loopback_hub.uploaded}
    assert sorted(by_hash.get(path, path) for path in loopback_hub.uploaded) == sorted(RUN_FILES)
    loopback_hub.uploaded.clear()
    push_run(run_dir, REPO_ID, token=TEST_TOKEN)
    assert loopback_hub.uploaded == []
    assert len(loopback_hub.commits(REPO_ID)) == 2  # nothing changed: no second commit


def test_push_to_a_new_branch_with_a_tag_leaves_main_untouched(loopback_hub, run_dir):
    commit = push_run(run_dir, REPO_ID, token=TEST_TOKEN, revision="feature/tiny", tag="v1")
    assert set(loopback_hub.files(REPO_ID, "main")) == {".gitattributes"}
    assert set(loopback_hub.files(REPO_ID, "feature/tiny")) == RUN_FILES | {".gitattributes"}
    refs = HfApi(endpoint=loopback_hub.endpoint).list_repo_refs(REPO_ID, token=TEST_TOKEN)
    assert {t.name: t.target_commit for t in refs.tags} == {"v1": commit.oid}
    with pytest.raises(PushError, match="tag 'v1' already exists"):
        push_run(run_dir, REPO_ID, token=TEST_TOKEN, tag="v1")


def test_create_pr_opens_a_pull_request_and_leaves_main_untouched(loopback_hub, run_dir):
    push_run(run_dir, REPO_ID, token=TEST_TOKEN)
    main_files = loopback_hub.files(REPO_ID)
    readme = run_dir / "README.md"
    note = "Retrained on a laptop; a person wrote this."
    readme.write_text(readme.read_text().replace("<!-- hfmodels:keep notes -->", f"<!-- hfmodels:keep notes -->{note}"))
    commit = push_run(run_dir, REPO_ID, token=TEST_TOKEN, create_pr=True)
    assert commit.pr_url.endswith(f"/{REPO_ID}/discussions/1")
    assert loopback_hub.files(REPO_ID) == main_files
    assert note in loopback_hub.files(REPO_ID, "refs/pr/1")["README.md"].decode()


def test_private_repo_cannot_be_read_without_the_token(loopback_hub, run_dir, tmp_path):
    push_run(run_dir, REPO_ID, token=TEST_TOKEN, private=True)
    api = HfApi(endpoint=loopback_hub.endpoint)
    with pytest.raises(RepositoryNotFoundError):
        api.model_info(REPO_ID, token=False)
    with pytest.raises(RepositoryNotFoundError):
        api.hf_hub_download(REPO_ID, "config.json", token=False, cache_dir=tmp_path / "cache")
    assert api.model_info(REPO_ID, token=TEST_TOKEN).private
    downloaded = api.hf_hub_download(REPO_ID, "config.json", token=TEST_TOKEN, cache_dir=tmp_path / "cache")
    assert Path(downloaded).read_bytes() == (run_dir / "config.json").read_bytes()


def test_large_files_travel_through_git_lfs_when_xet_is_off(loopback_hub, run_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    loopback_hub.lfs_threshold = 10_000  # model.safetensors (~15 kB) goes as LFS, the small files inline
    push_run(run_dir, REPO_ID, token=TEST_TOKEN)
    weights = (run_dir / "model.safetensors").read_bytes()
    assert f"lfs:{hashlib.sha256(weights).hexdigest()}" in loopback_hub.uploaded
    api = HfApi(endpoint=loopback_hub.endpoint, token=TEST_TOKEN)
    [entry] = [e for e in api.list_repo_tree(REPO_ID) if e.path == "model.safetensors"]
    assert entry.lfs is not None and entry.lfs.size == len(weights)
    assert Path(api.hf_hub_download(REPO_ID, "model.safetensors", cache_dir=tmp_path / "cache")).read_bytes() == weights


def test_a_transient_server_error_is_retried(loopback_hub, quick_run):
    loopback_hub.fail("/preupload/", status=500, times=1)
    push_run(quick_run, REPO_ID, token=TEST_TOKEN)
    preuploads = [status for method, path, status in loopback_hub.requests if "/preupload/" in path]
    assert preuploads == [500, 200]
    assert len(loopback_hub.commits(REPO_ID)) == 2


def test_a_persistent_server_error_is_a_clear_message_and_no_commit(loopback_hub, quick_run):
    """The first push of a repo fails at the commit: the repo was created (by the Hub, with its initial commit) and
    has no other commit."""
    loopback_hub.fail("/commit/", status=500, times=100)
    with pytest.raises(PushError, match="nothing was committed") as error:
        push_run(quick_run, REPO_ID, token=TEST_TOKEN)
    assert REPO_ID in str(error.value) and "500" in str(error.value)
    assert [c.title for c in loopback_hub.commits(REPO_ID)] == ["initial commit"]


FAULTS = {  # how to inject each, and the words of the message that says what happened
    "500": ({"status": 500}, "HTTP 500"),
    "timeout": ({"status": None, "delay": HELD, "drop": True},
                f"no answer within {CLIENT_TIMEOUT:g} s (HFMODELS_HUB_TIMEOUT)"),
    "401": ({"status": 401}, "the Hub rejected the token (401"),
    "403": ({"status": 403}, "the token is not allowed to write there (403"),
}
STEPS = {"preupload": "preupload", "lfs-batch": "LFS batch", "lfs-upload": "LFS upload", "commit": "commit"}


@pytest.mark.parametrize("stage", list(STAGE_PATHS))
@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_hub_fault_at_any_stage_is_retried_only_when_transient_and_leaves_the_previous_revision(
    loopback_hub, pushed, fault, stage, caplog
):
    """Push once, change the card, push again into a Hub that fails one stage of every attempt: 500s and timeouts
    are tried 1 + 3 times with growing waits (by huggingface_hub for preupload and LFS, by hfmodels for the commit),
    401 and 403 once; the message is one line naming the repo, the step and what to do, never the token; the repo
    shows the first push."""
    before = (loopback_hub.commits(REPO_ID), loopback_hub.files(REPO_ID))
    inject, words = FAULTS[fault]
    loopback_hub.fail(STAGE_PATHS[stage], times=100, **inject)
    with pytest.raises(PushError) as error:
        push_run(pushed, REPO_ID, token=TEST_TOKEN)
    loopback_hub.wait_idle()  # the held requests are over too

    message = str(error.value)
    assert "\n" not in message and TEST_TOKEN not in message and TEST_TOKEN not in caplog.text
    assert f"{REPO_ID} failed at the {STEPS[stage]} step: " in message
    if fault in ("401", "403") and stage == "lfs-upload":  # the upload link's fault, not the token's
        assert f"refused the upload link (HTTP {fault}" in message and "not retried, nothing was committed" in message
    elif fault in ("401", "403"):
        assert words in message and "write access" in message and "not retried, nothing was committed" in message
    else:
        assert f"step: {words}, still after retrying with backoff; nothing was committed" in message
        assert "try again later" in message
    assert (loopback_hub.commits(REPO_ID), loopback_hub.files(REPO_ID)) == before

    tries = loopback_hub.log_for(STAGE_PATHS[stage])
    status = {"500": 500, "timeout": None, "401": 401, "403": 403}[fault]
    if fault in ("401", "403"):  # once, and nothing after it: no retry, no later stage
        assert [entry.status for entry in tries] == [status]
        assert loopback_hub.log[-1] == tries[0]
    else:  # 1 + 3 tries, and between them waits that double
        assert [entry.status for entry in tries] == [status] * (1 + RETRIES)
        gaps = [later.arrived - earlier.arrived for earlier, later in pairwise(tries)]
        if fault == "500":  # from each answer to the next try: at least the wait
            idle = [later.arrived - (earlier.arrived + earlier.seconds) for earlier, later in pairwise(tries)]
            assert all(pause >= wait for pause, wait in zip(idle, WAITS)), (idle, WAITS)
        else:  # the client waited CLIENT_TIMEOUT for each answer, then the wait (less how late the hub saw a try)
            assert all(gap >= CLIENT_TIMEOUT + wait - 0.05 for gap, wait in zip(gaps, WAITS)), (gaps, WAITS)
        assert gaps[-1] > gaps[0], gaps


def test_a_commit_that_times_out_but_lands_late_is_not_made_twice(loopback_hub, pushed):
    """The Hub takes longer than the client waits but applies the commit: the retry, pinned to the branch head the
    push started from, and the late commit cannot both land."""
    first = loopback_hub.commits(REPO_ID)
    loopback_hub.fail(STAGE_PATHS["commit"], status=None, delay=2 * CLIENT_TIMEOUT, times=1)  # slow, not dropped
    commit = push_run(pushed, REPO_ID, token=TEST_TOKEN)
    loopback_hub.wait_idle()  # the slow request has been answered
    history = loopback_hub.commits(REPO_ID)
    assert [c.oid for c in history] == [commit.oid] + [c.oid for c in first]
    assert b"Retrained." in loopback_hub.files(REPO_ID)["README.md"]
    assert sorted(entry.status for entry in loopback_hub.log_for("/commit/")) == [200, 412]


def test_a_reset_connection_is_retried(loopback_hub, pushed):
    first = loopback_hub.commits(REPO_ID)
    loopback_hub.fail(STAGE_PATHS["lfs-upload"], status=None, drop=True)  # closed at once, no answer
    loopback_hub.fail(STAGE_PATHS["commit"], status=None, drop=True)
    commit = push_run(pushed, REPO_ID, token=TEST_TOKEN)
    assert [c.oid for c in loopback_hub.commits(REPO_ID)] == [commit.oid] + [c.oid for c in first]
    assert [entry.status for entry in loopback_hub.log_for(STAGE_PATHS["lfs-upload"])] == [None, 200]
    assert [entry.status for entry in loopback_hub.log_for(STAGE_PATHS["commit"])] == [None, 200]


def test_a_transient_commit_fault_is_retried_into_one_commit(loopback_hub, pushed):
    first = loopback_hub.commits(REPO_ID)
    loopback_hub.fail(STAGE_PATHS["commit"], status=503, times=2)
    commit = push_run(pushed, REPO_ID, token=TEST_TOKEN)
    assert [c.oid for c in loopback_hub.commits(REPO_ID)] == [commit.oid] + [c.oid for c in first]
    assert [entry.status for entry in loopback_hub.log_for("/commit/")] == [503, 503, 200]


def test_a_pull_request_commit_is_not_retried(loopback_hub, pushed):
    """A commit that opens a pull request and gets a gateway's error may have opened it: a retry could open another."""
    loopback_hub.fail(STAGE_PATHS["commit"], status=503, times=100)
    with pytest.raises(PushError, match=r"commit step: HTTP 503; not retried: a pull request may have been opened"):
        push_run(pushed, REPO_ID, token=TEST_TOKEN, create_pr=True)
    assert [entry.status for entry in loopback_hub.log_for(STAGE_PATHS["commit"])] == [503]


def test_the_push_timeout_is_the_pushs_alone(loopback_hub, pushed):
    """A push leaves huggingface_hub's shared client as it was: each of its own requests waits at most
    HFMODELS_HUB_TIMEOUT, and a request another thread makes meanwhile keeps the client's own (no limit)."""
    session = get_session()
    client_timeout = session.timeout
    with request_timeout(1):  # adds the push's hook first, so that the one below sees what it did
        pass
    seen: list[tuple[str, float | None, object]] = []  # (thread, read timeout of the request, the client's timeout)

    def another_request() -> None:
        HfApi(endpoint=loopback_hub.endpoint).whoami(token=TEST_TOKEN)

    def record(request) -> None:
        seen.append((threading.current_thread().name, request.extensions["timeout"]["read"], session.timeout))
        if len(seen) == 1:  # while the push is under way
            other = threading.Thread(target=another_request, name="other")
            other.start()
            other.join()

    session.event_hooks = {**session.event_hooks, "request": [*session.event_hooks["request"], record]}
    push_run(pushed, REPO_ID, token=TEST_TOKEN)
    pushing = [(timeout, client) for thread, timeout, client in seen if thread != "other"]
    assert len(pushing) >= 4 and all(each == (CLIENT_TIMEOUT, client_timeout) for each in pushing), seen
    assert [(timeout, client) for thread, timeout, client in seen if thread == "other"] == [(None, client_timeout)]
    assert session.timeout == client_timeout


@pytest.mark.parametrize("name, value", [("HFMODELS_HUB_TIMEOUT", "0"), ("HFMODELS_HUB_RETRY_WAIT", "soon"),
                                         ("HFMODELS_HUB_RETRIES", "-1")])
def test_a_bad_timeout_or_retry_setting_is_refused_before_any_request(loopback_hub, quick_run, monkeypatch, name,
                                                                      value):
    monkeypatch.setenv(name, value)
    with pytest.raises(PushError, match=f"{name}='{value}' is not a"):
        push_run(quick_run, REPO_ID, token=TEST_TOKEN)
    assert loopback_hub.requests == []


def test_a_token_without_write_access_creates_no_repo(loopback_hub, quick_run):
    loopback_hub.fail("/api/repos/create", status=403)
    with pytest.raises(PushError, match=f"{REPO_ID} failed at the create repo step: the token is not allowed to write"):
        push_run(quick_run, REPO_ID, token=TEST_TOKEN)
    assert loopback_hub.repos == {}
    assert [status for method, path, status in loopback_hub.requests if "/api/repos/create" in path] == [403]


def test_cli_push_into_a_failing_hub_exits_1_with_one_line(loopback_hub, pushed, capsys, monkeypatch):
    from hfmodels.cli import main

    monkeypatch.setenv("HF_TOKEN", TEST_TOKEN)
    loopback_hub.fail(STAGE_PATHS["commit"], status=500, times=100)
    assert main(["push", str(pushed), REPO_ID]) == 1
    err = capsys.readouterr().err
    [line] = [line for line in err.splitlines() if line.startswith("hfmodels push: error:")]
    assert f"{REPO_ID} failed at the commit step: HTTP 500" in line and "Traceback" not in err and TEST_TOKEN not in err


def test_a_space_push_retries_and_fails_like_a_model_push(loopback_hub, tmp_path, fast_faults):
    from hfmodels.app.space import push_space

    space, space_id = tmp_path / "space", f"{TEST_USER}/demo"
    space.mkdir()
    (space / "app.py").write_text("print('demo')\n")
    loopback_hub.fail(STAGE_PATHS["commit"], status=502, times=1)
    push_space(space, space_id, token=TEST_TOKEN)
    before = loopback_hub.commits(space_id, repo_type="space")
    (space / "app.py").write_text("print('demo 2')\n")
    loopback_hub.fail(STAGE_PATHS["commit"], status=403, times=1)
    with pytest.raises(PushError, match=f"spaces/{space_id} failed at the commit step: the token is not allowed"):
        push_space(space, space_id, token=TEST_TOKEN)
    assert loopback_hub.commits(space_id, repo_type="space") == before
    assert [entry.status for entry in loopback_hub.log_for("/commit/")] == [502, 200, 403]


@pytest.mark.parametrize("repo_id", ["no-namespace", "a/b/c", "tester/has space", "tester/-dash", ""])
def test_a_repo_id_of_the_wrong_form_is_refused(loopback_hub, run_dir, repo_id):
    with pytest.raises(PushError, match="namespace/name"):
        push_run(run_dir, repo_id, token=TEST_TOKEN)
    assert loopback_hub.requests == []


def test_no_token_and_a_bad_token_are_clear_errors_before_anything_is_pushed(loopback_hub, run_dir):
    with pytest.raises(PushError, match="no Hub token.*HF_TOKEN.*hf auth login"):
        push_run(run_dir, REPO_ID)
    with pytest.raises(PushError, match="did not accept the token: Invalid user token"):
        push_run(run_dir, REPO_ID, token="hf_not_a_valid_token")
    assert loopback_hub.repos == {}


def test_a_folder_that_is_not_a_model_is_refused(loopback_hub, run_dir, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotAModelError, match="no config.json"):
        push_run(tmp_path / "empty", REPO_ID, token=TEST_TOKEN)
    (run_dir / "model.safetensors").unlink()
    with pytest.raises(NotAModelError, match="missing model.safetensors"):
        push_run(run_dir, REPO_ID, token=TEST_TOKEN)
    assert loopback_hub.repos == {}


def test_a_failing_card_check_blocks_the_push(loopback_hub, run_dir):
    with pytest.raises(CardCheckError, match="license 'my-own-terms' is not a Hub license id"):
        push_run(run_dir, REPO_ID, token=TEST_TOKEN, license="my-own-terms")
    # a person's kept text that links a picture the run folder lacks
    readme = run_dir / "README.md"
    readme.write_text(readme.read_text().replace(
        "<!-- hfmodels:keep notes -->", "<!-- hfmodels:keep notes -->\n![samples](samples.png)\n"))
    with pytest.raises(CardCheckError, match="links the image samples.png"):
        push_run(run_dir, REPO_ID, token=TEST_TOKEN, license="mit")
    assert loopback_hub.repos == {}


def test_cli_push_and_evaluate_a_repo_id(loopback_hub, run_dir, tmp_path):
    env = client_env(loopback_hub, tmp_path / "hf_home")
    pushed = hfmodels_cli("push", str(run_dir), REPO_ID, "--commit-message", "first model", env=env)
    assert pushed.returncode == 0, pushed.stderr[-3000:]
    assert json.loads(pushed.stdout)["commit"] == loopback_hub.commits(REPO_ID)[0].oid
    assert loopback_hub.commits(REPO_ID)[0].title == "first model"

    evaluated = hfmodels_cli("evaluate", REPO_ID, env=env)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    saved = json.loads((run_dir / "eval_results.json").read_text())
    assert json.loads(evaluated.stdout)["metrics"]["accuracy"] == saved["metrics"]["accuracy"]

    refused = hfmodels_cli("push", str(run_dir), REPO_ID, env={**env, "HF_TOKEN": "hf_wrong"})
    assert refused.returncode == 1 and "did not accept the token" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_train_push_to_hub_publishes_the_run(loopback_hub, tmp_path, monkeypatch):
    from hfmodels.cli import main

    monkeypatch.setenv("HF_TOKEN", TEST_TOKEN)
    argv = ["train", "--max-steps", "2", "--batch-size", "16", "--output-dir", str(tmp_path / "run"),
            "--model-config", *TINY, "--push-to-hub", REPO_ID, "--hub-private"]
    assert main(argv) == 0
    assert loopback_hub.repos[("model", REPO_ID)].private
    assert set(loopback_hub.files(REPO_ID)) == RUN_FILES | {".gitattributes"}


def test_the_token_appears_in_no_output_record_card_tracker_or_space(loopback_hub, tmp_path):
    """Train with MLflow tracking and push, push again with --token, export and push a Space: the token must not
    appear in what any of them printed or wrote, locally or on the Hub."""
    env = client_env(loopback_hub, tmp_path / "hf_home")
    run, space = tmp_path / "run", tmp_path / "space"
    outputs = [
        hfmodels_cli("train", "--max-steps", "2", "--batch-size", "16", "--output-dir", str(run),
                     "--model-config", *TINY, "--report-to", "mlflow", "--push-to-hub", REPO_ID, env=env),
        hfmodels_cli("push", str(run), REPO_ID, "--token", TEST_TOKEN, "--commit-message", "again", env=env),
        hfmodels_cli("space", "export", str(run), str(space), "--model-repo", REPO_ID, "--push", f"{TEST_USER}/demo",
                     "--token", TEST_TOKEN, env=env),
    ]
    for result in outputs:
        assert result.returncode == 0, result.stderr[-3000:]
    token = TEST_TOKEN.encode()
    printed = [result.stdout.encode() + result.stderr.encode() for result in outputs]
    written = {path: path.read_bytes() for folder in (run, space) for path in folder.rglob("*") if path.is_file()}
    published = {**loopback_hub.files(REPO_ID), **loopback_hub.files(f"{TEST_USER}/demo", repo_type="space")}
    assert any(path.name == "mlflow.db" for path in written) and "README.md" in published
    assert not [text for text in printed if token in text]
    assert not [str(path) for path, content in written.items() if token in content]
    assert not [name for name, content in published.items() if token in content]
