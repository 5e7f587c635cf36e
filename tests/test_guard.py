"""The test-data guard: what a dataset load reads is off limits while a method runs, and only then;
so is starting another program, whose reads the guard cannot see."""
import os
import re
import subprocess
from pathlib import Path

import pytest

from unlearnbench.harness.protocol.guard import TestDataAccess, method_guard, protected_files, recording_data_files


def test_files_read_by_a_load_are_refused_to_a_method_even_if_it_swallows_the_error(tmp_path):
    data, code, elsewhere = tmp_path / "t10k-images", tmp_path / "loader.py", tmp_path / "notes.txt"
    for path in (data, code, elsewhere):
        path.write_text("x")
    with recording_data_files():
        data.read_bytes()
        code.read_text()
    assert str(data.resolve()) in protected_files() and str(code.resolve()) not in protected_files()

    with method_guard("m"):
        elsewhere.read_text()                        # other files are fine
        code.read_text()
    with pytest.raises(TestDataAccess, match=r"method 'm' opened .*t10k-images, a file of the benchmark's data,"):
        with method_guard("m"):
            try:
                data.read_bytes()
            except TestDataAccess:
                pass                                 # swallowed: still refused when the method returns
    assert data.read_bytes() == b"x"                 # outside a method call the harness reads freely


def test_protected_folders_and_dataset_loads_are_refused(tmp_path):
    from unlearnbench.datasets import load_dataset

    model = tmp_path / "retrain" / "abc" / "model.pt"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"weights")
    with pytest.raises(TestDataAccess, match="a cached reference model"):
        with method_guard("m", protected_dirs=[tmp_path / "retrain"]):
            model.read_bytes()
    with pytest.raises(TestDataAccess, match="loaded the dataset 'digits'"):
        with method_guard("m"):
            load_dataset("digits")


def test_what_the_import_system_opens_is_not_protected(tmp_path, monkeypatch):
    """Imports probe sys.path entries (lib/python3X.zip, which may not exist) during a
    first load and again when a method imports something new: never data."""
    archive, missing = tmp_path / "libs.zip", tmp_path / "python999.zip"
    archive.write_bytes(b"PK")
    monkeypatch.syspath_prepend(str(archive))
    with recording_data_files():
        for path in (archive, missing):
            try:
                open(path, "rb").close()
            except OSError:
                pass
    assert not {str(archive.resolve()), str(missing)} & protected_files()


def _fork_and_exit():
    pid = os.fork()
    if pid == 0:          # only reached if the guard failed: the child leaves at once
        os._exit(0)
    os.waitpid(pid, 0)


@pytest.mark.parametrize("start, event", [
    (lambda: subprocess.run(["cat", "/etc/hostname"], capture_output=True), "subprocess.Popen: cat /etc/hostname"),
    (lambda: os.popen("true").read(), "subprocess.Popen: /bin/sh -c true"),
    (lambda: os.system("true"), "os.system: true"),
    (lambda: os.execv("/nonexistent/program", ["program", "arg"]), "os.exec: /nonexistent/program arg"),
    (lambda: os.posix_spawn("/bin/true", ["true"], {}), "os.posix_spawn: /bin/true"),
    (lambda: os.spawnv(os.P_WAIT, "/bin/true", ["true"]), "os.fork"),
    (_fork_and_exit, "os.fork"),
], ids=["subprocess.run", "os.popen", "os.system", "os.execv", "os.posix_spawn", "os.spawnv", "os.fork"])
def test_starting_a_program_is_refused_to_a_method(start, event):
    with pytest.raises(TestDataAccess, match=re.escape(f"({event})") + ", whose reads the harness cannot see"):
        with method_guard("m"):
            try:
                start()
            except TestDataAccess:
                pass                                 # swallowed: still refused when the method returns
    assert subprocess.run(["true"]).returncode == 0  # outside a method call the harness may


_seen: dict = {}


def _cat_the_data(ctx, hp):
    """Reads a file of the benchmark's data through `cat`, and hides the refusal."""
    try:
        _seen["stdout"] = subprocess.run(["cat", _seen["path"]], capture_output=True).stdout
    except Exception as e:
        _seen["error"] = e
    return ctx.model


def test_a_method_reading_the_data_through_a_subprocess_is_recorded_as_failed(tmp_path):
    from unlearnbench.harness.protocol.config import Grid, expand
    from unlearnbench.harness.protocol.runner import Harness
    from unlearnbench.methods import register_method, unregister_method

    register_method("cat_the_data_for_test")(_cat_the_data)
    try:
        harness = Harness(out=tmp_path, cache_dir=tmp_path / "cache")
        harness.dataset("digits")
        _seen.clear()
        _seen["path"] = next(p for p in protected_files() if "digits" in Path(p).name)
        spec, = expand(Grid(seeds=[0], scenarios=["random"], ratios=[0.1], methods=["cat_the_data_for_test"],
                            floor_retrains=0, train={"epochs": 2}, out=str(tmp_path)))
        record = harness.run(spec)
    finally:
        unregister_method("cat_the_data_for_test")
    assert "stdout" not in _seen and isinstance(_seen["error"], TestDataAccess)   # cat never ran
    assert record["status"] == "failed"
    assert record["message"] == (
        f"TestDataAccess: method 'cat_the_data_for_test' started a subprocess (subprocess.Popen: cat {_seen['path']}), "
        "whose reads the harness cannot see, while unlearning; a method may use only what its Context holds "
        "(never the test data or the Retrain model)")
    assert harness.store.read(spec.key)["status"] == "failed"


def test_the_harness_signal_handlers_may_start_programs_while_a_method_runs():
    """submitit's handler of a Slurm time limit runs `scontrol requeue` in the middle of a method."""
    import signal

    from unlearnbench.harness.protocol.guard import lift_in_signal_handlers

    started = []

    def requeue(signum, frame):
        started.append(subprocess.run(["true"]).returncode)

    previous = signal.signal(signal.SIGUSR1, requeue)
    try:
        with pytest.raises(TestDataAccess, match="subprocess.Popen: true"):   # a handler of the method's own
            with method_guard("m"):
                os.kill(os.getpid(), signal.SIGUSR1)
        assert started == []
        lift_in_signal_handlers()                                            # what a Slurm task does first
        with method_guard("m"):
            os.kill(os.getpid(), signal.SIGUSR1)
        assert started == [0]
        with pytest.raises(TestDataAccess):                                  # the method itself still may not
            with method_guard("m"):
                subprocess.run(["true"])
    finally:
        signal.signal(signal.SIGUSR1, previous)
