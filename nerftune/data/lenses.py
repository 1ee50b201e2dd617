"""A capture's lenses: told apart by their EXIF, mapped by SfM as one camera each, and reported.

A folder whose photos' EXIF names several lenses (lens models, or focal lengths) was taken with several: a phone
switches lenses by itself (an iPhone's macro mode takes close-ups, such as of a document, with its ultra-wide lens,
which the EXIF lens model names). Each lens becomes a camera of its own in SfM, with its EXIF focal length as its
prior; one camera shared by two lenses can fit the matches well and still place the cameras wrongly (see `sfm`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nerftune.data import sfm
from nerftune.data.focal import FocalPrior, possible, video_35mm
from nerftune.data.photos import read_header  # which also lets PIL open HEIC photos
from nerftune.errors import some_of

EXIF_FOCAL_35MM = 0xA405
EXIF_LENS_MODEL = 0xA434  # "iPhone 13 Pro back triple camera 1.57mm f/1.8": the phone and which of its lenses
EXIF_CAMERA_MODEL = 0x0110
EXIF_IFD = 0x8769


@dataclass(frozen=True)
class Lens:
    """A lens of the capture: the photos it took (file names; empty: every frame) and its focal prior, if known."""

    prior: FocalPrior | None
    photos: tuple[str, ...] = ()
    exif_35mm: float | None = None  # the focal length the photos' EXIF names, a possible prior or not
    name: str = ""  # the EXIF lens model (or camera model), where it tells this lens from the others

    def label(self) -> str:
        """What tells the lens apart: "26 mm", "26 mm (iPhone 13 Pro back triple camera 1.57mm f/1.8)"."""
        focal = f"{self.exif_35mm:g} mm" if self.exif_35mm else "no EXIF focal length"
        return focal + (f" ({self.name})" if self.name else "")

    def describe(self) -> str:
        return f"{self.label()}: {len(self.photos)} photo{'s' if len(self.photos) != 1 else ''}"


def capture_lenses(source: Path, photos: list[Path]) -> list[Lens]:
    """The capture's lenses, by what its metadata says: one for a video; for a folder, one per EXIF lens (lens model,
    else camera model) and 35 mm-equivalent focal length, most photos first, and one more for the photos whose EXIF
    names neither. A folder of one such lens is one lens, photos without EXIF included."""
    if not photos:
        value = video_35mm(source) if source.is_file() else None
        return [Lens(possible(FocalPrior("35mm", value, f"metadata of {source.name}")) if value else None)]
    by_lens: dict[tuple[str, float | None], list[Path]] = {}
    for photo in photos:
        by_lens.setdefault(_exif_lens(photo), []).append(photo)
    unknown = by_lens.pop(("", None), [])
    if len(by_lens) <= 1:
        return [Lens(next((_prior(focal, same) for (_, focal), same in by_lens.items() if focal), None))]
    named = len({name for name, _ in by_lens}) > 1  # names that tell the lenses apart
    lenses = [
        Lens(_prior(focal, same) if focal else None, tuple(p.name for p in same), focal, name if named else "")
        for (name, focal), same in sorted(by_lens.items(), key=lambda item: -len(item[1]))
    ]
    return lenses + ([Lens(None, tuple(photo.name for photo in unknown))] if unknown else [])


def _prior(focal: float, photos: list[Path]) -> FocalPrior | None:
    return possible(FocalPrior("35mm", focal, f"EXIF of {some_of([photo.name for photo in photos], 1)}"))


def _exif_lens(path: Path) -> tuple[str, float | None]:
    """The photo's lens as its EXIF names it: the lens model (else the camera model) and the 35 mm-equivalent focal
    length; ("", None) where it names neither."""

    def read(image) -> tuple[str, float | None]:
        exif = image.getexif()
        details = exif.get_ifd(EXIF_IFD)
        name = str(details.get(EXIF_LENS_MODEL) or exif.get(EXIF_CAMERA_MODEL) or "").strip("\x00 ")
        focal = details.get(EXIF_FOCAL_35MM)
        return name, float(focal) if focal else None

    return read_header(path, read, ("", None))


def sfm_lenses(lenses: list[Lens], sources: dict[str, str], size: tuple[int, int]) -> tuple[sfm.Lens, ...]:
    """The lenses as SfM takes them: the written frames each took, and the focal prior in pixels of those frames."""
    return tuple(
        sfm.Lens(
            tuple(name for name, source in sources.items() if source in lens.photos) if lens.photos else None,
            lens.prior.pixels(*size) if lens.prior else None,
        )
        for lens in lenses
    )


def lens_report(
    lenses: list[Lens], taken: tuple[sfm.Lens, ...], size: tuple[int, int], model: sfm.Reconstruction
) -> list:
    """Per lens: its frames (as SfM `taken` them), how many registered, its prior and the focal length SfM found."""
    report = []
    for lens, its in zip(lenses, taken):
        frames = its.frames if its.frames is not None else model.image_names
        registered = [name for name in frames if name in model.poses]
        camera = model.frame_cameras.get(registered[0], model.camera) if registered else {}
        report.append(
            {
                "lens": lens.label() if len(lenses) > 1 else "the capture's",
                "frames": len(frames),
                "frames_registered": len(registered),
                "focal_prior": lens.prior.to_json(*size) if lens.prior else None,
                "fl_x": camera.get("fl_x"),
            }
        )
    return report


def lenses_found(lenses: list[dict]) -> str:
    """After SfM, in a line: each lens's frames registered and focal length found (from `lens_report`)."""
    return "; ".join(f"{lens['lens']}: {_found(lens)}" for lens in lenses)


def _found(lens: dict) -> str:
    found = f", focal length {lens['fl_x']:.1f} px" if lens["fl_x"] else ""
    return f"{lens['frames_registered']}/{lens['frames']} registered{found}"
