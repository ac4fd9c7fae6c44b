"""Fetching the released weights and the training and evaluation datasets into the layout the scripts read.

The catalogue (`CATALOGUE`) says what each name fetches: the locations the STCN authors publish (their
`download_model.py`, `download_datasets.py`, README and release page, and MiVOS's README for BL30K), the
client for each (gdown for Google Drive, plain HTTPS for a plain file), where it goes, its checksum where
one is published, and its licence. The mechanics: a licence prompt before anything starts, downloads that
resume a `.part` file, size and checksum checks, archives unpacked into a temporary folder and renamed
into place, and one-line `InputError`s (exit 2 through `util.cli.run_cli`) that name the location.
"""
import hashlib
import http.client
import json
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass, field
from glob import escape
from pathlib import Path
from typing import Callable, Optional

import gdown
from gdown.exceptions import DownloadError
from tqdm import tqdm

from util.fileio import InputError

CHUNK = 1 << 20
TIMEOUT = 60  # seconds without a byte before a transfer counts as failed
CLIENTS = ("gdown", "https")
BASES = ("root", "weights")
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")


@dataclass(frozen=True)
class Licence:
    """What a download is under: shown, with its URL and terms, and accepted before anything is fetched."""
    name: str
    url: str
    terms: str


@dataclass
class RemoteFile:
    """One file to fetch. A plain file is saved as `<base>/<into>/<name>`; an archive is downloaded there,
    unpacked into `<base>/<into>` with its top-level entries renamed by `rename`, then deleted."""
    name: str
    url: str
    client: str = "https"  # "gdown" (Google Drive) or "https" (a plain file)
    into: str = ""
    rename: dict[str, str] = field(default_factory=dict)
    checksum: str = ""  # "md5:<hex>" or "sha256:<hex>", verified when given
    size: Optional[int] = None  # bytes, verified when given

    def __post_init__(self) -> None:
        if self.client not in CLIENTS:
            raise ValueError(f"{self.name}: client {self.client!r} is not one of {', '.join(CLIENTS)}")
        algorithm = self.checksum.partition(":")[0]
        if self.checksum and algorithm not in hashlib.algorithms_available:
            raise ValueError(f"{self.name}: checksum {self.checksum!r} is not <algorithm>:<hex digest>")


@dataclass
class Dataset:
    """A name of the command line: what it holds, its files, and what the project reads from them."""
    name: str
    holds: str
    volume: str  # the download size as published, or that it is not
    licence: Licence
    files: list[RemoteFile]
    base: str = "root"  # files go under --root ("root") or --weights_dir ("weights")
    expects: list[str] = field(default_factory=list)  # paths under the base that the project's readers use
    next_steps: list[str] = field(default_factory=list)  # commands to run after, with {root} and {weights}
    note: str = ""
    in_all: bool = True  # whether `all` includes it

    def __post_init__(self) -> None:
        if self.base not in BASES:
            raise ValueError(f"{self.name}: base {self.base!r} is not one of {', '.join(BASES)}")


def is_archive(name: str) -> bool:
    """Whether a file of this name is unpacked (zip or tar) rather than kept as it is."""
    return name.endswith(ARCHIVE_SUFFIXES)


# --- downloading -----------------------------------------------------------------------------------------

def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _open_from(url: str, part: Path, offset: int) -> Optional[http.client.HTTPResponse]:
    """The answer to GET `url` from byte `offset` on (the size of the partial file), or None when the
    server says the partial file is already whole; a partial file longer than the file is dropped."""
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        return urllib.request.urlopen(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as error:
        if error.code != 416 or not offset:
            raise
        if error.headers.get("Content-Range") == f"bytes */{offset}":
            return None  # an earlier run stopped between the last byte and the rename
        print(f"{part}: longer than {url}; starting again from the first byte")
        part.unlink()
        return _open_from(url, part, 0)


def _resumed_from(response: http.client.HTTPResponse, url: str, offset: int) -> int:
    """Where the body of `response` starts: `offset` for a partial answer (206), 0 for the whole file."""
    if response.status != 206:
        if offset:
            print(f"{url}: the server ignored the resume request; starting again from the first byte")
        return 0
    if not response.headers.get("Content-Range", "").startswith(f"bytes {offset}-"):
        raise ConnectionError(f"asked for bytes {offset}- but got {response.headers.get('Content-Range')}")
    return offset


def _fetch_https(url: str, part: Path) -> None:
    """Download `url` into `part` with a progress bar, continuing a partial file with a Range request; a
    server that answers with the whole file instead (it ignored the Range) restarts it from its first byte."""
    response = _open_from(url, part, _size(part))
    if response is None:
        return
    with response:
        start = _resumed_from(response, url, _size(part))  # the partial file may have been dropped
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        with open(part, "ab" if start else "wb") as out, \
                tqdm(total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
                     desc=part.name.removesuffix(".part")) as bar:
            while chunk := response.read(CHUNK):
                out.write(chunk)
                bar.update(len(chunk))
    if total is not None and part.stat().st_size != total:
        raise ConnectionError(f"the transfer stopped at {part.stat().st_size} of {total} bytes")


def _gdown_partials(output: Path) -> list[Path]:
    """gdown's own partial files for `output` (`<name>` + 8 random characters + `.part`)."""
    return sorted(output.parent.glob(escape(output.name) + "?" * 8 + ".part"))


def _fetch_gdown(url: str, part: Path) -> None:
    """Download `url` (a Google Drive location, or any URL) with gdown into `part`, resuming gdown's own
    partial file; if the server ignores the resume request, the partial file is dropped and gdown restarts."""
    try:
        gdown.download(url=url, output=str(part), resume=True)
    except DownloadError as error:
        if "byte range" not in str(error):
            raise
        print(f"{url}: the server ignored the resume request; starting again from the first byte")
        for stale in _gdown_partials(part):
            stale.unlink()
        gdown.download(url=url, output=str(part), resume=True)


FETCHERS: dict[str, Callable[[str, Path], None]] = {"gdown": _fetch_gdown, "https": _fetch_https}


def _describe(error: Exception) -> str:
    """An exception as a short phrase on one line."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        return f"cannot be reached ({error.reason})"
    return " ".join(str(error).split()) or type(error).__name__


def _partial_note(part: Path) -> str:
    """Where the bytes received so far wait for the next run, if any did arrive."""
    partials = [path for path in [part, *_gdown_partials(part)] if _size(path)]
    return f"; the partial download is kept in {partials[0]} and the next run resumes it" if partials else ""


def _checksum_problem(path: Path, checksum: str) -> str:
    """What is wrong with the file's digest ("" if nothing, or if the catalogue has no checksum)."""
    if not checksum:
        return ""
    algorithm, _, expected = checksum.partition(":")
    print(f"{path.name}: checking its {algorithm}")
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    actual = digest.hexdigest()
    return "" if actual == expected.lower() else f"{algorithm} {actual} differs from the catalogue's {expected}"


def _html_problem(path: Path) -> str:
    """A web page saved in place of the file (a quota, sign-in or error page), else ""."""
    with open(path, "rb") as handle:
        head = handle.read(512).lstrip().lower()
    return "an HTML page instead of the file (a quota or sign-in page?)" if head.startswith(
        (b"<!doctype html", b"<html")) else ""


def verify(path: Path, remote: RemoteFile) -> None:
    """Check a downloaded file against the catalogue's size and checksum, and that it is not a web page; a
    mismatching file is deleted and refused, so that no wrong bytes stay under any name."""
    size = path.stat().st_size
    problem = (f"{size} bytes instead of the catalogue's {remote.size}" if remote.size not in (None, size)
               else _html_problem(path) or _checksum_problem(path, remote.checksum))
    if problem:
        path.unlink()
        raise InputError(f"{remote.url}: {problem}; the downloaded file was removed")


def download_file(remote: RemoteFile, target: Path) -> Path:
    """`target` complete and verified: downloaded into `<target>.part` (resumed if present), checked, then
    renamed. A file already at `target` (e.g. put there by hand) is checked and kept."""
    part = target.with_name(target.name + ".part")
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            FETCHERS[remote.client](remote.url, part)
        except (OSError, http.client.HTTPException, DownloadError) as error:  # urllib's, requests' are OSErrors
            raise InputError(f"{remote.url}: {_describe(error)}{_partial_note(part)}") from None
        verify(part, remote)
        os.replace(part, target)
    else:
        verify(target, remote)
    return target


# --- unpacking -------------------------------------------------------------------------------------------

def _extract_tar(tarred: tarfile.TarFile, folder: Path) -> None:
    """Extract with the standard library's "data" filter (no paths outside `folder`, no devices); Pythons
    before 3.10.12 lack it, and there every member's path is checked here instead."""
    if hasattr(tarfile, "data_filter"):
        tarred.extractall(folder, filter="data")
        return
    inside = folder.resolve()
    for member in tarred.getmembers():
        target = (folder / member.name).resolve()
        if inside not in (target, *target.parents) or not (member.isfile() or member.isdir()):
            raise tarfile.TarError(f"{member.name}: outside the archive's folder, a link or a device")
    tarred.extractall(folder)


def _unpack(archive: Path, folder: Path) -> None:
    """Extract a zip or tar archive into `folder`; a damaged archive is deleted and refused."""
    try:
        if archive.name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zipped:
                zipped.extractall(folder)
        else:
            with tarfile.open(archive) as tarred:
                _extract_tar(tarred, folder)
    except (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError) as error:
        archive.unlink()
        raise InputError(f"{archive}: not a readable archive ({_describe(error)}); it was removed, "
                         "the next run downloads it again") from None


def _conflict(source: Path, target: Path) -> Optional[Path]:
    """The first path under `target` that moving `source` onto it would overwrite (folders merge)."""
    if not target.exists():
        return None
    if not (source.is_dir() and target.is_dir()):
        return target
    return next((found for child in sorted(source.iterdir())
                 if (found := _conflict(child, target / child.name)) is not None), None)


def _move(source: Path, target: Path) -> None:
    """Rename `source` onto `target`, merging into a folder that exists (checked free of conflicts)."""
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
        return
    for child in sorted(source.iterdir()):
        _move(child, target / child.name)


def extract_archive(archive: Path, folder: Path, rename: dict[str, str]) -> list[Path]:
    """Unpack `archive` into a temporary folder inside `folder`, then rename each top-level entry (renamed
    as `rename` says) into `folder`; returns the placed paths. A failure leaves nothing in `folder`, and
    the temporary folder of a run killed while unpacking is removed by the next."""
    for stale in folder.glob(f".{escape(archive.name)}.*"):
        if stale.is_dir():
            shutil.rmtree(stale)
    with tempfile.TemporaryDirectory(dir=folder, prefix=f".{archive.name}.") as temporary:
        _unpack(archive, Path(temporary))
        moves = [(entry, folder / rename.get(entry.name, entry.name))
                 for entry in sorted(Path(temporary).iterdir())]
        for source, target in moves:
            if (conflict := _conflict(source, target)) is not None:
                raise InputError(f"{conflict}: already exists and {archive.name} holds it too; move it "
                                 "away and run again")
        for source, target in moves:
            _move(source, target)
    return [target for _, target in moves]


# --- a dataset -------------------------------------------------------------------------------------------

def _marker(folder: Path, remote: RemoteFile) -> Path:
    """The file that records what an unpacked archive placed, so that a later run skips it."""
    return folder / f".{remote.name}.done"


def _is_done(remote: RemoteFile, folder: Path) -> bool:
    """A plain file that exists, or an archive whose placed paths all still exist."""
    if not is_archive(remote.name):
        return (folder / remote.name).exists()
    marker = _marker(folder, remote)
    return marker.exists() and all((folder / line).exists() for line in marker.read_text().splitlines())


def fetch_dataset(dataset: Dataset, base: Path) -> None:
    """Fetch every file of `dataset` under `base`, skipping what an earlier run completed."""
    for remote in dataset.files:
        folder = base / remote.into
        if _is_done(remote, folder):
            print(f"{remote.name}: in {folder} from an earlier run, skipped")
            continue
        print(f"{dataset.name}: {remote.name} from {remote.url}")
        downloaded = download_file(remote, folder / remote.name)
        if is_archive(remote.name):
            placed = extract_archive(downloaded, folder, remote.rename)
            _marker(folder, remote).write_text("".join(f"{path.relative_to(folder)}\n" for path in placed))
            downloaded.unlink()
            print(f"{remote.name}: unpacked to {', '.join(map(str, placed))}")


# --- the command -----------------------------------------------------------------------------------------

def read_catalogue(path: Path) -> dict[str, Dataset]:
    """A catalogue from a JSON file {name: {Dataset fields, "licence": {...}, "files": [{...}]}} (a mirror,
    or a test server)."""
    try:
        entries = json.loads(path.read_text())
        return {name: Dataset(name=name, **{**entry, "licence": Licence(**entry["licence"]),
                                            "files": [RemoteFile(**remote) for remote in entry["files"]]})
                for name, entry in entries.items()}
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
        raise InputError(f"{path}: not a readable catalogue ({_describe(error)})") from None


def describe_catalogue(catalogue: dict[str, Dataset]) -> str:
    """What --list prints: each name, what it holds, its size and its licence."""
    lines = []
    for dataset in catalogue.values():
        lines += [f"{dataset.name}: {dataset.holds}", f"    size: {dataset.volume}",
                  f"    licence: {dataset.licence.name} ({dataset.licence.url})"]
        if dataset.note:
            lines.append(f"    note: {dataset.note}")
        if not dataset.in_all:
            lines.append("    not part of `all`: name it")
    return "\n".join(lines)


def select(catalogue: dict[str, Dataset], names: list[str]) -> list[Dataset]:
    """The datasets the names ask for, in order and once each; `all` is every one marked `in_all`."""
    if not names:
        raise InputError(f"no name given: choose among {', '.join(catalogue)}, all (or --list)")
    chosen: list[str] = []
    for name in names:
        if name != "all" and name not in catalogue:
            raise InputError(f"{name}: not in the catalogue (choose among {', '.join(catalogue)}, all)")
        expanded = [key for key, dataset in catalogue.items() if dataset.in_all] if name == "all" else [name]
        chosen += [key for key in expanded if key not in chosen]
    return [catalogue[name] for name in chosen]


def accept_licences(datasets: list[Dataset], assume_yes: bool, ask: Callable[[str], str] = input) -> None:
    """Show each dataset's licence and have it accepted (or `assume_yes`) before any download starts; a
    refusal (or no answer) stops with an InputError and nothing fetched."""
    for dataset in datasets:
        licence = dataset.licence
        print(f"\n{dataset.name}: {dataset.holds}\n  size: {dataset.volume}\n  licence: {licence.name} "
              f"({licence.url})\n  terms: {licence.terms}" + (f"\n  note: {dataset.note}" if dataset.note else ""))
        if assume_yes:
            print("  accepted (--yes)")
            continue
        try:
            answer = ask(f"Accept the terms of {dataset.name}? [y/N] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            raise InputError(f"{dataset.name}: licence terms not accepted; nothing was downloaded "
                             "(answer y, or pass --yes)")


def _report(dataset: Dataset, base: Path, root: Path, weights_dir: Path) -> None:
    """Name the expected paths that are missing, and print the commands that come next."""
    for expected in dataset.expects:
        if not (base / expected).exists():
            print(f"note: {base / expected} not found, though the project reads it; look at what "
                  f"{dataset.name} unpacked under {base} (docs/usage.md, Training data)")
    for step in dataset.next_steps:
        print(f"next: {step.format(root=root, weights=weights_dir)}")


def download_command(names: list[str], root: Path, weights_dir: Path, assume_yes: bool = False,
                     show_list: bool = False, catalogue_file: Optional[Path] = None,
                     ask: Callable[[str], str] = input) -> int:
    """What scripts/download.py does: list the catalogue, or accept the licences, then fetch each name."""
    catalogue = read_catalogue(catalogue_file) if catalogue_file is not None else CATALOGUE
    if show_list:
        print(describe_catalogue(catalogue))
        return 0
    datasets = select(catalogue, names)
    accept_licences(datasets, assume_yes, ask)
    bases = {"root": root, "weights": weights_dir}
    for dataset in datasets:
        fetch_dataset(dataset, bases[dataset.base])
    for dataset in datasets:
        _report(dataset, bases[dataset.base], root, weights_dir)
    print(f"done: {', '.join(dataset.name for dataset in datasets)}")
    return 0


# --- the catalogue ---------------------------------------------------------------------------------------

def _drive(file_id: str) -> str:
    return f"https://drive.google.com/uc?id={file_id}"


STCN_RELEASE = "https://github.com/hkchengrex/STCN/releases/download/1.0"
REDISTRIBUTED = ("Re-distributed by the STCN authors as released or with simple processing. Read and respect "
                 "the original dataset's licence and terms before use, and cite its papers.")
NOT_PUBLISHED = "not published by the authors"
DAVIS_LICENCE = Licence("DAVIS terms", "https://davischallenge.org/", REDISTRIBUTED)
YOUTUBE_LICENCE = Licence("YouTube-VOS terms", "https://youtube-vos.org", REDISTRIBUTED)

CATALOGUE: dict[str, Dataset] = {dataset.name: dataset for dataset in [
    Dataset(
        "weights", "the authors' released weights: stcn.pth (s012, BL30K pretraining; what the eval commands "
        "load), stcn_s03.pth (no BL30K), stcn_s0.pth and stcn_s01.pth (stage checkpoints) -> --weights_dir",
        NOT_PUBLISHED,
        Licence("STCN released models (Cheng, Tai, Tang)", "https://github.com/hkchengrex/STCN",
                "Released by the authors with their code; the repository's licence applies. Cite STCN "
                "(NeurIPS 2021), and MiVOS when using top-k."),
        [RemoteFile("stcn.pth", _drive("1mRrE0uCI2ktdWlUgapJI_KmgeIiF2eOm"), "gdown"),
         RemoteFile("stcn_s03.pth", _drive("1JllXPJZola0G-g1aUQfXe9nLMBioj-aH"), "gdown"),
         RemoteFile("stcn_s0.pth", f"{STCN_RELEASE}/stcn_s0.pth"),
         RemoteFile("stcn_s01.pth", f"{STCN_RELEASE}/stcn_s01.pth")],
        base="weights", expects=["stcn.pth"],
        next_steps=["python eval_davis.py --model {weights}/stcn.pth --davis_path {root}/DAVIS/2017 "
                    "--output output/d17 --evaluate"]),
    Dataset(
        "static", "static image sets fss, DUTS-TR, DUTS-TE, ecssd, BIG_small, HRSOD_small (stage 0) -> "
        "<root>/static", NOT_PUBLISHED,
        Licence("DUTS, HRSOD, FSS-1000, ECSSD and BIG terms",
                "http://saliencydetection.net/duts https://github.com/yi94code/HRSOD "
                "https://github.com/HKUSTCV/FSS-1000 "
                "https://www.cse.cuhk.edu.hk/leojia/projects/hsaliency/dataset.html "
                "https://github.com/hkchengrex/CascadePSP", REDISTRIBUTED),
        [RemoteFile("static_data.zip", _drive("1wUJq3HcLdN-z1t4CsUhjeZ9BVDb9YKLd"), "gdown", into="static")],
        expects=[f"static/{name}" for name in ("fss", "DUTS-TR", "DUTS-TE", "ecssd", "BIG_small", "HRSOD_small")]),
    Dataset(
        "davis2016", "DAVIS 2016 as released (480p and 1080p) -> <root>/DAVIS/2016", NOT_PUBLISHED,
        DAVIS_LICENCE,
        [RemoteFile("DAVIS-data.zip", _drive("198aRlh5CpAoFz0hfRgYbiNenn_K8DxWD"), "gdown", into="DAVIS",
                    rename={"DAVIS": "2016"})],
        expects=["DAVIS/2016/JPEGImages/480p", "DAVIS/2016/ImageSets"],
        next_steps=["python eval_davis.py --model {weights}/stcn.pth --davis_path {root}/DAVIS/2016 --year 2016 "
                    "--output output/d16 --evaluate"]),
    Dataset(
        "davis2017", "DAVIS 2017 trainval and test-dev, 480p -> <root>/DAVIS/2017/{trainval,test-dev}",
        NOT_PUBLISHED, DAVIS_LICENCE,
        [RemoteFile("DAVIS-2017-trainval-480p.zip", _drive("1kiaxrX_4GuW6NmiVuKGSGVoKGWjOdp6d"), "gdown",
                    into="DAVIS/2017", rename={"DAVIS": "trainval"}),
         RemoteFile("DAVIS-2017-test-dev-480p.zip", _drive("1fmkxU2v9cQwyb62Tj1xFDdh2p4kDsUzD"), "gdown",
                    into="DAVIS/2017", rename={"DAVIS": "test-dev"})],
        expects=["DAVIS/2017/trainval/JPEGImages/480p", "DAVIS/2017/trainval/ImageSets/2017/train.txt",
                 "DAVIS/2017/test-dev/JPEGImages/480p"]),
    Dataset(
        "youtube2018", "YouTubeVOS 2018 valid and its all-frames copy -> <root>/YouTube2018/{valid,"
        "all_frames/valid_all_frames}", NOT_PUBLISHED,
        YOUTUBE_LICENCE,
        [RemoteFile("valid.zip", _drive("1-QrceIl5sUNTKz7Iq0UsWC6NLZq7girr"), "gdown", into="YouTube2018"),
         RemoteFile("valid.zip", _drive("1yVoHM6zgdcL348cFpolFcEl4IC1gorbV"), "gdown",
                    into="YouTube2018/all_frames")],
        expects=["YouTube2018/valid/meta.json", "YouTube2018/all_frames/valid_all_frames/JPEGImages"],
        next_steps=["python eval_youtube.py --model {weights}/stcn.pth --yv_path {root}/YouTube2018 "
                    "--output output/yv18"]),
    Dataset(
        "youtube2019", "YouTubeVOS 2019 train, valid and the valid all-frames copy -> <root>/YouTube/{train,"
        "valid,all_frames/valid_all_frames}", NOT_PUBLISHED,
        YOUTUBE_LICENCE,
        [RemoteFile("train.zip", _drive("13Eqw0gVK-AO5B-cqvJ203mZ2vzWck9s4"), "gdown", into="YouTube"),
         RemoteFile("valid.zip", _drive("1o586Wjya-f2ohxYf9C1RlRH-gkrzGS8t"), "gdown", into="YouTube"),
         RemoteFile("valid.zip", _drive("1rWQzZcMskgpEQOZdJPJ7eTmLCBEIIpEN"), "gdown", into="YouTube/all_frames")],
        expects=["YouTube/train/JPEGImages", "YouTube/valid/meta.json",
                 "YouTube/all_frames/valid_all_frames/JPEGImages"],
        next_steps=["python scripts/resize_youtube.py --in {root}/YouTube/train --out {root}/YouTube/train_480p"
                    "   # training reads train_480p, as the authors' download script makes it",
                    "python eval_youtube.py --model {weights}/stcn.pth --yv_path {root}/YouTube --output output/yv"]),
    Dataset(
        "bl30k", "BL30K synthetic videos (stage 1), six tar segments -> <root>/BL30K",
        "about 115 GB per segment, 700 GB in total; about 1 TB free disk needed (MiVOS README)",
        Licence("BL30K terms (MiVOS)", "https://github.com/hkchengrex/MiVOS",
                "A derivative of ShapeNet; textures and skybox images come from Google image search with the "
                "non-commercial reuse flag. Do not use it commercially. Respect ShapeNet's terms; cite ShapeNet "
                "and MiVOS."),
        [RemoteFile(f"BL30K_{part}.tar", _drive(file_id), "gdown", into="BL30K", checksum=f"md5:{md5}")
         for part, file_id, md5 in (
             ("a", "1z9V5zxLOJLNt1Uj7RFqaP2FZWKzyXvVc", "35312550b9a75467b60e3b2be2ceac81"),
             ("b", "11-IzgNwEAPxgagb67FSrBdzZR7OKAEdJ", "269e2f9ad34766b5f73fa117166c1731"),
             ("c", "1ZfIv6GTo-OGpXpoKen1fUvDQ0A_WoQ-Q", "a3f7c2a62028d0cda555f484200127b9"),
             ("d", "1G4eXgYS2kL7_Cc0x3N1g1x7Zl8D_aU_-", "e659ed7c4e51f4c06326855f4aba8109"),
             ("e", "1Y8q0V_oBwJIY27W_6-8CD1dRqV2gNTdE", "d704e86c5a6a9e920e5e84996c2e0858"),
             ("f", "1nawBAazf_unMv46qGBHhWcQ4JXZ5883r", "bf73914d2888ad642bc01be60523caf6"))],
        expects=["BL30K/JPEGImages", "BL30K/Annotations"],
        note="the authors have since marked these Google Drive copies as no longer available and point to "
             "https://doi.org/10.13012/B2IDB-1702934_V1; a BL30K_<a-f>.tar fetched from there and put in "
             "<root>/BL30K is checked against its md5 and unpacked",
        in_all=False),
]}
