"""Constructing torchvision dataset classes with one clear error per failure.

torchvision raises the same bare ``RuntimeError`` for a missing and for a
damaged file, and network errors on a failed download; every loader goes
through :func:`construct`, so the user always reads the folder that was
searched and the flag that fetches the data.  The CIFAR and SVHN classes
verify each file against its published MD5 before reading it (CIFAR's files
are Python pickles: only verified files are unpickled).
"""
from __future__ import annotations

from pathlib import Path

from ._base import DataError


def construct(tv_class, root: Path, download: bool, what: str, files: list[Path], size: str, **kwargs):
    """``tv_class(root, download=download, **kwargs)``, or a :class:`DataError`.

    ``files``: what must exist for a load without download (checked first, so
    a missing dataset and a corrupt one get different messages).
    """
    missing = [f for f in files if not f.is_file()]
    if missing and not download:
        folder = missing[0].parent
        names = ", ".join(f.name for f in missing[:3]) + (", ..." if len(missing) > 3 else "")
        where = "DIR" if folder == root else f"DIR/{folder.relative_to(root).as_posix()}"
        raise DataError(f"{what} not found in {folder} (missing {names}); pass --data-root DIR with the files in "
                        f"{where}, or add --download to fetch them ({size})")
    try:
        return tv_class(root=str(root), download=download, **kwargs)
    except RuntimeError as e:
        raise DataError(f"{what} in {root} failed torchvision's integrity check ({e}): a file is incomplete or "
                        f"corrupt; delete it and fetch it again with --download") from None
    except OSError as e:  # URLError, HTTPError and connection errors are OSErrors
        raise DataError(f"downloading {what} into {root} failed ({e}); without internet, copy the files "
                        f"there and drop --download") from None
