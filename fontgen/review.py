"""`fontgen review`: the designer accepts, rejects or picks each generated glyph.

Between `generate` and `vectorize`. A small local web server (standard library only,
bound to 127.0.0.1, every request carrying a random token) serves one page: a grid of
every glyph of a generated-glyph folder, flagged glyphs first, each beside its source
glyph; accept / reject / undecided per glyph with the keyboard or the mouse; alternative
drawings on demand (seeded samples (Generation.run) of the checkpoint named in the folder's
manifest, optionally blended towards another style), written to ``variants/``; and a line
of running text set with the target font's own glyphs and the generated ones.

Decisions are written as they are made, atomically, to ``review.json`` in the folder
(DESIGN.md "Review decisions")::

    {"format": "fontgen-review", "version": 1,
     "glyphs": {"uXXXX": {"decision": "accepted" | "rejected" | "undecided",
                          "variant": null | "variants/NAME.png"}}}

`vectorize` reads it through `apply_review`: rejected glyphs are left out, a chosen
variant is traced instead of the original, undecided glyphs are kept unless
``--accepted-only``.
"""

from __future__ import annotations

import hmac
import io
import json
import os
import re
import secrets
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from fontgen.errors import FontgenError
from fontgen.files import temp_path

REVIEW_NAME = "review.json"
REVIEW_FORMAT = "fontgen-review"
REVIEW_VERSION = 1
VARIANTS_DIR = "variants"
DECISIONS = ("accepted", "rejected", "undecided")
KEY_RE = re.compile(r"^u([0-9A-F]{4,6})$")
GLYPH_FILE_RE = re.compile(r"^(u[0-9A-F]{4,6})\.png$")
# a variant as review.json names it: variants/NAME.png, NAME without slashes or a leading dot
VARIANT_PATH_RE = re.compile(r"^variants/([A-Za-z0-9][A-Za-z0-9_.-]*)\.png$")
TOKEN_HEADER = "X-Fontgen-Token"
MAX_BODY = 64 * 1024
MAX_ALTERNATIVES = 8


def glyph_key(codepoint: int) -> str:
    return f"u{codepoint:04X}"


# ---------------------------------------------------------------------------------------
# review.json: reading, writing, applying (vectorize uses these)


def _check_variant_path(variant, where: str) -> str | None:
    if variant is None:
        return None
    if not isinstance(variant, str) or not VARIANT_PATH_RE.match(variant) or ".." in variant:
        raise FontgenError(f"{where}: variant {variant!r} is not a file under variants/ named NAME.png")
    return variant


def read_review(folder: Path) -> dict[str, dict]:
    """The decisions of `folder`'s review.json, {"uXXXX": {"decision", "variant"}}; {} without one."""
    path = Path(folder) / REVIEW_NAME
    if not path.is_file():
        return {}
    hint = f"fix or delete {path} (then every glyph counts as undecided), or run `fontgen review` again"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise FontgenError(f"{path}: not valid JSON ({exc}); {hint}") from None
    if not isinstance(data, dict) or data.get("format") != REVIEW_FORMAT:
        raise FontgenError(f"{path}: not a fontgen review file (format {REVIEW_FORMAT!r} expected); {hint}")
    if data.get("version") != REVIEW_VERSION:
        raise FontgenError(f"{path}: review format version {data.get('version')!r}; this fontgen reads version "
                           f"{REVIEW_VERSION}")
    glyphs = data.get("glyphs")
    if not isinstance(glyphs, dict):
        raise FontgenError(f"{path}: \"glyphs\" must be an object of uXXXX -> decision; {hint}")
    decisions = {}
    for key, entry in glyphs.items():
        if not KEY_RE.match(str(key)):
            raise FontgenError(f"{path}: {key!r} is not a glyph key (uXXXX, 4-6 uppercase hex digits); {hint}")
        if not isinstance(entry, dict) or entry.get("decision") not in DECISIONS:
            raise FontgenError(f"{path}: {key}: decision must be one of {', '.join(DECISIONS)}; {hint}")
        decisions[key] = {"decision": entry["decision"],
                          "variant": _check_variant_path(entry.get("variant"), f"{path}: {key}")}
    return decisions


def write_review(folder: Path, decisions: dict[str, dict]) -> Path:
    """Write review.json atomically (temporary sibling, fsync, rename): a kill leaves old or new."""
    path = Path(folder) / REVIEW_NAME
    data = {"format": REVIEW_FORMAT, "version": REVIEW_VERSION,
            "glyphs": {key: {"decision": d["decision"], "variant": d.get("variant")}
                       for key, d in sorted(decisions.items())}}
    tmp = temp_path(path, suffix=True)
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1, ensure_ascii=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


@dataclass
class ReviewCounts:
    accepted: int = 0
    rejected: int = 0
    undecided: int = 0
    variants: int = 0  # kept glyphs traced from a chosen alternative
    reviewed: bool = False  # the folder has a review.json
    accepted_only: bool = False

    def line(self) -> str:
        if not self.reviewed:
            return (f"{self.undecided} undecided (no review.json: every glyph included; `fontgen review` to "
                    "accept or reject them)")
        kept = "left out (--accepted-only)" if self.accepted_only else "included; --accepted-only leaves them out"
        alt = f" ({self.variants} as a chosen alternative)" if self.variants else ""
        return (f"{self.accepted} accepted{alt}, {self.rejected} rejected (left out), "
                f"{self.undecided} undecided ({kept})")


def apply_review(folder: Path, files: dict[int, Path], accepted_only: bool = False,
                 image_size: int | None = None) -> tuple[dict[int, Path], ReviewCounts]:
    """The glyph files vectorize should trace after the folder's review decisions, and the counts.

    Rejected glyphs are dropped, undecided ones too when `accepted_only`; a chosen variant
    replaces the original image. A missing or mis-sized variant file is an error.
    """
    folder = Path(folder)
    decisions = read_review(folder)
    counts = ReviewCounts(reviewed=(folder / REVIEW_NAME).is_file(), accepted_only=accepted_only)
    kept: dict[int, Path] = {}
    for cp, path in files.items():
        entry = decisions.get(glyph_key(cp), {"decision": "undecided", "variant": None})
        decision = entry["decision"]
        setattr(counts, decision, getattr(counts, decision) + 1)
        if decision == "rejected" or (decision == "undecided" and accepted_only):
            continue
        variant = entry.get("variant")
        if variant:
            vpath = folder / variant
            if not vpath.is_file():
                raise FontgenError(f"{folder / REVIEW_NAME}: {glyph_key(cp)} chose {variant}, which is missing; "
                                   "pick another drawing in `fontgen review` or set its variant to null")
            if image_size is not None:
                from PIL import Image

                with Image.open(vpath) as im:
                    if im.size != (image_size, image_size):
                        raise FontgenError(f"{vpath}: image is {im.size[0]}x{im.size[1]} px, expected "
                                           f"{image_size}x{image_size} like the folder's glyphs")
            path = vpath
            counts.variants += 1
        kept[cp] = path
    return kept, counts


# ---------------------------------------------------------------------------------------
# The review session: a folder's glyphs and decisions, alternatives, source glyphs


class RequestError(Exception):
    """A request the server refuses, with its HTTP status."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _resolve_checkpoint(text: str | None, folder: Path) -> Path | None:
    if not text:
        return None
    path = Path(text).expanduser()
    candidates = [path] if path.is_absolute() else [Path.cwd() / path, folder / path]
    return next((p for p in candidates if p.is_file()), None)


class ReviewSession:
    """The state behind the page. Thread-safe: the server handles requests in threads."""

    def __init__(self, folder: Path, device: str = "cpu"):
        self.folder = Path(folder).expanduser().absolute()
        manifest_path = self.folder / "manifest.json"
        if not self.folder.is_dir():
            raise FontgenError(f"glyph folder not found: {self.folder}")
        try:
            self.manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            raise FontgenError(f"{self.folder} has no readable manifest.json; review works on a folder written "
                               "by `fontgen generate`") from None
        if not isinstance(self.manifest, dict) or self.manifest.get("format") != "fontgen-glyphs":
            raise FontgenError(f"{manifest_path} was not written by `fontgen generate`")
        self.device = device
        by_key = {}
        for entry in self.manifest.get("glyphs") or []:
            if isinstance(entry, dict) and isinstance(entry.get("file"), str):
                m = GLYPH_FILE_RE.match(entry["file"])
                if m:
                    by_key[m.group(1)] = entry
        glyphs = []
        for p in sorted(self.folder.iterdir()):
            m = GLYPH_FILE_RE.match(p.name)
            if not m or not p.is_file():
                continue
            key = m.group(1)
            cp = int(key[1:], 16)
            entry = by_key.get(key, {})
            flags = [str(f) for f in entry.get("flags") or []]
            order = list(by_key).index(key) if key in by_key else len(by_key) + cp
            glyphs.append({"key": key, "codepoint": cp, "char": chr(cp), "flags": flags, "_order": order})
        if not glyphs:
            raise FontgenError(f"{self.folder}: no glyph images (uXXXX.png) to review")
        glyphs.sort(key=lambda g: (not g["flags"], g["_order"]))  # flagged first, then generate's order
        for g in glyphs:
            del g["_order"]
        self.glyphs = glyphs
        self.by_key = {g["key"]: g for g in glyphs}
        self.decisions = read_review(self.folder)
        self.lock = threading.RLock()  # decisions and review.json
        self._model_lock = threading.Lock()  # the generator and the source renderer
        self._generation = None
        self._generation_error: str | None = None
        self._sources: dict[str, bytes] = {}
        self._target_font: tuple[bytes, str] | None | bool = False  # False: not looked at yet
        self._source_font: tuple[bytes, str] | None | bool = False
        self._own_chars: str | None = None
        self.checkpoint = _resolve_checkpoint(self.manifest.get("checkpoint"), self.folder)
        self.geometry = self.manifest.get("geometry") or {}
        self.image_size = int(self.geometry.get("image_size", 0)) or None

    # -- decisions --------------------------------------------------------------------

    def decision(self, key: str) -> dict:
        return self.decisions.get(key) or {"decision": "undecided", "variant": None}

    def counts(self) -> dict:
        counts = {d: 0 for d in DECISIONS}
        for g in self.glyphs:
            counts[self.decision(g["key"])["decision"]] += 1
        counts["flagged"] = sum(1 for g in self.glyphs if g["flags"])
        counts["total"] = len(self.glyphs)
        return counts

    def variants_of(self, key: str) -> list[str]:
        folder = self.folder / VARIANTS_DIR
        if not folder.is_dir():
            return []
        found = [p for p in folder.glob(f"{key}-*.png") if p.is_file() and not p.name.startswith(".")]
        return [f"{VARIANTS_DIR}/{p.name}" for p in sorted(found, key=_variant_sort_key)]

    def listing(self) -> dict:
        with self.lock:
            glyphs = [dict(g, **self.decision(g["key"]), variants=self.variants_of(g["key"])) for g in self.glyphs]
            return {"folder": str(self.folder), "style": self.manifest.get("style"), "geometry": self.geometry,
                    "counts": self.counts(), "glyphs": glyphs,
                    "target_font": self.manifest.get("target_font"),
                    "alternatives": {"available": self.checkpoint is not None,
                                     "checkpoint": str(self.checkpoint or self.manifest.get("checkpoint")),
                                     "max": MAX_ALTERNATIVES},
                    "own_chars": self.own_chars()}

    def _key(self, value) -> str:
        if not isinstance(value, str) or value not in self.by_key:
            raise RequestError(400, f"unknown glyph {value!r}")
        return value

    def _check_variant(self, key: str, variant) -> str | None:
        if variant is None:
            return None
        if not isinstance(variant, str) or not VARIANT_PATH_RE.match(variant) or ".." in variant \
                or not variant.startswith(f"{VARIANTS_DIR}/{key}-"):
            raise RequestError(400, f"{variant!r} is not an alternative of {key}")
        if not (self.folder / variant).is_file():
            raise RequestError(400, f"{variant} does not exist")
        return variant

    def decide(self, body) -> dict:
        if not isinstance(body, dict) or set(body) - {"glyph", "decision", "variant"}:
            raise RequestError(400, "expected {\"glyph\": \"uXXXX\", \"decision\": ..., \"variant\": ...}")
        with self.lock:
            key = self._key(body.get("glyph"))
            current = self.decision(key)
            decision = body.get("decision", current["decision"])
            if decision not in DECISIONS:
                raise RequestError(400, f"decision must be one of {', '.join(DECISIONS)}, not {decision!r}")
            variant = self._check_variant(key, body["variant"]) if "variant" in body else current.get("variant")
            new = dict(self.decisions)
            new[key] = {"decision": decision, "variant": variant}
            self._save(new)
            return {"glyph": key, **new[key], "counts": self.counts()}

    def bulk(self, body) -> dict:
        """{"decision": D, "glyphs": [keys]} (default: every undecided glyph) -> D for those still undecided."""
        if not isinstance(body, dict) or set(body) - {"decision", "glyphs"} or body.get("decision") not in DECISIONS:
            raise RequestError(400, "expected {\"decision\": \"accepted\"|..., \"glyphs\": [\"uXXXX\", ...]}")
        with self.lock:
            keys = body.get("glyphs")
            if keys is None:
                keys = [g["key"] for g in self.glyphs]
            if not isinstance(keys, list):
                raise RequestError(400, "\"glyphs\" must be a list of glyph keys")
            keys = [self._key(k) for k in keys]
            changed = [k for k in keys if self.decision(k)["decision"] == "undecided"]
            new = dict(self.decisions)
            for k in changed:
                new[k] = {"decision": body["decision"], "variant": self.decision(k).get("variant")}
            if changed:
                self._save(new)
            return {"changed": changed, "decision": body["decision"], "counts": self.counts()}

    def _save(self, new: dict) -> None:
        try:
            write_review(self.folder, new)
        except OSError as exc:
            raise RequestError(500, f"cannot write {self.folder / REVIEW_NAME}: {exc.strerror or exc}") from None
        self.decisions = new

    # -- the model: source glyphs and alternatives -------------------------------------

    def generation(self):
        """The checkpoint's Generation, loaded once (slow-ish), or a RequestError saying why not."""
        with self._model_lock:
            if self._generation is None and self._generation_error is None:
                if self.checkpoint is None:
                    self._generation_error = (f"the checkpoint named in the manifest "
                                              f"({self.manifest.get('checkpoint')}) is not there")
                else:
                    try:
                        from fontgen.generate import Generation

                        self._generation = Generation(self.checkpoint, self.device)
                    except FontgenError as exc:
                        self._generation_error = str(exc)
            if self._generation is None:
                raise RequestError(409, self._generation_error)
            return self._generation

    def preload(self) -> None:
        try:
            self.generation()
        except RequestError:
            pass

    def styles(self) -> list[dict]:
        gen = self.generation()
        return [{"id": int(s["id"]), "name": s["name"]} for s in gen.meta["styles"]]

    def source_png(self, key: str) -> bytes:
        key = self._key(key)
        if key not in self._sources:
            gen = self.generation()
            with self._model_lock:
                pixels = gen.render_sources([self.by_key[key]["char"]])[0]
            self._sources[key] = _png_bytes(pixels)
        return self._sources[key]

    def alternatives(self, body) -> dict:
        """{"glyph": key, "count": K, "blend": {"style": id, "amount": t}?} -> K new variants, seeded."""
        if not isinstance(body, dict) or set(body) - {"glyph", "count", "blend"}:
            raise RequestError(400, "expected {\"glyph\": \"uXXXX\", \"count\": K, \"blend\": {\"style\": ID, "
                                    "\"amount\": 0.3}}")
        key = self._key(body.get("glyph"))
        count = body.get("count", 3)
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_ALTERNATIVES:
            raise RequestError(400, f"count must be an integer from 1 to {MAX_ALTERNATIVES}")
        weights = {int(k): float(v) for k, v in ((self.manifest.get("style") or {}).get("weights") or {}).items()}
        if not weights:
            weights = {int((self.manifest.get("style") or {}).get("id", 0)): 1.0}
        blend = body.get("blend")
        suffix = ""
        if blend is not None:
            if not isinstance(blend, dict) or set(blend) - {"style", "amount"}:
                raise RequestError(400, "blend must be {\"style\": ID, \"amount\": 0..1}")
            style, amount = blend.get("style"), blend.get("amount", 0.3)
            if not isinstance(amount, (int, float)) or isinstance(amount, bool) or not 0 < amount <= 1:
                raise RequestError(400, "blend amount must be a number in (0, 1]")
            if not isinstance(style, int) or isinstance(style, bool):
                raise RequestError(400, "blend style must be a style id (integer)")
        gen = self.generation()
        if blend is not None:
            if style not in {int(s["id"]) for s in gen.meta["styles"]}:
                raise RequestError(400, f"unknown style {style}")
            weights = {k: v * (1 - amount) for k, v in weights.items()}
            weights[style] = weights.get(style, 0.0) + amount
            suffix = f"-b{style}-{round(amount * 100):d}"
        import torch

        folder = self.folder / VARIANTS_DIR
        made = []
        with self._model_lock:
            folder.mkdir(exist_ok=True)
            used = {_variant_seed(p) for p in folder.glob(f"{key}-s*.png")}
            seed = 1
            sources = gen.render_views([self.by_key[key]["char"]])
            for _ in range(count):
                while seed in used:
                    seed += 1
                used.add(seed)
                torch.manual_seed(seed)
                pixels = gen.run(sources, weights, batch_size=1, sample=True)[0]
                name = f"{key}-s{seed}{suffix}.png"
                tmp = temp_path(folder / name, suffix=True)
                try:
                    tmp.write_bytes(_png_bytes(pixels))
                    os.replace(tmp, folder / name)
                finally:
                    tmp.unlink(missing_ok=True)
                made.append(f"{VARIANTS_DIR}/{name}")
        return {"glyph": key, "made": made, "variants": self.variants_of(key)}

    # -- the target font, for the in-context line -------------------------------------

    def target_font(self) -> tuple[bytes, str] | None:
        """(font file bytes, MIME type) of the manifest's target font (one face of a collection), or None."""
        if self._target_font is False:
            from fontgen.fonts import FontSpec

            text = self.manifest.get("target_font")
            self._target_font = _web_font(FontSpec.parse(text)) if text else None
        return self._target_font

    def source_font(self) -> tuple[bytes, str] | None:
        """The checkpoint's source font (it has every generated character): the page's labels use it."""
        if self._source_font is False:
            self._source_font = _web_font(self.generation().source_spec)
        return self._source_font

    def own_chars(self) -> str:
        """Some common characters the target font has itself, to set around the generated ones."""
        if self._own_chars is None:
            own = ""
            font = self.target_font()
            if font:
                try:
                    from fontTools.ttLib import TTFont

                    cmap = TTFont(io.BytesIO(font[0]), lazy=True).getBestCmap() or {}
                    generated = {g["codepoint"] for g in self.glyphs}
                    own = [ch for ch in COMMON_CHARS if ord(ch) in cmap and ord(ch) not in generated]
                    if len(own) < 12:  # a partial font: any ideographs it has
                        own += [chr(cp) for cp in sorted(cmap) if 0x4E00 <= cp <= 0x9FFF and cp not in generated
                                and chr(cp) not in own][:12 - len(own)]
                    own = "".join(own[:24])
                except Exception:  # noqa: BLE001
                    own = ""
            self._own_chars = own
        return self._own_chars


COMMON_CHARS = ("的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可里"
                "后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动"
                "两长永东西南北春夏秋冬山水风云花月")


def _web_font(spec) -> tuple[bytes, str] | None:
    """(bytes, MIME type) of one font face for @font-face (a collection's face saved on its own)."""
    if not spec.path.is_file():
        return None
    try:
        data = spec.path.read_bytes()
        if data[:4] == b"ttcf":  # browsers want one face, not a collection
            from fontTools.ttLib import TTFont

            buffer = io.BytesIO()
            TTFont(str(spec.path), fontNumber=spec.face, lazy=False).save(buffer)
            data = buffer.getvalue()
    except Exception:  # noqa: BLE001 - the page then says the font is not available
        return None
    return data, "font/otf" if data[:4] == b"OTTO" else "font/ttf"


def _variant_seed(path: Path) -> int:
    m = re.match(r"^u[0-9A-F]{4,6}-s(\d+)", path.name)
    return int(m.group(1)) if m else 0


def _variant_sort_key(path: Path):
    return (_variant_seed(path), path.name)


def _png_bytes(pixels) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------
# The HTTP server


class ReviewServer(ThreadingHTTPServer):
    """Serves one ReviewSession on 127.0.0.1 only; every request must carry the token."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, session: ReviewSession, port: int = 0, token: str | None = None, log=None):
        self.session = session
        self.token = token or secrets.token_urlsafe(24)
        self.log = log
        super().__init__(("127.0.0.1", port), ReviewHandler)

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/?token={self.token}"

    def token_ok(self, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(given.encode("utf-8", "replace"), self.token.encode("utf-8"))


class ReviewHandler(BaseHTTPRequestHandler):
    server: ReviewServer
    server_version = "fontgen-review"
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass  # the terminal stays quiet; errors are answered to the page

    # -- plumbing ---------------------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str, cache: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "private, max-age=3600" if cache else "no-store")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data) -> None:
        self._send(status, json.dumps(data, ensure_ascii=False).encode("utf-8"), "application/json; charset=utf-8")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    def _file(self, path: Path, content_type: str) -> None:
        try:
            data = path.read_bytes()
        except OSError:
            return self._error(404, f"{path.name} not found")
        self._send(200, data, content_type, cache=True)

    def _authorised(self, query: dict, allow_query: bool) -> bool:
        given = self.headers.get(TOKEN_HEADER)
        if given is None and allow_query:
            given = (query.get("token") or [None])[0]
        return self.server.token_ok(given)

    # -- routes -----------------------------------------------------------------------

    def do_GET(self):  # noqa: N802 - http.server's name
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if not self._authorised(query, allow_query=True):
            return self._error(403, "missing or wrong token: open the URL `fontgen review` printed")
        session = self.server.session
        path = unquote(url.path)
        try:
            if path in ("/", "/index.html"):
                return self._send(200, PAGE.encode("utf-8"), "text/html; charset=utf-8")
            if path == "/api/glyphs":
                return self._json(200, session.listing())
            if path == "/api/styles":
                return self._json(200, {"styles": session.styles()})
            m = re.match(r"^/glyph/(u[0-9A-F]{4,6})\.png$", path)
            if m and m.group(1) in session.by_key:
                return self._file(session.folder / f"{m.group(1)}.png", "image/png")
            m = re.match(r"^/(variants/u[0-9A-F]{4,6}-[A-Za-z0-9_.-]+\.png)$", path)
            if m and ".." not in m.group(1):
                return self._file(session.folder / m.group(1), "image/png")
            m = re.match(r"^/source/(u[0-9A-F]{4,6})\.png$", path)
            if m:
                return self._send(200, session.source_png(m.group(1)), "image/png", cache=True)
            if path in ("/font/target", "/font/source"):
                font = session.target_font() if path == "/font/target" else session.source_font()
                if font is None:
                    return self._error(404, f"the {path[6:]} font is not available")
                return self._send(200, font[0], font[1], cache=True)
        except RequestError as exc:
            return self._error(exc.status, str(exc))
        return self._error(404, f"no such page: {path}")

    def do_HEAD(self):  # noqa: N802
        return self.do_GET()

    def do_POST(self):  # noqa: N802
        url = urlsplit(self.path)
        length = self.headers.get("Content-Length")
        try:
            length = int(length) if length is not None else -1
        except ValueError:
            length = -1
        if not self._authorised({}, allow_query=False):
            self.close_connection = True
            return self._error(403, f"missing or wrong token: POST requests carry it in the {TOKEN_HEADER} header")
        if length < 0 or length > MAX_BODY:
            self.close_connection = True
            return self._error(411 if length < 0 else 413, "a JSON body with a Content-Length up to 64 KiB")
        raw = self.rfile.read(length)
        session = self.server.session
        routes = {"/api/decide": session.decide, "/api/bulk": session.bulk,
                  "/api/alternatives": session.alternatives}
        handler = routes.get(url.path)
        if handler is None:
            return self._error(404, f"no such API: {url.path}")
        if "json" not in (self.headers.get("Content-Type") or ""):
            return self._error(415, "send the body as application/json")
        try:
            body = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            return self._error(400, f"malformed JSON: {exc}")
        try:
            return self._json(200, handler(body))
        except RequestError as exc:
            return self._error(exc.status, str(exc))


def start_server(folder: Path, port: int = 0, device: str = "cpu", token: str | None = None,
                 preload: bool = True) -> tuple[ReviewServer, threading.Thread]:
    """A running server in a background thread (tests, and `serve`); stop with server.shutdown()."""
    session = ReviewSession(folder, device)
    try:
        server = ReviewServer(session, port, token)
    except OSError as exc:
        raise FontgenError(f"cannot listen on 127.0.0.1:{port} ({exc.strerror or exc}); choose another --port "
                           "or leave it out for a free one") from None
    thread = threading.Thread(target=server.serve_forever, name="fontgen-review", daemon=True)
    thread.start()
    if preload:  # load the checkpoint in the background: source glyphs and alternatives need it
        threading.Thread(target=session.preload, name="fontgen-review-load", daemon=True).start()
    return server, thread


def serve(folder: Path, port: int = 0, open_browser: bool = True, device: str = "cpu", log=print) -> ReviewCounts:
    """Run the review page until Ctrl-C; returns the counts at the end."""
    server, thread = start_server(folder, port, device)
    session = server.session
    counts = session.counts()
    log(f"reviewing {session.folder}: {counts['total']} glyphs ({counts['flagged']} flagged), "
        f"{counts['accepted']} accepted, {counts['rejected']} rejected, {counts['undecided']} undecided")
    log(f"open {server.url}")
    log("decisions are saved as you make them, in review.json; Ctrl-C stops the server")
    if open_browser:
        import webbrowser

        try:
            webbrowser.open(server.url)
        except Exception:  # noqa: BLE001 - no browser: the URL is printed
            pass
    try:
        while thread.is_alive():
            thread.join(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
    counts = session.counts()
    return ReviewCounts(accepted=counts["accepted"], rejected=counts["rejected"], undecided=counts["undecided"],
                        reviewed=(session.folder / REVIEW_NAME).is_file())


PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>fontgen review</title>
<link rel="icon" href="data:,">
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  :root {
    --bg: #f5f4f0; --card: #ffffff; --ink: #1d1d1b; --muted: #6b6a65; --line: #dedcd5;
    --accept: #2f7d4f; --accept-bg: #e6f2ea; --reject: #b23a3a; --reject-bg: #f7e5e3;
    --flag: #b7791f; --focus: #2b6cb0; --gen-tint: #fbe9e7;
  }
  * { box-sizing: border-box; }
  body { margin: 0; background: var(--bg); color: var(--ink);
         font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; }
  .han { font-family: "fontgen-source", "fontgen-target", system-ui, sans-serif; }
  header { position: sticky; top: 0; z-index: 2; background: var(--card); border-bottom: 1px solid var(--line);
           padding: 10px 18px; display: flex; flex-wrap: wrap; gap: 8px 20px; align-items: center;
           justify-content: space-between; }
  header .tools { display: flex; gap: 14px; align-items: center; }
  header h1 { font-size: 16px; margin: 0; font-weight: 600; }
  header .where { color: var(--muted); font-size: 12px; }
  .counts span { margin-right: 12px; }
  .counts b { font-variant-numeric: tabular-nums; }
  .filters button, .bulk, .panel button, .pager button {
    font: inherit; border: 1px solid var(--line); background: var(--card); color: var(--ink);
    border-radius: 6px; padding: 4px 10px; cursor: pointer; }
  .filters button.on { background: var(--ink); color: #fff; border-color: var(--ink); }
  button:disabled { opacity: .5; cursor: default; }
  main { display: grid; grid-template-columns: minmax(0, 1fr) 400px; gap: 18px; padding: 16px 18px; }
  #grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(118px, 1fr)); gap: 10px;
          align-content: start; }
  .cell { position: relative; background: var(--card); border: 1px solid var(--line); border-radius: 8px;
          padding: 8px 8px 6px; cursor: pointer; outline: none; }
  .cell .gen { display: block; width: 100%; aspect-ratio: 1; image-rendering: auto; }
  .cell .label { display: flex; gap: 6px; align-items: center; font-size: 12px; color: var(--muted);
                 margin-top: 4px; }
  .cell .src { width: 26px; height: 26px; border: 1px solid var(--line); background: #fff; border-radius: 3px; }
  .cell .label .ch { color: var(--ink); font-size: 17px; }
  .cell .label .cp { margin-left: auto; font-variant-numeric: tabular-nums; }
  .cell .mark { position: absolute; top: 6px; left: 8px; font-weight: 700; font-size: 13px; }
  .cell.accepted { border-color: var(--accept); background: var(--accept-bg); }
  .cell.accepted .mark::before { content: "\2713"; color: var(--accept); }
  .cell.rejected { border-color: var(--reject); background: var(--reject-bg); }
  .cell.rejected .mark::before { content: "\2715"; color: var(--reject); }
  .cell.rejected .gen { opacity: .35; }
  .cell .flag { position: absolute; top: 6px; right: 8px; font-size: 11px; color: var(--flag); }
  .cell.focus { box-shadow: 0 0 0 3px var(--focus); }
  .pager { grid-column: 1 / -1; display: flex; gap: 8px; align-items: center; color: var(--muted); }
  .panel { position: sticky; top: 70px; align-self: start; background: var(--card); border: 1px solid var(--line);
           border-radius: 10px; padding: 14px 16px; max-height: calc(100vh - 90px); overflow: auto; }
  .panel h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .06em; color: var(--muted);
              margin: 16px 0 8px; font-weight: 600; }
  .panel h2:first-child { margin-top: 0; }
  .big { display: flex; gap: 12px; align-items: flex-end; }
  .big .gen { width: 200px; height: 200px; border: 1px solid var(--line); border-radius: 6px; background: #fff; }
  .big .src { width: 80px; height: 80px; border: 1px solid var(--line); border-radius: 4px; background: #fff; }
  .big figcaption { font-size: 11px; color: var(--muted); text-align: center; }
  .big figure { margin: 0; }
  .ident { font-size: 15px; margin: 8px 0; }
  .ident .state { font-weight: 600; }
  .ident .state.accepted { color: var(--accept); } .ident .state.rejected { color: var(--reject); }
  .decide button { margin-right: 6px; }
  .decide .acc { border-color: var(--accept); color: var(--accept); }
  .decide .rej { border-color: var(--reject); color: var(--reject); }
  #drawings { display: flex; flex-wrap: wrap; gap: 8px; }
  .drawing { width: 72px; border: 1px solid var(--line); border-radius: 6px; padding: 3px; cursor: pointer;
             text-align: center; font-size: 11px; color: var(--muted); background: #fff; }
  .drawing img { width: 64px; height: 64px; display: block; }
  .drawing.chosen { border: 2px solid var(--focus); color: var(--ink); }
  .more { display: flex; gap: 6px; align-items: center; margin-top: 8px; flex-wrap: wrap; }
  .more select, #ctx-text { font: inherit; padding: 3px 6px; border: 1px solid var(--line); border-radius: 6px; }
  .more select { max-width: 190px; }
  .ctx #ctx-text { width: 100%; font-size: 18px; font-family: "fontgen-target", "fontgen-source", sans-serif; }
  .line { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 4px 8px; margin-top: 6px;
          font-family: "fontgen-target", "fontgen-source", serif; line-height: 1.45; word-break: break-all; }
  .line img { mix-blend-mode: multiply; }
  .line.tint img { background: var(--gen-tint); }
  .line img.rejected { opacity: .25; }
  .line .sel { outline: 1px dashed var(--focus); }
  .keys { font-size: 12px; color: var(--muted); display: grid; grid-template-columns: auto 1fr; gap: 2px 10px; }
  kbd { font: 11px ui-monospace, monospace; border: 1px solid var(--line); border-bottom-width: 2px;
        border-radius: 4px; padding: 0 4px; background: #fafaf8; color: var(--ink); }
  #status { position: fixed; bottom: 14px; left: 18px; background: var(--ink); color: #fff; padding: 6px 12px;
            border-radius: 6px; font-size: 13px; opacity: 0; transition: opacity .2s; pointer-events: none; }
  #status.show { opacity: .92; }
  #status.error { background: var(--reject); }
  .note { font-size: 12px; color: var(--muted); }
</style>
</head>
<body>
<header>
  <div><h1>fontgen review <span id="style"></span></h1><div class="where" id="folder"></div></div>
  <div class="counts" id="counts"></div>
  <div class="tools">
  <div class="filters" id="filters">
    <button data-filter="all" class="on">All</button>
    <button data-filter="undecided">Undecided</button>
    <button data-filter="flagged">Flagged</button>
    <button data-filter="rejected">Rejected</button>
    <button data-filter="accepted">Accepted</button>
  </div>
  <button class="bulk" id="accept-rest" title="accept every undecided glyph in view (Shift+A)">Accept the rest</button>
  <span class="note">keys: <kbd>&larr;</kbd><kbd>&rarr;</kbd><kbd>&uarr;</kbd><kbd>&darr;</kbd> move &middot;
    <kbd>A</kbd> accept &middot; <kbd>R</kbd> reject &middot; <kbd>N</kbd> more drawings &middot;
    <kbd>1</kbd>&hellip;<kbd>9</kbd> pick</span>
  </div>
</header>
<main>
  <section>
    <div id="grid" aria-label="glyphs"></div>
    <div class="pager" id="pager"></div>
  </section>
  <aside class="panel" id="panel">
    <h2>Selected glyph</h2>
    <div class="big">
      <figure><img class="gen" id="sel-gen" alt=""><figcaption>generated</figcaption></figure>
      <figure><img class="src" id="sel-src" alt=""><figcaption>source</figcaption></figure>
    </div>
    <div class="ident" id="sel-ident"></div>
    <div class="decide">
      <button class="acc" id="btn-accept">Accept <kbd>A</kbd></button>
      <button class="rej" id="btn-reject">Reject <kbd>R</kbd></button>
      <button id="btn-undecided">Undecided <kbd>U</kbd></button>
    </div>
    <h2>Drawings</h2>
    <div id="drawings"></div>
    <div class="more">
      <button id="btn-more">More drawings <kbd>N</kbd></button>
      <select id="more-count" title="how many"><option>2</option><option selected>3</option><option>4</option><option>6</option></select>
      <select id="more-blend" title="a seeded sample, or a blend towards another style"><option value="">sampled</option></select>
    </div>
    <div class="note" id="alt-note"></div>
    <h2>In context</h2>
    <div class="ctx">
      <input id="ctx-text" spellcheck="false" aria-label="text to set">
      <div class="line tint" id="ctx-small" style="font-size: 28px" title="the text above"></div>
      <div class="line tint" id="ctx-large" style="font-size: 44px" title="the selected glyph among the font's own"></div>
      <label class="note"><input type="checkbox" id="ctx-tint" checked> tint generated glyphs</label>
      <div class="note" id="ctx-note"></div>
    </div>
    <h2>Keys</h2>
    <div class="keys">
      <span><kbd>&larr;</kbd><kbd>&rarr;</kbd><kbd>&uarr;</kbd><kbd>&darr;</kbd></span><span>move</span>
      <span><kbd>A</kbd> / <kbd>R</kbd></span><span>accept / reject, then next</span>
      <span><kbd>U</kbd></span><span>back to undecided</span>
      <span><kbd>N</kbd></span><span>more drawings of this glyph</span>
      <span><kbd>1</kbd>&hellip;<kbd>9</kbd> / <kbd>0</kbd></span><span>pick that drawing / the original</span>
      <span><kbd>Shift</kbd>+<kbd>A</kbd></span><span>accept every undecided glyph in view</span>
      <span><kbd>PgUp</kbd> <kbd>PgDn</kbd></span><span>previous / next page</span>
    </div>
    <p class="note">Every decision is saved at once in review.json; <code>fontgen vectorize</code> leaves
      rejected glyphs out and traces the chosen drawing.</p>
  </aside>
</main>
<div id="status" role="status"></div>
<script>
"use strict";
const TOKEN = new URLSearchParams(location.search).get("token") || "";
const withToken = path => path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(TOKEN);
const PER_PAGE = 120;
const S = { glyphs: [], byKey: {}, view: [], filter: "all", focus: 0, info: null, busy: false };
const $ = id => document.getElementById(id);

async function post(path, body) {
  const response = await fetch(path, { method: "POST", body: JSON.stringify(body),
    headers: { "Content-Type": "application/json", "X-Fontgen-Token": TOKEN } });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || ("HTTP " + response.status));
  return data;
}

// Decisions go to the server one after the other, in the order they were made; the page
// shows them at once (keys can run ahead of the server) and undoes one the server refused.
let queue = Promise.resolve();
function postInOrder(path, body) {
  const done = queue.then(() => post(path, body));
  queue = done.catch(() => {});
  return done;
}

let statusTimer = null;
function say(text, error) {
  const box = $("status");
  box.textContent = text;
  box.className = "show" + (error ? " error" : "");
  clearTimeout(statusTimer);
  statusTimer = setTimeout(() => { box.className = ""; }, error ? 5000 : 1600);
}

const hex = cp => cp.toString(16).toUpperCase().padStart(4, "0");
const drawingUrl = g => withToken(g.variant ? "/" + g.variant : "/glyph/" + g.key + ".png");

function applyFilter() {
  S.view = S.glyphs.filter(g => S.filter === "all" ? true
    : S.filter === "flagged" ? g.flags.length > 0 : g.decision === S.filter).map(g => g.key);
  S.focus = Math.min(S.focus, Math.max(0, S.view.length - 1));
  document.querySelectorAll("#filters button").forEach(b => b.classList.toggle("on", b.dataset.filter === S.filter));
  renderGrid();
}

function cellClass(g) { return "cell " + g.decision + (S.view[S.focus] === g.key ? " focus" : ""); }

function renderGrid() {
  const grid = $("grid");
  grid.textContent = "";
  const page = Math.floor(S.focus / PER_PAGE);
  const start = page * PER_PAGE, stop = Math.min(S.view.length, start + PER_PAGE);
  const frag = document.createDocumentFragment();
  for (let i = start; i < stop; i++) {
    const g = S.byKey[S.view[i]];
    const cell = document.createElement("div");
    cell.className = cellClass(g);
    cell.dataset.key = g.key;
    cell.dataset.index = i;
    cell.title = g.char + " U+" + hex(g.codepoint) + (g.flags.length ? " (flagged: " + g.flags.join(", ") + ")" : "");
    cell.innerHTML = '<span class="mark"></span><img class="gen" loading="lazy" alt="">' +
      (g.flags.length ? '<span class="flag">&#9873; ' + g.flags.join(", ") + "</span>" : "") +
      '<div class="label"><img class="src" loading="lazy" alt="" title="source glyph">' +
      '<span class="ch han"></span><span class="cp"></span></div>';
    cell.querySelector(".gen").src = drawingUrl(g);
    const src = cell.querySelector(".src");
    src.src = withToken("/source/" + g.key + ".png");
    src.onerror = () => { src.style.display = "none"; };
    cell.querySelector(".ch").textContent = g.char;
    cell.querySelector(".cp").textContent = "U+" + hex(g.codepoint);
    cell.addEventListener("click", () => { S.focus = i; showFocus(); });
    frag.appendChild(cell);
  }
  grid.appendChild(frag);
  if (!S.view.length) grid.innerHTML = '<p class="note">No glyphs in this view.</p>';
  const pages = Math.max(1, Math.ceil(S.view.length / PER_PAGE));
  $("pager").innerHTML = pages > 1 ? '<button id="prev">&larr; page</button> page ' + (page + 1) + " of " + pages +
    ' <button id="next">page &rarr;</button>' : "";
  if (pages > 1) {
    $("prev").onclick = () => move(-PER_PAGE);
    $("next").onclick = () => move(PER_PAGE);
  }
  showPanel();
}

function updateCell(key) {
  const g = S.byKey[key];
  const cell = document.querySelector('.cell[data-key="' + key + '"]');
  if (cell) {
    cell.className = cellClass(g);
    const img = cell.querySelector(".gen");
    if (img.getAttribute("src") !== drawingUrl(g)) img.src = drawingUrl(g);
  }
}

function renderCounts() {
  const c = { total: S.glyphs.length, flagged: 0, accepted: 0, rejected: 0, undecided: 0 };
  S.glyphs.forEach(g => { c[g.decision]++; if (g.flags.length) c.flagged++; });
  $("counts").innerHTML = "<span><b>" + c.total + "</b> glyphs</span><span>&#9873; <b>" + c.flagged +
    "</b> flagged</span><span style=\"color:var(--accept)\">&#10003; <b>" + c.accepted +
    "</b> accepted</span><span style=\"color:var(--reject)\">&#10005; <b>" + c.rejected +
    "</b> rejected</span><span><b>" + c.undecided + "</b> undecided</span>";
}

function showFocus() {
  const page = Math.floor(S.focus / PER_PAGE);
  const shown = $("grid").querySelector(".cell");
  if (!shown || Math.floor(Number(shown.dataset.index) / PER_PAGE) !== page) return renderGrid();
  document.querySelectorAll(".cell.focus").forEach(c => c.classList.remove("focus"));
  const cell = document.querySelector('.cell[data-index="' + S.focus + '"]');
  if (cell) { cell.classList.add("focus"); cell.scrollIntoView({ block: "nearest" }); }
  showPanel();
}

function focused() { return S.byKey[S.view[S.focus]]; }

function showPanel() {
  const g = focused();
  if (!g) { $("sel-ident").textContent = "No glyph selected"; return; }
  $("sel-gen").src = drawingUrl(g);
  $("sel-src").src = withToken("/source/" + g.key + ".png");
  $("sel-ident").innerHTML = '<span class="han" style="font-size:22px"></span> U+' + hex(g.codepoint) +
    ' &middot; <span class="state ' + g.decision + '">' + g.decision + "</span>" +
    (g.flags.length ? ' &middot; <span style="color:var(--flag)">flagged: ' + g.flags.join(", ") + "</span>" : "");
  $("sel-ident").firstChild.textContent = g.char;
  const box = $("drawings");
  box.textContent = "";
  [null].concat(g.variants).forEach((variant, n) => {
    const d = document.createElement("div");
    d.className = "drawing" + ((g.variant || null) === variant ? " chosen" : "");
    d.dataset.variant = variant || "";
    d.innerHTML = "<img alt=\"\"><span></span>";
    d.querySelector("img").src = withToken(variant ? "/" + variant : "/glyph/" + g.key + ".png");
    d.querySelector("span").textContent = (n < 10 ? n + " " : "") + (variant ? variant.split("-").slice(1).join("-").replace(".png", "") : "original");
    d.onclick = () => pick(n);
    box.appendChild(d);
  });
  renderContext();
}

function refresh(g) {
  updateCell(g.key); renderCounts();
  if (focused() === g) showPanel();
}

async function send(g, change, message) {
  const before = { decision: g.decision, variant: g.variant };
  Object.assign(g, change);
  refresh(g);
  try {
    const r = await postInOrder("/api/decide", Object.assign({ glyph: g.key }, change));
    g.decision = r.decision; g.variant = r.variant;
    refresh(g);
    say(message);
  } catch (e) {
    Object.assign(g, before);
    refresh(g);
    say(g.char + " not saved: " + e.message, true);
  }
}

function decide(decision, advance) {
  const g = focused();
  if (!g) return;
  if (advance && S.focus < S.view.length - 1) { S.focus++; showFocus(); }
  send(g, { decision }, g.char + " " + decision);
}

function pick(n) {
  const g = focused();
  if (!g || n > g.variants.length) return;
  const variant = n === 0 ? null : g.variants[n - 1];
  send(g, { decision: "accepted", variant }, g.char + ": " + (variant ? "drawing " + n : "the original") + " accepted");
}

async function more() {
  const g = focused();
  if (!g || S.busy) return;
  const body = { glyph: g.key, count: Number($("more-count").value) };
  const blend = $("more-blend").value;
  if (blend !== "") body.blend = { style: Number(blend), amount: 0.3 };
  S.busy = true; $("btn-more").disabled = true; say("drawing " + body.count + " more of " + g.char + " ...");
  try {
    const r = await post("/api/alternatives", body);
    g.variants = r.variants;
    if (focused() === g) showPanel();
    say(r.made.length + " new drawings of " + g.char + " (keys 1-" + Math.min(9, g.variants.length) + ")");
  } catch (e) { say("no drawings: " + e.message, true); }
  S.busy = false; $("btn-more").disabled = false;
}

async function acceptRest() {
  const keys = S.view.filter(k => S.byKey[k].decision === "undecided");
  if (!keys.length) return say("nothing undecided in view");
  try {
    const r = await postInOrder("/api/bulk", { decision: "accepted", glyphs: keys });
    r.changed.forEach(k => { S.byKey[k].decision = "accepted"; updateCell(k); });
    renderCounts(); showPanel();
    say(r.changed.length + " glyphs accepted");
  } catch (e) { say("not saved: " + e.message, true); }
}

function move(delta) {
  if (!S.view.length) return;
  S.focus = Math.max(0, Math.min(S.view.length - 1, S.focus + delta));
  showFocus();
}

function columns() {
  const cells = $("grid").querySelectorAll(".cell");
  if (cells.length < 2) return 1;
  const top = cells[0].offsetTop;
  let n = 0;
  while (n < cells.length && cells[n].offsetTop === top) n++;
  return Math.max(1, n);
}

// In context: generated glyphs as images placed on the em box the manifest records, so the
// font's own glyphs (via @font-face) and the generated ones share size and baseline.
function glyphImage(g, selected) {
  const geo = S.info.geometry, ppem = geo.scale * geo.units_per_em;
  const img = document.createElement("img");
  const w = geo.image_size / ppem;
  img.src = drawingUrl(g);
  img.alt = g.char;
  img.className = (g.decision === "rejected" ? "rejected" : "") + (selected ? " sel" : "");
  img.style.width = w + "em";
  img.style.height = w + "em";
  img.style.verticalAlign = (-(geo.image_size - geo.baseline_y) / ppem) + "em";
  img.style.marginLeft = (-geo.origin_x / ppem) + "em";
  img.style.marginRight = (1 - w + geo.origin_x / ppem) + "em";
  img.title = g.char + " U+" + hex(g.codepoint) + " (generated, " + g.decision + ")";
  return img;
}

function setLine(box, text) {
  box.textContent = "";
  const sel = focused();
  for (const ch of text) {
    const g = S.byKey["u" + hex(ch.codePointAt(0))];
    if (g) box.appendChild(glyphImage(g, sel && g.key === sel.key));
    else box.appendChild(document.createTextNode(ch));
  }
}

function renderContext() {
  if (!S.info) return;
  const g = focused();
  const own = S.info.own_chars || "";
  setLine($("ctx-small"), $("ctx-text").value);
  // display size: the selected glyph between the font's own glyphs
  setLine($("ctx-large"), g ? own.slice(0, 2) + g.char + own.slice(2, 4) + g.char + own.slice(4, 5) : "");
}

document.addEventListener("keydown", e => {
  const tag = (e.target.tagName || "").toLowerCase();
  if (tag === "input" || tag === "select" || tag === "textarea") {
    if (e.key === "Escape") e.target.blur();
    return;
  }
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const key = e.key;
  let handled = true;
  if (key === "ArrowRight") move(1);
  else if (key === "ArrowLeft") move(-1);
  else if (key === "ArrowDown") move(columns());
  else if (key === "ArrowUp") move(-columns());
  else if (key === "PageDown") move(PER_PAGE);
  else if (key === "PageUp") move(-PER_PAGE);
  else if (key === "Home") move(-S.view.length);
  else if (key === "End") move(S.view.length);
  else if (key === "A") acceptRest();
  else if (key === "a") decide("accepted", true);
  else if (key === "r" || key === "x") decide("rejected", true);
  else if (key === "u") decide("undecided", false);
  else if (key === "n") more();
  else if (/^[0-9]$/.test(key)) pick(Number(key));
  else handled = false;
  if (handled) e.preventDefault();
});

$("filters").addEventListener("click", e => {
  if (e.target.dataset.filter) { S.filter = e.target.dataset.filter; S.focus = 0; applyFilter(); }
});
$("accept-rest").onclick = acceptRest;
$("btn-accept").onclick = () => decide("accepted", true);
$("btn-reject").onclick = () => decide("rejected", true);
$("btn-undecided").onclick = () => decide("undecided", false);
$("btn-more").onclick = more;
$("ctx-text").addEventListener("input", renderContext);
$("ctx-tint").addEventListener("change", e => {
  document.querySelectorAll(".line").forEach(l => l.classList.toggle("tint", e.target.checked));
});

async function load() {
  const response = await fetch(withToken("/api/glyphs"));
  if (!response.ok) {
    document.body.innerHTML = "<p style=\"padding:20px\">This page needs the address <code>fontgen review</code> " +
      "printed (with its token). " + response.status + "</p>";
    return;
  }
  const info = await response.json();
  S.info = info;
  S.glyphs = info.glyphs;
  S.glyphs.forEach(g => { S.byKey[g.key] = g; });
  const style = info.style || {};
  $("style").textContent = "\u00b7 style " + style.id + " " + (style.name || "");
  $("folder").textContent = info.folder;
  renderCounts();
  const generated = S.glyphs.filter(g => g.decision !== "rejected").slice(0, 6).map(g => g.char);
  const own = info.own_chars || "";
  let text = "";
  for (let i = 0; i < Math.max(generated.length, 4); i++) text += (own[i] || "") + (generated[i] || "");
  $("ctx-text").value = text;
  new FontFace("fontgen-source", "url(" + withToken("/font/source") + ")").load()
    .then(f => document.fonts.add(f)).catch(() => {});
  if (info.target_font) {
    const face = new FontFace("fontgen-target", "url(" + withToken("/font/target") + ")");
    face.load().then(f => { document.fonts.add(f); $("ctx-note").textContent = "Own glyphs: " + info.target_font; })
      .catch(() => { $("ctx-note").textContent = "The target font " + info.target_font + " could not be loaded; " +
        "its own glyphs show in a fallback font."; });
  }
  if (!info.alternatives.available) {
    $("btn-more").disabled = true;
    $("alt-note").textContent = "No alternatives: the checkpoint " + info.alternatives.checkpoint + " is not there.";
  } else {
    fetch(withToken("/api/styles")).then(r => r.ok ? r.json() : { styles: [] }).then(r => {
      const select = $("more-blend");
      r.styles.filter(s => s.id !== style.id).forEach(s => {
        const o = document.createElement("option");
        o.value = s.id; o.textContent = "30% towards " + s.id + " " + s.name;
        select.appendChild(o);
      });
    });
  }
  applyFilter();
  document.body.dataset.ready = "1";
}
load();
</script>
</body>
</html>
"""
