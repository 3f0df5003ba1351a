"""Puts transformers' own common model tests into tests/transformers_common/, for tests/test_transformers_common.py.

The files are `tests/test_modeling_common.py` and `tests/test_configuration_common.py` of the source distribution
of the installed transformers (the pin in constraints.txt), downloaded with pip: `make install` runs this while PyPI
is reachable, the tests run offline. They are not committed (.gitignore); tests/transformers_common/ holds, committed,
our stand-ins for the three modules they import that the source distribution does not ship (see its __init__.py).

    python scripts/transformers_tests.py     # does nothing when the files of this version are there
"""

import importlib.metadata
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

TARGET = Path(__file__).resolve().parent.parent / "tests" / "transformers_common"
FILES = ("test_modeling_common.py", "test_configuration_common.py")
VERSION_FILE = TARGET / "VERSION"  # the transformers version the files come from


def main() -> None:
    version = importlib.metadata.version("transformers")
    if VERSION_FILE.exists() and VERSION_FILE.read_text().strip() == version and all(
        (TARGET / name).exists() for name in FILES
    ):
        return
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
             f"transformers=={version}", "--dest", folder],
            check=True,
        )
        (sdist,) = Path(folder).glob("transformers-*.tar.gz")
        with tarfile.open(sdist) as archive:
            for name in FILES:
                member = archive.extractfile(f"transformers-{version}/tests/{name}")
                (TARGET / name).write_bytes(member.read())
    VERSION_FILE.write_text(version + "\n")
    print(f"tests/transformers_common: {', '.join(FILES)} of transformers {version}")


if __name__ == "__main__":
    main()
