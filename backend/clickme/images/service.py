"""Image sets: importing ImageNet-named folders and the demo photos, finding images and files."""

import hashlib
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

from PIL import Image as PILImage
from PIL import ImageOps, UnidentifiedImageError
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from tqdm import tqdm

from clickme.core.db import get_or_create
from clickme.images.labels import index_of_synset, synset_of
from clickme.images.models import ORIGINAL_NAME_LENGTH, Image, ImageSet

DEMO_SET = "demo"
COMMIT_EVERY = 200
HASH_CHUNK_BYTES = 1 << 20

# Formats a browser shows as they are, with the extension the stored copy gets.
# Files named like photos are imported or reported as problems; any other file is skipped.
PHOTO_SUFFIXES = {".jpeg", ".jpg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
STORED_EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp"}
EXIF_ORIENTATION_TAG = 0x0112
# A photo's short side and its long side to short side at most: a brush (6% of the short side)
# must stay paintable and the model input (a centre crop) must hold the photo.
MIN_SHORT_SIDE_PX = 32
MAX_ASPECT_RATIO = 8.0

_SYNSET_FOLDER = re.compile(r"n\d{8}")
_SYNSET_NAME_PREFIX = re.compile(r"(n\d{8})(?:_|$)")


@dataclass(frozen=True)
class DemoPhoto:
    """A photo shipped inside scikit-image (no download) that the default DNN recognises."""

    name: str
    file_name: str
    class_index: int

    @property
    def path(self) -> Path:
        return Path(str(files("skimage.data").joinpath(self.file_name)))


# On the whole photo the default DNN ranks each label first, except chelsea: tabby third, after
# tiger cat. stereo_motorcycle is the left image of skimage's stereo pair.
DEMO_PHOTOS = (
    DemoPhoto("coffee", "coffee.png", 967),  # espresso
    DemoPhoto("chelsea", "chelsea.png", 281),  # tabby
    DemoPhoto("camera", "camera.png", 872),  # tripod
    DemoPhoto("stereo_motorcycle", "motorcycle_left.png", 665),  # moped
    DemoPhoto("rocket", "rocket.jpg", 657),  # missile
)


@dataclass
class ImportProblem:
    path: str
    message: str


@dataclass
class ImportReport:
    image_set: str
    imported: int = 0
    duplicates: int = 0
    problems: list[ImportProblem] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # files that are not photos (README.md)


class _Rejected(Exception):
    """A file that cannot be imported, with the reason a person can act on."""


@dataclass(frozen=True)
class _Decoded:
    width: int
    height: int
    extension: str
    upright: PILImage.Image | None  # set when EXIF orientation must be applied to the pixels


def get_or_create_image_set(session: Session, name: str, description: str = "") -> ImageSet:
    return get_or_create(
        session,
        lambda: find_image_set(session, name),
        lambda: ImageSet(name=name, description=description),
    )


def find_image_set(session: Session, name: str) -> ImageSet | None:
    return session.scalar(select(ImageSet).where(ImageSet.name == name))


def latest_image_set(session: Session) -> ImageSet | None:
    """The non-empty image set that received the most recently imported image."""
    latest = select(Image.image_set_id).order_by(Image.id.desc()).limit(1).scalar_subquery()
    return session.scalar(select(ImageSet).where(ImageSet.id == latest))


def image_set_sizes(session: Session) -> list[tuple[ImageSet, int]]:
    """Every image set with how many images it holds, by name."""
    rows = session.execute(
        select(ImageSet, func.count(Image.id))
        .outerjoin(Image, Image.image_set_id == ImageSet.id)
        .group_by(ImageSet.id)
        .order_by(ImageSet.name)
    )
    return [(image_set, count) for image_set, count in rows]


def get_image(session: Session, image_id: int) -> Image | None:
    return session.get(Image, image_id)


def list_images(session: Session, image_set_name: str) -> list[Image]:
    """The images of a set by id; empty when the set does not exist."""
    query = (
        select(Image)
        .join(ImageSet, Image.image_set_id == ImageSet.id)
        .where(ImageSet.name == image_set_name)
        .order_by(Image.id)
    )
    return list(session.scalars(query))


def image_set_page(
    session: Session, image_set_id: int, offset: int, limit: int
) -> tuple[list[Image], int]:
    """A slice of a set's images by id, and how many the set holds."""
    total = session.scalar(select(func.count(Image.id)).where(Image.image_set_id == image_set_id))
    query = (
        select(Image)
        .where(Image.image_set_id == image_set_id)
        .order_by(Image.id)
        .offset(offset)
        .limit(limit)
    )
    return list(session.scalars(query)), total or 0


def labelled_files(session: Session, image_set_id: int, images_dir: Path) -> list[tuple[Path, int]]:
    """(stored file, class index) of every image of the set, by id."""
    images = session.scalars(
        select(Image).where(Image.image_set_id == image_set_id).order_by(Image.id)
    )
    return [(image_file_path(images_dir, image), image.class_index) for image in images]


def image_file_path(images_dir: Path, image: Image) -> Path:
    return images_dir / image.file_name


def synset_from_path(relative: Path) -> str | None:
    """The synset of `nXXXXXXXX/any.JPEG` (folder) or `nXXXXXXXX_any.JPEG` (name), if any."""
    if len(relative.parts) > 1 and _SYNSET_FOLDER.fullmatch(relative.parent.name):
        return relative.parent.name
    match = _SYNSET_NAME_PREFIX.match(relative.stem)
    return match.group(1) if match else None


def import_directory(
    session: Session, directory: Path, image_set_name: str, images_dir: Path, progress: bool = False
) -> ImportReport:
    """Import an ImageNet-named folder into the set; files already in the set are skipped."""
    if not directory.is_dir():
        raise NotADirectoryError(f"not a folder: {directory}")
    sources = _candidate_files(directory)
    importer = _Importer(session, get_or_create_image_set(session, image_set_name), images_dir)
    for source in tqdm(sources, disable=not progress, unit="image", desc="importing"):
        relative = source.relative_to(directory)
        if source.suffix.lower() not in PHOTO_SUFFIXES:
            importer.report.skipped.append(relative.as_posix())
            continue
        with importer.noting_problems(relative.as_posix()):
            importer.add(source, relative.as_posix(), _class_index_from_path(relative))
    return importer.finish()


def import_demo_set(session: Session, images_dir: Path) -> ImportReport:
    """Import the scikit-image demo photos into the `demo` set (idempotent)."""
    image_set = get_or_create_image_set(
        session, DEMO_SET, "Photos shipped with scikit-image that the default DNN recognises."
    )
    importer = _Importer(session, image_set, images_dir)
    for photo in DEMO_PHOTOS:
        with importer.noting_problems(photo.file_name):
            importer.add(photo.path, photo.file_name, photo.class_index)
    return importer.finish()


def _candidate_files(directory: Path) -> list[Path]:
    """Every file below the folder, in a stable order, skipping hidden files and folders."""
    return sorted(
        path
        for path in directory.rglob("*")
        if path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(directory).parts)
    )


def _class_index_from_path(relative: Path) -> int:
    synset = synset_from_path(relative)
    if synset is None:
        raise _Rejected(
            "no ImageNet synset in the path: name it nXXXXXXXX_*.JPEG or put it in a nXXXXXXXX/"
            " folder"
        )
    class_index = index_of_synset(synset)
    if class_index is None:
        raise _Rejected(f"synset {synset} is not one of the 1000 ImageNet-1k classes")
    return class_index


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as reader:
            while chunk := reader.read(HASH_CHUNK_BYTES):
                digest.update(chunk)
    except OSError as exc:
        raise _Rejected(f"cannot read the file: {exc.strerror or exc}") from exc
    return digest.hexdigest()


def _decode(path: Path) -> _Decoded:
    """Decode every pixel (so truncated files fail here), refusing decompression bombs."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PILImage.DecompressionBombWarning)
            with PILImage.open(path) as image:
                extension = STORED_EXTENSIONS.get(image.format or "")
                if extension is None:
                    raise _Rejected(
                        f"unsupported image format {image.format}: use JPEG, PNG, WebP, GIF or BMP"
                    )
                image.load()
                return _upright(image, extension)
    except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning) as exc:
        raise _Rejected(f"refused as a possible decompression bomb: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise _Rejected("not an image (Pillow cannot identify it)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise _Rejected(f"corrupt or truncated image: {exc}") from exc


def _check_shape(decoded: _Decoded) -> None:
    """Refuse photos too small or too elongated to paint on."""
    short, long = sorted((decoded.width, decoded.height))
    size = f"{decoded.width} x {decoded.height} px"
    if short < MIN_SHORT_SIDE_PX:
        raise _Rejected(
            f"too small: {size}, the short side must be at least {MIN_SHORT_SIDE_PX} px"
        )
    if long > MAX_ASPECT_RATIO * short:
        raise _Rejected(f"too elongated: {size}, at most {MAX_ASPECT_RATIO:g}:1")


def _upright(image: PILImage.Image, extension: str) -> _Decoded:
    """The size as a browser shows it; a photo with an EXIF rotation gets its pixels turned."""
    if image.getexif().get(EXIF_ORIENTATION_TAG, 1) == 1:
        return _Decoded(image.width, image.height, extension, upright=None)
    upright = ImageOps.exif_transpose(image)
    if upright.mode not in {"L", "RGB", "RGBA"}:
        upright = upright.convert("RGB")
    return _Decoded(upright.width, upright.height, ".png", upright=upright)


def _store(source: Path, decoded: _Decoded, target: Path) -> None:
    """Write the file under its final name atomically (temporary file, then rename)."""
    if target.exists():
        return
    with tempfile.NamedTemporaryFile(
        dir=target.parent, prefix=".incoming-", suffix=target.suffix, delete=False
    ) as temporary:
        temporary_path = Path(temporary.name)
        try:
            if decoded.upright is None:
                with source.open("rb") as reader:
                    shutil.copyfileobj(reader, temporary)
            else:
                decoded.upright.save(temporary, format="PNG")
        except BaseException:
            temporary_path.unlink(missing_ok=True)
            raise
    temporary_path.chmod(0o644)
    os.replace(temporary_path, target)


class _Importer:
    """Adds files to one image set, counting imports, duplicates and problems."""

    def __init__(self, session: Session, image_set: ImageSet, images_dir: Path) -> None:
        self.session = session
        self.image_set = image_set
        self.images_dir = images_dir
        self.report = ImportReport(image_set=image_set.name)
        self.known_hashes = set(
            session.scalars(select(Image.sha256).where(Image.image_set_id == image_set.id))
        )
        images_dir.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def noting_problems(self, original_name: str) -> Iterator[None]:
        """Turn a rejected file into a problem in the report, so that the rest still import."""
        try:
            yield
        except _Rejected as rejected:
            self.report.problems.append(ImportProblem(original_name, str(rejected)))

    def add(self, source: Path, original_name: str, class_index: int) -> None:
        sha256 = _file_sha256(source)
        if sha256 in self.known_hashes:
            self.report.duplicates += 1
            return
        decoded = _decode(source)
        _check_shape(decoded)
        file_name = f"{sha256}{decoded.extension}"
        _store(source, decoded, self.images_dir / file_name)
        self.session.add(
            Image(
                image_set_id=self.image_set.id,
                sha256=sha256,
                file_name=file_name,
                original_name=original_name[-ORIGINAL_NAME_LENGTH:],
                width=decoded.width,
                height=decoded.height,
                synset=synset_of(class_index),
                class_index=class_index,
            )
        )
        self.known_hashes.add(sha256)
        self.report.imported += 1
        if self.report.imported % COMMIT_EVERY == 0:
            self.session.commit()

    def finish(self) -> ImportReport:
        self.session.commit()
        return self.report
