"""util/download.py and scripts/download.py against a file server on 127.0.0.1 (never the outside network):
resume with a Range request (and a clean restart when the server ignores it), checksum refusal, zip and tar
unpacked through a temporary folder, the one-line error for a location that cannot be reached, the licence
prompt, and the script end to end with a test catalogue."""
import hashlib
import io
import json
import os
import re
import socket
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from eval_helpers import ROOT, run_script

import util.download as download
from util.download import Dataset, Licence, RemoteFile, download_command, download_file, fetch_dataset
from util.fileio import InputError

PAYLOAD = bytes(range(256)) * 400  # 100 KiB
LICENCE = Licence("Test terms", "https://example.invalid/licence", "For tests only.")


class FileHandler(BaseHTTPRequestHandler):
    """GET of the server's files, honouring `Range: bytes=N-` unless the server is told to ignore it."""

    def do_GET(self) -> None:
        server = self.server
        server.ranges.append(self.headers.get("Range"))
        body = server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        start = int(match[1]) if match and not server.ignore_range else 0
        if start >= len(body):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(body)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206 if start or server.misplaced_range else 200)
        if start or server.misplaced_range:
            self.send_header("Content-Range", f"bytes 0-{len(body) - 1}/{len(body)}" if server.misplaced_range
                             else f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        self.wfile.write(body[start:])

    def log_message(self, *args) -> None:
        pass


class FileServer(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), FileHandler)
        self.files: dict[str, bytes] = {}
        self.ranges: list = []  # the Range header of each request (None without one)
        self.ignore_range = False
        self.misplaced_range = False  # answer 206 with the bytes from 0, whatever was asked

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_port}{path}"


@pytest.fixture
def server():
    files = FileServer()
    thread = threading.Thread(target=files.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield files
    files.shutdown()
    files.server_close()


@pytest.fixture
def closed_port() -> int:
    """A loopback port that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def tar_bytes(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def tree(folder) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in sorted(folder.rglob("*"))
            if path.is_file()}


# (1) resume ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("client", ["https", "gdown"])
def test_a_partial_file_is_resumed_with_a_range_request(server, tmp_path, client):
    server.files["/w.pth"] = PAYLOAD
    target = tmp_path / "saves" / "w.pth"
    target.parent.mkdir()
    partial = target.with_name("w.pth.part") if client == "https" else target.with_name("w.pth.partabcd1234.part")
    partial.write_bytes(PAYLOAD[:30000])
    remote = RemoteFile("w.pth", server.url("/w.pth"), client, checksum=f"sha256:{hashlib.sha256(PAYLOAD).hexdigest()}")
    download_file(remote, target)
    assert "bytes=30000-" in server.ranges
    assert target.read_bytes() == PAYLOAD
    assert sorted(path.name for path in target.parent.iterdir()) == ["w.pth"]


@pytest.mark.parametrize("client", ["https", "gdown"])
def test_a_server_that_ignores_range_restarts_the_file_cleanly(server, tmp_path, client, capsys):
    server.files["/w.pth"] = PAYLOAD
    server.ignore_range = True
    target = tmp_path / "w.pth"
    partial = tmp_path / ("w.pth.part" if client == "https" else "w.pth.partabcd1234.part")
    partial.write_bytes(b"stale bytes that must not stay in front")
    download_file(RemoteFile("w.pth", server.url("/w.pth"), client, size=len(PAYLOAD)), target)
    assert target.read_bytes() == PAYLOAD
    assert "starting again from the first byte" in capsys.readouterr().out
    assert sorted(path.name for path in tmp_path.iterdir()) == ["w.pth"]


def test_a_whole_partial_file_is_kept_and_a_longer_one_restarted(server, tmp_path, capsys):
    server.files["/w.pth"] = PAYLOAD
    (tmp_path / "w.pth.part").write_bytes(PAYLOAD)
    download_file(RemoteFile("w.pth", server.url("/w.pth")), tmp_path / "w.pth")
    assert server.ranges == [f"bytes={len(PAYLOAD)}-"] and (tmp_path / "w.pth").read_bytes() == PAYLOAD
    (tmp_path / "x.pth.part").write_bytes(PAYLOAD + b"tail")
    server.files["/x.pth"] = PAYLOAD
    download_file(RemoteFile("x.pth", server.url("/x.pth")), tmp_path / "x.pth")
    assert (tmp_path / "x.pth").read_bytes() == PAYLOAD and "starting again" in capsys.readouterr().out


def test_a_misplaced_range_answer_is_refused_and_the_partial_file_kept(server, tmp_path):
    server.files["/w.pth"] = PAYLOAD
    server.misplaced_range = True
    (tmp_path / "w.pth.part").write_bytes(PAYLOAD[:10])
    with pytest.raises(InputError, match=r"asked for bytes 10- but got bytes 0-.*kept in \S+w\.pth\.part"):
        download_file(RemoteFile("w.pth", server.url("/w.pth")), tmp_path / "w.pth")
    assert (tmp_path / "w.pth.part").read_bytes() == PAYLOAD[:10] and not (tmp_path / "w.pth").exists()


def test_a_file_already_in_place_is_checked_not_fetched(server, tmp_path):
    target = tmp_path / "w.pth"
    target.write_bytes(PAYLOAD)
    download_file(RemoteFile("w.pth", server.url("/w.pth"), checksum=f"md5:{hashlib.md5(PAYLOAD).hexdigest()}"),
                  target)
    assert server.ranges == [] and target.read_bytes() == PAYLOAD


# (2) checksum --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("client", ["https", "gdown"])
def test_a_wrong_checksum_is_refused_and_nothing_stays(server, tmp_path, client):
    server.files["/w.pth"] = PAYLOAD
    target = tmp_path / "w.pth"
    wrong = RemoteFile("w.pth", server.url("/w.pth"), client, checksum="md5:" + "0" * 32)
    with pytest.raises(InputError, match=r"^http://127\.0\.0\.1:\d+/w\.pth: md5 [0-9a-f]{32} differs from the "
                                         r"catalogue's 0{32}; the downloaded file was removed$"):
        download_file(wrong, target)
    assert list(tmp_path.iterdir()) == []


def test_a_wrong_size_is_refused(server, tmp_path):
    server.files["/w.pth"] = PAYLOAD
    with pytest.raises(InputError, match=f"{len(PAYLOAD)} bytes instead of the catalogue's 5"):
        download_file(RemoteFile("w.pth", server.url("/w.pth"), size=5), tmp_path / "w.pth")
    assert list(tmp_path.iterdir()) == []


def test_a_web_page_in_place_of_the_file_is_refused(server, tmp_path):
    server.files["/w.pth"] = b"\n  <!DOCTYPE html><html><body>Quota exceeded</body></html>"
    with pytest.raises(InputError, match="an HTML page instead of the file"):
        download_file(RemoteFile("w.pth", server.url("/w.pth")), tmp_path / "w.pth")
    assert list(tmp_path.iterdir()) == []


# (3) archives --------------------------------------------------------------------------------------------

@pytest.fixture
def moves(monkeypatch):
    """Every rename done while placing files: (source, target) pairs."""
    done = []
    real_replace = os.replace

    def spy(source, target):
        done.append((os.fspath(source), os.fspath(target)))
        real_replace(source, target)

    monkeypatch.setattr(download.os, "replace", spy)
    return done


@pytest.mark.parametrize("name, pack", [("DAVIS-data.zip", zip_bytes), ("DAVIS-data.tar.gz", tar_bytes)])
def test_an_archive_is_unpacked_through_a_temporary_folder_and_renamed(server, tmp_path, moves, name, pack):
    server.files[f"/{name}"] = pack({"DAVIS/JPEGImages/480p/bear/00000.jpg": b"jpg",
                                     "DAVIS/ImageSets/480p/val.txt": b"bear\n"})
    dataset = Dataset("d16", "test", "tiny", LICENCE,
                      [RemoteFile(name, server.url(f"/{name}"), into="DAVIS", rename={"DAVIS": "2016"})])
    fetch_dataset(dataset, tmp_path)
    final = tmp_path / "DAVIS" / "2016"
    assert tree(final) == {"JPEGImages/480p/bear/00000.jpg": b"jpg", "ImageSets/480p/val.txt": b"bear\n"}
    source, target = moves[-1]
    assert target == os.fspath(final)
    assert os.path.dirname(os.path.dirname(source)) == os.fspath(tmp_path / "DAVIS")
    assert os.path.basename(os.path.dirname(source)).startswith(f".{name}.")  # the temporary folder
    assert sorted(path.name for path in (tmp_path / "DAVIS").iterdir()) == [f".{name}.done", "2016"]

    fetch_dataset(dataset, tmp_path)  # done before: skipped, nothing fetched again
    assert len(server.ranges) == 1


@pytest.mark.parametrize("name", ["broken.zip", "broken.tar"])
def test_a_corrupt_archive_leaves_no_final_folder(server, tmp_path, name):
    server.files[f"/{name}"] = b"this is not an archive" * 100
    dataset = Dataset("broken", "test", "tiny", LICENCE,
                      [RemoteFile(name, server.url(f"/{name}"), into="data", rename={"DAVIS": "2016"})])
    with pytest.raises(InputError, match=rf"{name}: not a readable archive .*it was removed"):
        fetch_dataset(dataset, tmp_path)
    assert list((tmp_path / "data").iterdir()) == []


def test_a_killed_unpacking_is_cleaned_up_and_done_again(server, tmp_path):
    server.files["/d.tar"] = tar_bytes({"DAVIS/ImageSets/480p/val.txt": b"bear\n"})
    stale = tmp_path / "DAVIS" / ".d.tar.x1y2z3" / "DAVIS"  # what a run killed while unpacking leaves
    stale.mkdir(parents=True)
    (stale / "half.jpg").write_bytes(b"half")
    fetch_dataset(Dataset("d", "test", "tiny", LICENCE, [RemoteFile("d.tar", server.url("/d.tar"), into="DAVIS")]),
                  tmp_path)
    assert sorted(path.name for path in (tmp_path / "DAVIS").iterdir()) == [".d.tar.done", "DAVIS"]
    assert tree(tmp_path / "DAVIS") == {".d.tar.done": b"DAVIS\n", "DAVIS/ImageSets/480p/val.txt": b"bear\n"}


@pytest.mark.parametrize("has_filter", [True, False])
def test_a_tar_reaching_outside_its_folder_is_refused_with_or_without_the_data_filter(server, tmp_path, monkeypatch,
                                                                                      has_filter):
    if not has_filter:  # Python before 3.10.12
        monkeypatch.delattr(download.tarfile, "data_filter", raising=False)
    server.files["/evil.tar"] = tar_bytes({"../outside.txt": b"x"})
    dataset = Dataset("e", "test", "tiny", LICENCE, [RemoteFile("evil.tar", server.url("/evil.tar"), into="data")])
    with pytest.raises(InputError, match="evil.tar: not a readable archive"):
        fetch_dataset(dataset, tmp_path)
    assert not (tmp_path / "outside.txt").exists() and list((tmp_path / "data").iterdir()) == []
    server.files["/good.tar"] = tar_bytes({"ok/0.jpg": b"0"})
    fetch_dataset(Dataset("g", "test", "tiny", LICENCE, [RemoteFile("good.tar", server.url("/good.tar"))]), tmp_path)
    assert (tmp_path / "ok" / "0.jpg").read_bytes() == b"0"


def test_archives_merge_into_a_shared_folder_but_never_overwrite(server, tmp_path):
    server.files["/a.tar"] = tar_bytes({"BL30K/JPEGImages/v1/0.jpg": b"1"})
    server.files["/b.tar"] = tar_bytes({"BL30K/JPEGImages/v2/0.jpg": b"2"})
    server.files["/c.tar"] = tar_bytes({"BL30K/JPEGImages/v2/0.jpg": b"other", "BL30K/JPEGImages/v3/0.jpg": b"3"})
    segments = Dataset("bl", "test", "tiny", LICENCE, [RemoteFile(f"{part}.tar", server.url(f"/{part}.tar"))
                                                       for part in "abc"])
    with pytest.raises(InputError, match=r"BL30K/JPEGImages/v2/0\.jpg: already exists and c\.tar holds it too"):
        fetch_dataset(segments, tmp_path)
    assert tree(tmp_path / "BL30K") == {"JPEGImages/v1/0.jpg": b"1", "JPEGImages/v2/0.jpg": b"2"}
    assert not (tmp_path / ".c.tar.done").exists() and (tmp_path / "c.tar").exists()  # kept for the next run


# (4) unreachable -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("client", ["https", "gdown"])
def test_an_unreachable_location_is_one_line_naming_it(tmp_path, closed_port, client):
    url = f"http://127.0.0.1:{closed_port}/stcn.pth"
    with pytest.raises(InputError) as raised:
        download_file(RemoteFile("stcn.pth", url, client), tmp_path / "stcn.pth")
    message = str(raised.value)
    assert message.startswith(f"{url}: ") and "\n" not in message and "refused" in message.lower()
    assert not (tmp_path / "stcn.pth").exists()


def test_a_missing_file_is_one_line_and_a_partial_file_is_kept_for_resume(server, tmp_path):
    (tmp_path / "gone.pth.part").write_bytes(b"12345")
    with pytest.raises(InputError, match=r"^http://\S+/gone\.pth: HTTP 404 Not Found; the partial download is "
                                         r"kept in \S+gone\.pth\.part and the next run resumes it$"):
        download_file(RemoteFile("gone.pth", server.url("/gone.pth")), tmp_path / "gone.pth")
    assert not (tmp_path / "gone.pth").exists()


# (5) licences --------------------------------------------------------------------------------------------

def test_a_refused_licence_downloads_nothing_and_yes_accepts(server, tmp_path, monkeypatch, capsys):
    server.files["/w.pth"] = PAYLOAD
    catalogue = {"weights": Dataset("weights", "test weights", "100 KiB", LICENCE,
                                    [RemoteFile("w.pth", server.url("/w.pth"))], base="weights")}
    monkeypatch.setattr(download, "CATALOGUE", catalogue)
    prompts = []
    with pytest.raises(InputError, match=r"^weights: licence terms not accepted; nothing was downloaded"):
        download_command(["weights"], tmp_path, tmp_path / "saves", ask=lambda text: prompts.append(text) or "n")
    assert prompts == ["Accept the terms of weights? [y/N] "]
    assert "Test terms (https://example.invalid/licence)" in capsys.readouterr().out
    assert server.ranges == [] and list(tmp_path.iterdir()) == []

    def no_prompt(text):
        raise AssertionError("--yes must not ask")

    assert download_command(["weights"], tmp_path, tmp_path / "saves", assume_yes=True, ask=no_prompt) == 0
    assert (tmp_path / "saves" / "w.pth").read_bytes() == PAYLOAD
    assert "accepted (--yes)" in capsys.readouterr().out


# (6) the script ------------------------------------------------------------------------------------------

def write_catalogue(path, server) -> None:
    server.files["/w.pth"] = PAYLOAD
    server.files["/mini.zip"] = zip_bytes({"mini/JPEGImages/v/0.jpg": b"jpg"})
    licence = {"name": "Test terms", "url": "https://example.invalid/licence", "terms": "For tests only."}
    path.write_text(json.dumps({
        "weights": {"holds": "test weights", "volume": "100 KiB", "licence": licence, "base": "weights",
                    "files": [{"name": "stcn.pth", "url": server.url("/w.pth"), "client": "gdown",
                               "checksum": f"md5:{hashlib.md5(PAYLOAD).hexdigest()}"}]},
        "mini": {"holds": "a tiny dataset", "volume": "1 KiB", "licence": licence, "expects": ["mini/JPEGImages"],
                 "next_steps": ["python train.py --yv_root {root}/mini"],
                 "files": [{"name": "mini.zip", "url": server.url("/mini.zip"), "into": ""}]},
    }))


def test_the_script_downloads_a_catalogue_end_to_end(server, tmp_path):
    write_catalogue(tmp_path / "catalogue.json", server)
    root = tmp_path / "data"
    result = run_script("scripts/download.py", "all", "--root", root, "--weights_dir", tmp_path / "saves", "--yes",
                        "--catalogue", tmp_path / "catalogue.json")
    assert (tmp_path / "saves" / "stcn.pth").read_bytes() == PAYLOAD
    assert tree(root / "mini") == {"JPEGImages/v/0.jpg": b"jpg"}
    assert f"next: python train.py --yv_root {root}/mini" in result.stdout
    assert "done: weights, mini" in result.stdout and "not found" not in result.stdout


def test_the_script_refuses_without_acceptance_and_fails_on_one_line(server, tmp_path, closed_port):
    write_catalogue(tmp_path / "catalogue.json", server)
    refused = run_script("scripts/download.py", "mini", "--root", tmp_path / "data", "--catalogue",
                         tmp_path / "catalogue.json", check=False)  # no terminal: no answer, a refusal
    assert refused.returncode == 2 and refused.stderr.strip().startswith("error: mini: licence terms not accepted")
    assert not (tmp_path / "data").exists() and server.ranges == []

    broken = json.loads((tmp_path / "catalogue.json").read_text())
    broken["mini"]["files"][0]["url"] = f"http://127.0.0.1:{closed_port}/mini.zip"
    (tmp_path / "catalogue.json").write_text(json.dumps(broken))
    failed = run_script("scripts/download.py", "mini", "--root", tmp_path / "data", "--yes", "--catalogue",
                        tmp_path / "catalogue.json", check=False)
    assert failed.returncode == 2
    assert re.fullmatch(rf"error: http://127\.0\.0\.1:{closed_port}/mini\.zip: cannot be reached \(.*\)\n",
                        failed.stderr)


def test_the_script_lists_the_catalogue_and_rejects_a_bad_name():
    listed = run_script("scripts/download.py", "--list")
    for name in ("weights", "static", "davis2016", "davis2017", "youtube2018", "youtube2019", "bl30k"):
        assert re.search(rf"^{name}: ", listed.stdout, re.MULTILINE)
    assert "licence: DAVIS terms (https://davischallenge.org/)" in listed.stdout
    bad = run_script("scripts/download.py", "davis2020", check=False)
    assert bad.returncode == 2 and bad.stderr == ("error: davis2020: not in the catalogue (choose among weights, "
                                                  "static, davis2016, davis2017, youtube2018, youtube2019, bl30k, "
                                                  "all)\n")


def test_the_builtin_catalogue_points_where_the_scripts_read():
    catalogue = download.CATALOGUE
    assert [file.name for file in catalogue["weights"].files][0] == "stcn.pth"
    assert catalogue["weights"].base == "weights" and catalogue["davis2017"].base == "root"
    assert {file.client for dataset in catalogue.values() for file in dataset.files} == {"gdown", "https"}
    assert all(file.checksum.startswith("md5:") for file in catalogue["bl30k"].files)
    assert [dataset.name for dataset in download.select(catalogue, ["all"])] == [
        "weights", "static", "davis2016", "davis2017", "youtube2018", "youtube2019"]
    assert (ROOT / "scripts" / "resize_youtube.py").exists()  # named in youtube2019's next steps
