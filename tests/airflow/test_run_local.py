"""The README's main command: the movie DAG once on an embedded Airflow, printing the movie."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import pytest

from airflow_provider_tutopanda import run_local
from producers.sdk.media import probe

pytestmark = pytest.mark.airflow


def test_run_local_makes_a_movie_and_says_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_local.main(
        [
            "--segments",
            "1",
            "--airflow-home",
            str(tmp_path / "home"),
            "--store",
            str(tmp_path / "store"),
            "--output",
            str(tmp_path / "movies"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out[-3000:]
    movie_line = next(line for line in out.splitlines() if line.startswith("movie: "))
    movie = Path(url2pathname(urlsplit(movie_line.removeprefix("movie: ")).path))
    info = probe(movie)
    assert info.has_video and info.has_audio
    # the last line is the published movie.mp4 (what `make movie` ends with), and it plays
    published = Path(out.splitlines()[-1])
    assert published.name == "movie.mp4" and published.is_absolute()
    assert published.is_relative_to((tmp_path / "movies" / "tutopanda_movie").resolve())
    assert published.read_bytes() == movie.read_bytes()
    assert probe(published).has_video
