"""Build the documentation site and README.md offline, from the same configuration Quarto uses.

    python tools/docs.py site [--out _docs]    # the HTML site (home page, one page per notebook, navigation)
    python tools/docs.py readme [--check]      # README.md from nbs/index.ipynb (--check: fail if it differs)

Both start with nbdev's own notebook processing (`nbdev.serve.proc_nbs` for the site, the same processors for the
README), which renders `show_doc` into the API reference and strips directives. The site's title and description
come from the top-level `_quarto.yml` (the file `nbs/_quarto.yml` links to), and so does the sidebar: its parts are
the sections of `website.sidebar.contents` there, whose globs Quarto expands too. Every page gets the sidebar by
part, a search box (plain JavaScript over `search.json`, written at build time), an "On this page" list and
previous/next links; widget outputs become static (the clip explorer a slider over pre-rendered frames). The site
needs no network: MathJax and the scripts are local copies. With Quarto installed, `nbdev_docs` builds the full
Quarto site instead, from the same `_quarto.yml`.
"""
from __future__ import annotations

import argparse
import fnmatch
import html
import io
import json
import os
import re
import shutil
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
QUARTO_YML = ROOT / "_quarto.yml"
ATTR_RE = re.compile(r"\{(?:target|style|\.|#)[^{}\n]*\}")  # Quarto/pandoc attribute blocks mistune cannot read
DIRECTIVE_RE = re.compile(r"^\s*#\|\s*([\w-]+)\s*:?\s*(.*)$")


def page_name(nb: Path) -> str:
    "The HTML file a notebook becomes: '01_fcc.ipynb' -> 'fcc.html' (Quarto's rule for nbdev sites)."
    return re.sub(r"^\d+[a-z]?_", "", nb.stem) + ".html"


def site_config() -> dict:
    "Title and description of the site, read from the top-level _quarto.yml."
    cfg = yaml.safe_load(QUARTO_YML.read_text())
    web = cfg.get("website", {})
    return {"title": web.get("title", "docs"), "description": web.get("description", "")}


def _chdir_root():
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))


def _doc_host_prefix() -> str:
    from nbdev.config import get_config
    cfg = get_config()
    return f"{cfg.doc_host}{cfg.doc_baseurl}".rstrip("/") + "/"


def notebooks() -> list[str]:
    "The notebooks of the site, discovered in nbs/ (private `_x` and hidden `.x` files left out), index first."
    return sorted((p.name for p in (ROOT / "nbs").glob("*.ipynb") if not p.name.startswith(("_", "."))), key=_nb_key)


def _nb_key(name: str) -> str:
    "nbdev's sidebar order: the index first, then by file name."
    return "" if name.startswith("index.") else name


def expand_braces(pattern: str) -> list[str]:
    "Quarto's `{a,b}` glob alternatives as plain fnmatch patterns: '{09,1[0-9]}*' -> ['09*', '1[0-9]*']."
    m = re.search(r"\{([^{}]*)\}", pattern)
    if not m: return [pattern]
    return [q for alt in m.group(1).split(",") for q in expand_braces(pattern[:m.start()] + alt + pattern[m.end():])]


def _matches(name: str, contents) -> bool:
    "Does a sidebar `contents` entry (a glob, a file, or a list of them) take the notebook `name`?"
    items = [contents] if isinstance(contents, str) else list(contents or [])
    pats = [it if isinstance(it, str) else str(it.get("href", "")) for it in items]
    return any(fnmatch.fnmatchcase(name, q) for p in pats for q in expand_braces(p.strip().lstrip("/")))


def _prefix(name: str) -> int | None:
    m = re.match(r"(\d+)", name)
    return int(m.group(1)) if m else None


def sidebar_parts(names: list[str] | None = None) -> list[tuple[str, list[str]]]:
    """The parts of the sidebar as (title, notebooks), from the sections of website.sidebar.contents in _quarto.yml.

    Each notebook goes to the first section whose globs match it. One that no glob matches joins the part of the
    nearest lower-numbered chapter (its numeric prefix decides), or a last part "More" if it has no number."""
    names = notebooks() if names is None else names
    side = yaml.safe_load(QUARTO_YML.read_text()).get("website", {}).get("sidebar", {})
    sections = side.get("contents") or []
    if not isinstance(sections, list) or not sections:
        raise ValueError(f"{QUARTO_YML.name}: website.sidebar.contents must list the parts of the site")
    parts = [("", s, []) if isinstance(s, str) else (str(s.get("section", "")), s.get("contents", []), []) for s in sections]
    placed, left = {}, []
    for n in names:
        i = next((i for i, (_, c, _) in enumerate(parts) if _matches(n, c)), None)
        if i is None: left.append(n)
        else: parts[i][2].append(n); placed[n] = i
    more = []
    for n in left:
        k = _prefix(n)
        lower = [(_prefix(m), i) for m, i in placed.items() if k is not None and _prefix(m) is not None and _prefix(m) <= k]
        (parts[max(lower)[1]][2] if lower else more).append(n)
        print(f"docs: {n} matches no section of website.sidebar in {QUARTO_YML.name}; "
              f"placed under {parts[max(lower)[1]][0] if lower else 'More'} (Quarto will not list it)", file=sys.stderr)
    out = [(t, sorted(ns, key=_nb_key)) for t, _, ns in parts if ns]
    return out + [("More", sorted(more, key=_nb_key))] if more else out


def sidebar_order() -> list[str]:
    "Notebook file names in sidebar order (index first): the parts of `sidebar_parts`, one after the other."
    return [n for _, ns in sidebar_parts() for n in ns]


def _frontmatter(nb) -> tuple[dict, int]:
    "The YAML front matter nbdev's processing puts in the first raw cell, and that cell's index."
    for i, c in enumerate(nb.cells):
        if c.cell_type == "raw" and c.source.lstrip().startswith("---"):
            return yaml.safe_load(c.source.strip().strip("-")) or {}, i
    return {}, -1


def _clean_cells(nb, prefix: str, links: dict[str, str]):
    "Turn a processed notebook into plain nbformat cells: title, hidden inputs, offline links."
    import nbformat
    meta, idx = _frontmatter(nb)
    cells = []
    for i, c in enumerate(nb.cells):
        if i == idx: continue
        if c.cell_type == "markdown" and "THIS FILE WAS AUTOGENERATED" in c.source: continue
        src_lines = c.source.splitlines()
        directives = {}
        while src_lines and DIRECTIVE_RE.match(src_lines[0]):
            k, v = DIRECTIVE_RE.match(src_lines[0]).groups()
            directives[k] = v.strip().lower()
            src_lines.pop(0)
        if directives.get("include") == "false": continue
        c.source = "\n".join(src_lines)
        if c.cell_type == "code":
            if directives.get("echo") == "false":
                c.metadata["transient"] = {"remove_source": True}
                c.setdefault("metadata", {}).setdefault("tags", []).append("remove_input")
            for o in c.get("outputs", []):
                data = o.get("data", {})
                if "text/markdown" in data:
                    data["text/markdown"] = _offline(data["text/markdown"], prefix, links)
                    data.pop("text/plain", None)
        else:
            c.source = _offline(c.source, prefix, links)
        cells.append(c)
    head = f"# {meta.get('title', '')}\n"
    if meta.get("description"): head += f"\n> {meta['description']}\n"
    nb.cells = [nbformat.v4.new_markdown_cell(head)] + cells
    return meta


def _offline(text: str, prefix: str, links: dict[str, str]) -> str:
    text = ATTR_RE.sub("", text).replace(prefix, "")
    for nbname, page in links.items(): text = text.replace(f"]({nbname}", f"]({page}")
    return text


ASSETS = Path(__file__).resolve().parent / "site_assets"     # site.css and site.js, copied into <site>/assets/
HEADINGS = {"h1", "h2", "h3"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
BLOCKS = {"p", "div", "li", "ul", "ol", "pre", "table", "tr", "td", "th", "blockquote", "br", "hr", "dd", "dt", "details",
          "summary", *HEADINGS}    # text on either side of these is two words
SECTION_TEXT_MAX = 20000    # characters of prose kept per section in the search index (a guard; none is longer today)


class PageText(HTMLParser):
    """The headings (h1-h3 with an id) of an exported page and the prose under each.

    Prose is the text of rendered markdown: markdown cells and markdown outputs such as show_doc's; code, plain
    outputs, scripts and the pilcrow anchor links are left out. `sections`: [{'id', 'level', 'heading', 'text'}]."""
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.sections = [dict(id="", level=0, heading=[], text=[])]
        self.stack: list[tuple[str, str]] = []       # (tag, role): role 'md' (prose), 'skip' or ''
        self.heading: str | None = None

    def handle_starttag(self, tag, attrs):
        if tag in BLOCKS: self.handle_data(" ")
        if tag in VOID: return
        a = dict(attrs)
        cls = (a.get("class") or "").split()
        role = "skip" if tag in ("script", "style") or "anchor-link" in cls else "md" if "jp-RenderedMarkdown" in cls else ""
        in_md = any(r == "md" for _, r in self.stack)
        self.stack.append((tag, role))
        if tag in HEADINGS and a.get("id") and in_md and self.heading is None:
            self.sections.append(dict(id=a["id"], level=int(tag[1]), heading=[], text=[]))
            self.heading = tag

    def handle_endtag(self, tag):
        if tag in BLOCKS: self.handle_data(" ")
        if tag in VOID: return
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break
        if tag == self.heading: self.heading = None

    def handle_data(self, data):
        roles = {r for _, r in self.stack}
        if "skip" in roles or "md" not in roles: return
        self.sections[-1]["heading" if self.heading else "text"].append(data)

    def result(self) -> list[dict]:
        out = []
        for s in self.sections:
            heading = " ".join("".join(s["heading"]).split())
            text = " ".join("".join(s["text"]).split())
            if heading or text: out.append(dict(id=s["id"], level=s["level"], heading=heading, text=text))
        return out


def page_sections(body: str) -> list[dict]:
    "Headings and prose of an exported page (see `PageText`)."
    p = PageText()
    p.feed(body)
    p.close()
    return p.result()


def _toc(sections: list[dict]) -> str:
    "The 'On this page' list: the page's h2 headings, each with its h3 headings nested under it."
    items, open_sub = [], False
    for s in sections:
        if s["level"] not in (2, 3) or not s["id"]: continue
        link = f'<a href="#{html.escape(s["id"])}">{html.escape(s["heading"])}</a>'
        if s["level"] == 2:
            if open_sub: items.append("</ul></li>"); open_sub = False
            elif items: items.append("</li>")
            items.append(f"<li>{link}")
        else:
            if not open_sub: items.append("<ul>" if items else "<li><ul>"); open_sub = True
            items.append(f"<li>{link}</li>")
    if not items: return ""
    items.append("</ul></li>" if open_sub else "</li>")
    return (f'<nav class="mol-toc" id="toc" aria-label="On this page"><p class="mol-toc-title">On this page</p>'
            f'<ul>{"".join(items)}</ul></nav>')


def _pager(prev: tuple[str, str] | None, nxt: tuple[str, str] | None) -> str:
    "Previous/next links at the bottom of a page, in sidebar order."
    links = [f'<a class="{cls}" rel="{cls}" href="{to[0]}"><span class="dir">{label}</span>{html.escape(to[1])}</a>'
             for cls, label, to in (("prev", "&larr; Previous", prev), ("next", "Next &rarr;", nxt)) if to]
    return f'<nav class="mol-pager" aria-label="Previous and next page">{"".join(links)}</nav>'


def _nav(parts: list[tuple[str, list[tuple[str, str]]]], active: str, cfg: dict) -> str:
    "The sidebar: site title, search box, then each part's title and its pages."
    groups = []
    for title, pages in parts:
        items = "".join(f'<li><a href="{p}"{" class=active" if p == active else ""}>{html.escape(t)}</a></li>' for p, t in pages)
        groups.append((f'<p class="mol-part">{html.escape(title)}</p>' if title else "") + f"<ul>{items}</ul>")
    search = ('<div class="mol-search"><input type="search" id="mol-search" placeholder="Search (press /)" '
              'aria-label="Search the site" autocomplete="off"></div>')
    return (f'<nav class="mol-nav" id="sidebar"><a class="site-title" href="index.html">{html.escape(cfg["title"])}</a>'
            f'<div class="site-desc">{html.escape(cfg["description"])}</div>{search}{"".join(groups)}</nav>'
            f'<div id="mol-search-results" hidden></div>')


MATHJAX_URL = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"  # a local copy: the site works offline
# The local MathJax has the STIX-Web fonts only: say so, or it first asks for the TeX fonts it does not have
MATHJAX_FONTS = ('<script type="text/x-mathjax-config">MathJax.Hub.Config({"HTML-CSS": {availableFonts: [], '
                 'preferredFont: null, webFont: "STIX-Web", imageFont: null}});</script>')
REMOTE_SCRIPT_RE = re.compile(r'<script\s+src="https?://[^"]*"\s*>\s*</script>\s*')  # nbconvert's require.js from a CDN


def _copy_mathjax(site: Path):
    "Copy MathJax (shipped by the jupyter-server-mathjax package) into the site, so equations render offline."
    import jupyter_server_mathjax
    src = Path(jupyter_server_mathjax.__file__).parent / "static"
    shutil.copytree(src, site / "mathjax")


def _decorate(body: str, cfg: dict, nav: str, sections: list[dict], prev, nxt) -> str:
    "An exported page with the site around it: assets, sidebar, on-page contents, previous/next; no remote scripts."
    body = REMOTE_SCRIPT_RE.sub("", body)
    head = '<link rel="stylesheet" href="assets/site.css"><script src="assets/site.js" defer></script>' + MATHJAX_FONTS
    body = body.replace("</head>", head + "</head>", 1)
    body = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + nav + '<div class="mol-main">', body, count=1)
    cells = [m.start() for m in re.finditer(r'<div\s+class="jp-Cell[ "]', body)]
    at = cells[1] if len(cells) > 1 else body.index('<div class="mol-main">') + len('<div class="mol-main">')
    body = body[:at] + _toc(sections) + body[at:]      # after the title cell (a side column on wide screens)
    body = body.replace("</body>", _pager(prev, nxt) + "</div></body>", 1)
    return body.replace("<title>", f"<title>{html.escape(cfg['title'])}: ", 1)


# ---- static versions of the notebook widgets -------------------------------------------------------------------
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = ('<p class="mol-widget-note">[An interactive ipywidgets demo: its controls run in Jupyter or Voila, '
               'not on this static page.]</p>')
CLIP_EXPLORER_RE = re.compile(r"\bclip explorer\b", re.I)   # the h2 section the clip explorer widget sits in


def clip_explorer_frames(folder: Path, model_name: str = "synthetic-small", max_width: int = 720) -> dict:
    """Render the clip explorer of the widgets chapter, frame pair by frame pair, to small PNGs in `folder`.

    The model is the shipped trained one and the clip the first of its held-out subject (fresh videos, never seen in
    training). Each picture is the widget's own (its `view` after moving the pair slider), scaled to at most
    `max_width` pixels and stored with a 256-colour palette; each caption is the widget's line of numbers."""
    import torch
    from PIL import Image
    from mol_edu.pretrained import held_out_corpus, load_pretrained
    from mol_edu.widgets import ClipExplorer
    torch.set_num_threads(min(2, torch.get_num_threads()))
    model, card = load_pretrained(model_name, "cpu")
    sample = held_out_corpus(card, seed=1)[0]
    ex = ClipExplorer([sample], model, card.model["classes"])
    folder.mkdir(parents=True, exist_ok=True)
    frames = []
    for k in range(ex.controls["pair"].min, ex.controls["pair"].max + 1):
        ex.set(pair=k)
        im = Image.open(io.BytesIO(ex.view.value)).convert("RGB")
        if im.width > max_width: im = im.resize((max_width, round(im.height * max_width / im.width)), Image.LANCZOS)
        im.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(folder / f"pair_{k}.png", optimize=True)
        numbers = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", ex.info.value)).split())
        frames.append(dict(file=f"pair_{k}.png", caption=f"pair {k} (frame {k} to frame {k + 1}): {numbers}"))
    return dict(frames=frames, model=model_name, subject=str(sample["subject"]), video=str(sample["video"]),
                n_frames=len(ex.samples[0]["frames"]))


def static_clip_explorer_html(info: dict, prefix: str) -> str:
    "The static clip explorer: a range input over the pre-rendered pairs, the image and its caption (site.js)."
    frames = [dict(src=f"{prefix}/{f['file']}", caption=f["caption"]) for f in info["frames"]]
    first = frames[0]
    return (f'<div class="mol-static-explorer" id="static-clip-explorer" data-frames="{html.escape(json.dumps(frames))}">'
            f'<p><b>Clip explorer</b>, static version: the trained model <code>{html.escape(info["model"])}</code> on '
            f'video <code>{html.escape(info["video"])}</code> of held-out subject <code>{html.escape(info["subject"])}</code>, '
            f'{info["n_frames"]} frames. Move the slider to step through the frame pairs.</p>'
            f'<div class="mol-se-controls"><label for="clip-explorer-pair">pair k</label>'
            f'<input type="range" id="clip-explorer-pair" min="0" max="{len(frames) - 1}" step="1" value="0">'
            f'<span class="mol-se-caption">{html.escape(first["caption"])}</span></div>'
            f'<img id="clip-explorer-image" src="{first["src"]}" alt="{html.escape(first["caption"])}"></div>')


def _widget_cells(nb) -> list[tuple[str, object, list]]:
    """The code cells that show an ipywidgets view, as (h2 section, cell, widget outputs): a cell with a widget
    output, or one whose last line ends in `.widget` (a notebook saved without outputs)."""
    found, section = [], ""
    for c in nb.cells:
        if c.cell_type == "markdown":
            heads = re.findall(r"^##\s+(.*)$", c.source, re.M)
            if heads: section = heads[-1]
            continue
        if c.cell_type != "code": continue
        outs = [o for o in c.get("outputs", []) if WIDGET_MIME in o.get("data", {})]
        lines = [ln for ln in c.source.splitlines() if ln.strip()]
        if outs or (lines and re.search(r"\.widget\s*$", lines[-1])): found.append((section, c, outs))
    return found


def static_widgets(nbs: dict, site: Path) -> str | None:
    """Give the widget cells of the notebooks a static output: the clip explorer its static version (PNGs under
    <site>/static/clip_explorer), every other widget a one-line note. Returns the notebook given the explorer."""
    import nbformat
    target = None
    for name, nb in nbs.items():
        for section, cell, outs in _widget_cells(nb):
            if target is None and CLIP_EXPLORER_RE.search(section):
                info = clip_explorer_frames(site / "static" / "clip_explorer")
                shown, target = static_clip_explorer_html(info, "static/clip_explorer"), name
            else:
                shown = WIDGET_NOTE
            if outs:
                for i, o in enumerate(outs): o["data"] = {"text/html": shown if i == 0 else WIDGET_NOTE}
            else:
                cell.outputs = [nbformat.v4.new_output("display_data", data={"text/html": shown})]
        nb.metadata.pop("widgets", None)      # no widget state: nbconvert then loads no widget manager from a CDN
    if target is None: print("docs: no notebook shows a widget under a '## ... Clip explorer' heading", file=sys.stderr)
    return target


def write_search_index(site: Path, pages: list[dict]) -> Path:
    "search.json (page, title, part, sections with anchor, heading and prose) and search_index.js, the same for file://."
    data = {"pages": [dict(href=p["href"], title=p["title"], part=p["part"],
                           sections=[dict(id=s["id"], heading=s["heading"] or p["title"], text=s["text"][:SECTION_TEXT_MAX])
                                     for s in p["sections"]]) for p in pages]}
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    (site / "search.json").write_text(text, encoding="utf-8")
    (site / "search_index.js").write_text("window.MOL_SEARCH_INDEX = " + text.replace("</", "<\\/") + ";\n", encoding="utf-8")
    return site / "search.json"


def build_site(out: Path = ROOT / "_docs", n_workers: int = 1) -> list[Path]:
    "Build the offline HTML site into `out`; return the pages written."
    _chdir_root()
    from nbdev.quarto import refresh_quarto_yml
    from nbdev.serve import proc_nbs

    cfg = site_config()
    refresh_quarto_yml()
    parts = sidebar_parts()
    order = [n for _, ns in parts for n in ns]
    _drop_stale(ROOT / "_proc", order)
    try: proc = proc_nbs(n_workers=n_workers)
    except Exception as e:   # nbdev runs only some cells, so a notebook that runs in Jupyter can still fail here
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise RuntimeError(f"docs: nbdev could not process the notebooks ({first}); nbdev runs only the exported "
                           "cells, the cells with an import and the show_doc cells, so a cell with an import must not "
                           "use names that other cells define: give its imports a cell of their own") from e
    nbs, titles = _read_processed(proc, order)
    tmp = Path(tempfile.mkdtemp(dir=ROOT, prefix=".docs-"))
    try:
        static_widgets(nbs, tmp)
        written = _write_pages(tmp, out, nbs, titles, parts, cfg)
        _copy_mathjax(tmp)
        shutil.copytree(ASSETS, tmp / "assets")
        tmp.chmod(0o755)
        if out.exists(): shutil.rmtree(out)
        os.replace(tmp, out)  # the whole site appears at once
    finally:
        if tmp.exists(): shutil.rmtree(tmp, ignore_errors=True)
    return written


def _drop_stale(cache: Path, order: list[str]):
    """Delete nbdev's processed copy of every notebook edited since it was made. nbdev skips a notebook older than the
    cache folder itself, so after a build that failed half-way an edited notebook would keep its stale copy."""
    for name in order:
        src, done = ROOT / "nbs" / name, cache / name
        if done.exists() and done.stat().st_mtime < src.stat().st_mtime: done.unlink()


def _read_processed(proc: Path, order: list[str]) -> tuple[dict, dict]:
    "The notebooks as nbdev processed them, cleaned for the site, and their titles: ({name: nb}, {name: title})."
    import nbformat
    prefix = _doc_host_prefix()
    links = {name: page_name(Path(name)) for name in order}
    nbs, titles = {}, {}
    for name in order:
        nb = nbformat.read(proc / name, as_version=4)
        titles[name] = _clean_cells(nb, prefix, links).get("title", Path(name).stem)
        nbs[name] = nb
    return nbs, titles


def _write_pages(tmp: Path, out: Path, nbs: dict, titles: dict, parts, cfg: dict) -> list[Path]:
    "Export every notebook to HTML with the site around it, and the search index over all of them."
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor
    exporter = HTMLExporter(template_name="lab", embed_images=True, exclude_input_prompt=True,
                            exclude_output_prompt=True, mathjax_url=MATHJAX_URL)
    exporter.register_preprocessor(TagRemovePreprocessor(remove_input_tags={"remove_input"}, enabled=True), enabled=True)
    nav_parts = [(t, [(page_name(Path(n)), titles[n]) for n in ns]) for t, ns in parts]
    flat = [(n, page_name(Path(n)), titles[n], t) for t, ns in parts for n in ns]
    written, index = [], []
    for i, (name, page, title, part) in enumerate(flat):
        body, _ = exporter.from_notebook_node(nbs[name], resources={"metadata": {"name": title}})
        sections = page_sections(body)
        prev = flat[i - 1][1:3] if i > 0 else None
        nxt = flat[i + 1][1:3] if i + 1 < len(flat) else None
        body = _decorate(body, cfg, _nav(nav_parts, page, cfg), sections, prev, nxt)
        (tmp / page).write_text(body, encoding="utf-8")
        written.append(out / page)
        index.append(dict(href=page, title=title, part=part, sections=sections))
    write_search_index(tmp, index)
    return written


README_FILES = "README_files"   # the README's figures, extracted from the index notebook's outputs


def render_readme(with_files: bool = False):
    """README.md text from nbs/index.ipynb, through nbdev's processors and nbconvert's markdown exporter; with
    `with_files`, (text, {relative path: bytes}) of the figures it links (under README_files/). Chapter links are
    made relative to the repository root (nbs/...), so they work on a code host as in Jupyter."""
    _chdir_root()
    import nbformat
    from execnb.nbio import read_nb, write_nb
    from nbconvert import MarkdownExporter
    from nbconvert.preprocessors import TagRemovePreprocessor
    from nbdev.processors import FilterDefaults

    nb = read_nb(ROOT / "nbs" / "index.ipynb")
    os.environ["IN_TEST"] = "1"
    FilterDefaults()(nb)
    with tempfile.TemporaryDirectory() as d:
        write_nb(nb, Path(d) / "index.ipynb")
        nb = nbformat.read(Path(d) / "index.ipynb", as_version=4)
    _clean_cells(nb, _doc_host_prefix(), {})
    nb.metadata["language_info"] = {"name": "python"}
    exp = MarkdownExporter()
    exp.register_preprocessor(TagRemovePreprocessor(remove_input_tags={"remove_input"}, enabled=True), enabled=True)
    body, res = exp.from_notebook_node(nb, resources={"output_files_dir": README_FILES})
    body = re.sub(r"\]\((\d+[a-z]?_[\w-]+\.ipynb)", r"](nbs/\1", body)
    body = re.sub(r"\[(`[^`\]]+`)\]\([\w-]+\.html(#[^)]*)?\)", r"\1", body)   # API links live on the docs site only
    body = re.sub(r"\n{3,}", "\n\n", body).strip() + "\n"
    return (body, dict(res.get("outputs", {}))) if with_files else body


def write_readme():
    "Write README.md and its figures (README_files/ replaced as a whole)."
    text, files = render_readme(with_files=True)
    out = ROOT / README_FILES
    if out.exists(): shutil.rmtree(out)
    for name, data in files.items():
        (ROOT / name).parent.mkdir(parents=True, exist_ok=True); (ROOT / name).write_bytes(data)
    readme = ROOT / "README.md"
    tmp = readme.with_suffix(".md.tmp"); tmp.write_text(text, encoding="utf-8"); os.replace(tmp, readme)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("site"); s.add_argument("--out", default=str(ROOT / "_docs"))
    s.add_argument("--workers", type=int, default=1)
    r = sub.add_parser("readme"); r.add_argument("--check", action="store_true")
    a = ap.parse_args(argv)
    if a.cmd == "site":
        pages = build_site(Path(a.out), a.workers)
        print(f"docs: {len(pages)} pages in {a.out}")
    else:
        if a.check:
            text, files = render_readme(with_files=True)
            stale = (ROOT / "README.md").read_text(encoding="utf-8") != text or any(
                not (ROOT / n).is_file() or (ROOT / n).read_bytes() != b for n, b in files.items())
            if stale: sys.exit("README.md is out of date with nbs/index.ipynb: run `make readme` and commit it")
            print("README.md is up to date")
        else:
            write_readme(); print("wrote README.md and its figures")


if __name__ == "__main__":
    main()
