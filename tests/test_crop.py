"""`python -m fer_pipeline.crop` choices that cannot work are one-line errors, before any work."""

from __future__ import annotations

from fer_pipeline import crop


def test_annotations_on_data_without_any_is_an_error_naming_what_to_use(
    prepared_project, call_main
):
    (prepared_project / "data/raw/annotations.csv").unlink()  # photos as users bring them
    before = sorted(p.name for p in (prepared_project / "data/faces").iterdir())
    code, _, err = call_main(crop.main, "face.detector=annotations")
    assert code == 2 and err.count("\n") == 1
    assert "face.detector=annotations, but data/raw ships no face annotations" in err
    assert "face.detector=mtcnn (or auto) for photos, or none" in err
    assert sorted(p.name for p in (prepared_project / "data/faces").iterdir()) == before
