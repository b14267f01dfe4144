"""`fontgen review`: review.json, the HTTP API on a real loopback server, a real browser, and
vectorize honouring the decisions. Glyphs come from a tiny model trained on real sample glyphs."""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from fontTools.ttLib import TTFont
from PIL import Image

from fontgen.cli import cli
from fontgen.errors import FontgenError
from fontgen.review import REVIEW_NAME, TOKEN_HEADER, apply_review, read_review, start_server
from fontgen.vectorize import read_glyph_folder, vectorize_folder

CHARS = "丁三下丑丘乌"  # in the sample charset; 丑 is one the target font (style 7) lacks
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


@pytest.fixture(scope="module")
def generated(tmp_path_factory, tiny_run) -> Path:
    """A real generated-glyph folder: `fontgen generate --style 7 --chars ... --out DIR`."""
    out = tmp_path_factory.mktemp("review") / "style-7"
    result = CliRunner().invoke(cli, ["generate", "--style", "7", "--checkpoint", str(tiny_run), "--chars", CHARS,
                                      "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def folder(generated, tmp_path) -> Path:
    copy = tmp_path / "glyphs"
    shutil.copytree(generated, copy)
    return copy


@pytest.fixture
def server(folder):
    server, thread = start_server(folder)
    yield server
    server.shutdown()
    server.server_close()


def call(server, path, body=None, token: str | None = "header", raw: bytes | None = None,
         content_type="application/json"):
    """(status, parsed JSON or bytes) of a request to the server."""
    url = f"http://127.0.0.1:{server.port}{path}"
    headers = {}
    if token == "header":
        headers[TOKEN_HEADER] = server.token
    elif token == "query":
        url += ("&" if "?" in url else "?") + f"token={server.token}"
    elif token is not None:
        headers[TOKEN_HEADER] = token
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    if data is not None:
        headers["Content-Type"] = content_type
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, payload, kind = response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        status, payload, kind = exc.code, exc.read(), exc.headers.get("Content-Type", "")
    return status, (json.loads(payload) if "json" in kind else payload)


def test_review_file_contract(folder):
    files = read_glyph_folder(folder).files
    assert read_review(folder) == {}
    kept, counts = apply_review(folder, files)
    assert kept == files and (counts.undecided, counts.accepted, counts.rejected) == (len(CHARS), 0, 0)
    assert not counts.reviewed
    kept, counts = apply_review(folder, files, accepted_only=True)
    assert kept == {}
    (folder / REVIEW_NAME).write_text(json.dumps({"format": "fontgen-review", "version": 1, "glyphs": {
        "u4E01": {"decision": "rejected", "variant": None}, "u4E09": {"decision": "maybe", "variant": None}}}))
    with pytest.raises(FontgenError, match="decision must be one of"):
        read_review(folder)
    (folder / REVIEW_NAME).write_text(json.dumps({"format": "fontgen-review", "version": 1, "glyphs": {
        "u4E01": {"decision": "accepted", "variant": "variants/../manifest.json"}}}))
    with pytest.raises(FontgenError, match="variant"):
        read_review(folder)
    (folder / REVIEW_NAME).write_text(json.dumps({"format": "fontgen-review", "version": 1, "glyphs": {
        "u4E01": {"decision": "accepted", "variant": "variants/u4E01-s1.png"}}}))
    with pytest.raises(FontgenError, match="missing"):
        apply_review(folder, files)


def test_api_on_loopback(folder, server):
    assert server.server_address[0] == "127.0.0.1"
    # the token: required on every request, as ?token= on GETs, as a header on POSTs
    assert call(server, "/api/glyphs", token=None)[0] == 403
    assert call(server, "/?token=wrong", token=None)[0] == 403
    assert call(server, "/glyph/u4E01.png", token=None)[0] == 403
    assert call(server, "/api/decide", {"glyph": "u4E01", "decision": "rejected"}, token=None)[0] == 403
    assert call(server, "/api/decide", {"glyph": "u4E01", "decision": "rejected"}, token="query")[0] == 403
    assert call(server, "/api/decide", {"glyph": "u4E01", "decision": "rejected"}, token="x" * 32)[0] == 403
    assert not (folder / REVIEW_NAME).exists()

    status, page = call(server, "/", token="query")
    assert status == 200 and b"fontgen review" in page
    status, listing = call(server, "/api/glyphs", token="query")
    assert status == 200
    keys = [g["key"] for g in listing["glyphs"]]
    assert sorted(keys) == sorted(f"u{ord(ch):04X}" for ch in CHARS)
    flagged = [bool(g["flags"]) for g in listing["glyphs"]]
    assert flagged == sorted(flagged, reverse=True)  # flagged first
    assert {g["decision"] for g in listing["glyphs"]} == {"undecided"}
    assert listing["counts"]["undecided"] == len(CHARS) and listing["alternatives"]["available"]
    status, png = call(server, f"/glyph/{keys[0]}.png", token="query")
    assert status == 200 and png[:4] == b"\x89PNG"
    status, png = call(server, f"/source/{keys[0]}.png", token="query")
    assert status == 200 and png[:4] == b"\x89PNG"
    for which in ("target", "source"):  # the page's own fonts: the machine may have no CJK fonts
        status, font = call(server, f"/font/{which}", token="query")
        assert status == 200 and font[:4] in (b"\x00\x01\x00\x00", b"OTTO", b"true")

    # decide: saved at once, in the DESIGN.md format
    status, answer = call(server, "/api/decide", {"glyph": keys[0], "decision": "rejected"})
    assert status == 200 and answer["counts"]["rejected"] == 1
    saved = json.loads((folder / REVIEW_NAME).read_text())
    assert saved["format"] == "fontgen-review" and saved["version"] == 1
    assert saved["glyphs"] == {keys[0]: {"decision": "rejected", "variant": None}}

    # malformed requests: 4xx and review.json untouched
    before = (folder / REVIEW_NAME).read_bytes()
    for body, raw, kind in [
        (None, b"{not json", "application/json"),
        (None, b"\xff\xfe", "application/json"),
        ({"glyph": "u0041", "decision": "accepted"}, None, "application/json"),  # not in the folder
        ({"glyph": keys[1], "decision": "maybe"}, None, "application/json"),
        ({"glyph": keys[1], "decision": "accepted", "extra": 1}, None, "application/json"),
        ({"glyph": keys[1], "decision": "accepted", "variant": "variants/../manifest.json"}, None, "application/json"),
        ({"glyph": keys[1], "decision": "accepted", "variant": f"variants/{keys[1]}-s99.png"}, None, "application/json"),
        (["u4E01", "accepted"], None, "application/json"),
        ({"glyph": keys[1], "decision": "accepted"}, None, "text/plain"),
    ]:
        status, answer = call(server, "/api/decide", body, raw=raw, content_type=kind)
        assert 400 <= status < 500, (body, raw, status)
    assert call(server, "/api/bulk", {"decision": "accepted", "glyphs": ["u0041"]})[0] == 400
    assert call(server, "/api/alternatives", {"glyph": keys[1], "count": 99})[0] == 400
    assert call(server, "/api/alternatives", {"glyph": keys[1], "blend": {"style": 999}})[0] == 400
    assert (folder / REVIEW_NAME).read_bytes() == before
    assert not (folder / "variants").exists() or not list((folder / "variants").iterdir())

    # alternatives: seeded dropout samples, same size as the originals, new seeds each time
    started = time.perf_counter()
    status, answer = call(server, "/api/alternatives", {"glyph": keys[1], "count": 2})
    assert status == 200, answer
    assert answer["made"] == [f"variants/{keys[1]}-s1.png", f"variants/{keys[1]}-s2.png"]
    status, again = call(server, "/api/alternatives", {"glyph": keys[1], "count": 1, "blend": {"style": 3,
                                                                                               "amount": 0.5}})
    assert status == 200 and again["made"] == [f"variants/{keys[1]}-s3-b3-50.png"]
    assert again["variants"] == answer["made"] + again["made"]
    assert time.perf_counter() - started < 60
    size = Image.open(folder / f"{keys[1]}.png").size
    for name in again["variants"]:
        with Image.open(folder / name) as im:
            assert im.size == size and im.mode == "L"
    status, png = call(server, f"/{answer['made'][0]}", token="query")
    assert status == 200 and png == (folder / answer["made"][0]).read_bytes()
    assert call(server, "/variants/..%2Fmanifest.json", token="query")[0] == 404

    status, answer = call(server, "/api/decide", {"glyph": keys[1], "decision": "accepted",
                                                  "variant": f"variants/{keys[1]}-s2.png"})
    assert status == 200 and answer["variant"] == f"variants/{keys[1]}-s2.png"
    status, answer = call(server, "/api/bulk", {"decision": "accepted", "glyphs": keys[:4]})
    assert status == 200 and answer["changed"] == keys[2:4]  # decided glyphs are left as they are
    assert answer["counts"] == {"accepted": 3, "rejected": 1, "undecided": len(CHARS) - 4,
                                "flagged": sum(flagged), "total": len(CHARS)}

    # a restart (a new server, a new token) loses nothing; the old token is refused
    old_token = server.token
    server.shutdown()
    server.server_close()
    again_server, _ = start_server(folder, preload=False)
    try:
        assert again_server.token != old_token
        assert call(again_server, f"/api/glyphs?token={old_token}", token=None)[0] == 403
        status, listing = call(again_server, "/api/glyphs", token="query")
        decided = {g["key"]: (g["decision"], g["variant"]) for g in listing["glyphs"]}
        assert decided[keys[0]] == ("rejected", None)
        assert decided[keys[1]] == ("accepted", f"variants/{keys[1]}-s2.png")
        assert decided[keys[2]] == decided[keys[3]] == ("accepted", None)
        assert {decided[k][0] for k in keys[4:]} == {"undecided"}
    finally:
        again_server.shutdown()
        again_server.server_close()


def test_cli_review_refuses_a_folder_generate_did_not_write(tmp_path):
    (tmp_path / "u4E01.png").write_bytes(b"")
    result = CliRunner().invoke(cli, ["review", str(tmp_path), "--no-browser"])
    assert result.exit_code == 1 and "fontgen generate" in result.output
    result = CliRunner().invoke(cli, ["--workdir", str(tmp_path / "w"), "review", "--no-browser"])
    assert result.exit_code == 1 and "no generated glyph folders" in result.output


def glyph_points(font_path: Path, cp: int):
    font = TTFont(str(font_path))
    glyph = font["glyf"][font.getBestCmap()[cp]]
    coordinates, ends, flags = glyph.getCoordinates(font["glyf"])
    return list(coordinates), list(ends), list(flags)


def check_vectorized(folder: Path, rejected: str, chosen: str, variant: str, tmp_path: Path, runner_args=()):
    """vectorize honours review.json: `rejected` is left out, `chosen` is traced from `variant`."""
    result = CliRunner().invoke(cli, ["vectorize", str(folder), "--out", str(tmp_path / "reviewed.ttf"),
                                      "--min-iou", "0", "--workers", "1", *runner_args])
    assert result.exit_code == 0, result.output
    assert "review:" in result.output and "1 rejected" in result.output
    cmap = TTFont(str(tmp_path / "reviewed.ttf")).getBestCmap()
    rejected_cp, chosen_cp = int(rejected[1:], 16), int(chosen[1:], 16)
    assert rejected_cp not in cmap and chosen_cp in cmap
    # the same folder with the variant put in place of the original, and no review: the same outline
    plain = tmp_path / "plain"
    shutil.copytree(folder, plain)
    (plain / REVIEW_NAME).unlink()
    shutil.copyfile(folder / variant, plain / f"{chosen}.png")
    result = CliRunner().invoke(cli, ["vectorize", str(plain), "--out", str(tmp_path / "plain.ttf"),
                                      "--min-iou", "0", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert glyph_points(tmp_path / "reviewed.ttf", chosen_cp) == glyph_points(tmp_path / "plain.ttf", chosen_cp)
    return result


def test_vectorize_honours_review(folder, server, tmp_path):
    keys = [g["key"] for g in call(server, "/api/glyphs", token="query")[1]["glyphs"]]
    assert call(server, "/api/decide", {"glyph": keys[0], "decision": "rejected"})[0] == 200
    made = call(server, "/api/alternatives", {"glyph": keys[1], "count": 1})[1]["made"]
    assert call(server, "/api/decide", {"glyph": keys[1], "decision": "accepted", "variant": made[0]})[0] == 200
    original = np.asarray(Image.open(folder / f"{keys[1]}.png"))
    assert not np.array_equal(original, np.asarray(Image.open(folder / made[0]))), "a dropout sample differs"
    assert set(read_glyph_folder(folder).files) == {ord(ch) for ch in CHARS}  # variants/, review.json ignored
    check_vectorized(folder, keys[0], keys[1], made[0], tmp_path)
    # --accepted-only: only the one accepted glyph
    result = CliRunner().invoke(cli, ["vectorize", str(folder), "--out", str(tmp_path / "accepted.ttf"),
                                      "--min-iou", "0", "--workers", "1", "--accepted-only"])
    assert result.exit_code == 0, result.output
    assert "1 accepted (1 as a chosen alternative), 1 rejected" in result.output
    assert set(TTFont(str(tmp_path / "accepted.ttf")).getBestCmap()) == {int(keys[1][1:], 16)}
    assert call(server, "/api/bulk", {"decision": "rejected"})[0] == 200  # every undecided one
    assert call(server, "/api/decide", {"glyph": keys[1], "decision": "rejected"})[0] == 200
    result = CliRunner().invoke(cli, ["vectorize", str(folder), "--out", str(tmp_path / "none.ttf")])
    assert result.exit_code == 1 and "every glyph" in result.output and "rejected" in result.output


def _browser_or_skip():
    pytest.importorskip("selenium", reason="selenium is not installed (pip install -e '.[dev]')")
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.skip(f"headless browser test skipped: {', '.join(missing)} missing (Debian packages chromium and "
                    "chromium-driver; .ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)


def test_browser_reject_pick_and_vectorize(folder, server, tmp_path):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = _browser_or_skip()
    try:
        wait = WebDriverWait(driver, 30, ignored_exceptions=[StaleElementReferenceException])  # the page redraws
        driver.get(server.url)
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
        assert len(driver.find_elements(By.CSS_SELECTOR, "#grid .cell")) == len(CHARS)
        first = driver.find_element(By.CSS_SELECTOR, ".cell.focus").get_attribute("data-key")
        keys = ActionChains(driver)
        keys.send_keys("r").perform()  # reject, then on to the next glyph
        wait.until(lambda d: "rejected" in d.find_element(By.CSS_SELECTOR, f'.cell[data-key="{first}"]')
                   .get_attribute("class"))
        second = driver.find_element(By.CSS_SELECTOR, ".cell.focus").get_attribute("data-key")
        assert second != first
        keys.send_keys("n").perform()  # three more drawings of it
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#drawings .drawing")) == 4)
        keys.send_keys("2").perform()  # pick the second alternative
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#drawings .drawing.chosen")
                   .get_attribute("data-variant") == f"variants/{second}-s2.png")
        # the in-context line sets generated glyphs as images on the target font's em box
        assert driver.find_elements(By.CSS_SELECTOR, "#ctx-large img")
        counts = driver.find_element(By.ID, "counts").text
        assert "1 accepted" in counts and "1 rejected" in counts
        wait.until(lambda d: d.execute_script("return document.fonts.check('28px fontgen-target')"))
    finally:
        driver.quit()
    decisions = read_review(folder)
    assert decisions[first] == {"decision": "rejected", "variant": None}
    assert decisions[second] == {"decision": "accepted", "variant": f"variants/{second}-s2.png"}
    check_vectorized(folder, first, second, f"variants/{second}-s2.png", tmp_path)
