"""The test-data guard: what a dataset load reads is off limits while a method runs, and only then."""
import pytest

from unlearnbench.harness.guard import TestDataAccess, method_guard, protected_files, recording_data_files


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
