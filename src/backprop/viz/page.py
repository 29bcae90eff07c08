"""What every page backprop writes shares: the ``Page`` base class (``html``, an atomic
``save(path)`` and ``_repr_html_`` for Jupyter), the one template mechanism for the HTML
template asset files (``fill``: ``{{NAME}}`` replaced, in one pass, by already-escaped text),
the page data as a JSON script (``json_payload``) and the scripts inlined with the shared
helpers of ``common.js`` first (``scripts``).

Usage, for a new page (explain()'s Explanation and explore()'s Explorer are two)::

    class MyPage(Page):
        frame_height = 700                       # the Jupyter iframe's height, pixels
        def __init__(self, data): self.data, self.title = data, data["title"]
        def _render(self) -> str:                # called once, by .html
            return fill("mypage.html", TITLE=html.escape(self.title), DATA=json_payload(self.data),
                        SCRIPT=scripts("mypage.js"), CSS=read_asset("mypage.css"))

``.save(path)`` then writes the page atomically, ``.html`` is the text and a notebook shows it.
"""

from __future__ import annotations

import html
import json
import os
import re
import stat
from pathlib import Path

from .assets import read_asset

__all__ = ["Page", "fill", "json_payload", "scripts", "COMMON_SCRIPT"]

COMMON_SCRIPT = "common.js"  # el, ref, fmt, $ and pyRepr, as window.bpCommon
_TOKEN = re.compile(r"\{\{([A-Z_]+)\}\}")


def fill(template: str, **parts: str) -> str:
    """The template asset file ``template`` (e.g. "explain.html") with every ``{{NAME}}`` replaced
    by ``parts["NAME"]``, text that is already escaped for where it goes. One pass: a token
    inside a part (a node named '{{CSS}}') stays as it is. A token without a part is an error."""
    text = read_asset(template)

    def part(m: re.Match) -> str:
        try:
            return parts[m.group(1)]
        except KeyError:
            raise KeyError(
                f"{template} has {m.group(0)} but no part of that name was given"
            ) from None

    return _TOKEN.sub(part, text)


def json_payload(data) -> str:
    """``data`` as JSON to place inside ``<script type="application/json">``: '</' would end the
    script element early and '<!--' would stop the page's scripts from starting, so both are
    written with escapes that JSON reads back as the same text."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False)
    return text.replace("</", "<\\/").replace("<!--", "\\u003c!--")


def scripts(*names: str) -> str:
    """The script assets ``names``, inlined in that order after ``common.js``, which defines the
    helpers they share (``window.bpCommon``)."""
    return "\n".join(read_asset(name) for name in (COMMON_SCRIPT, *names))


class Page:
    """A self-contained HTML page (no network): a subclass sets ``title`` and defines
    ``_render()``; ``html`` renders it once, ``save(path)`` writes it and Jupyter displays it
    inline in a sandboxed iframe."""

    title: str = ""
    frame_height = 640  # pixels of the inline view in Jupyter; set it on a page
    _html: str | None = None

    def _render(self) -> str:  # pragma: no cover - every page defines it
        raise NotImplementedError

    @property
    def html(self) -> str:
        """The self-contained page (no network needed)."""
        if self._html is None:
            self._html = self._render()
        return self._html

    def save(self, path: str | Path) -> Path:
        """Write the page to ``path`` (e.g. 'page.html') and return the path. The page is
        written to a temporary file beside it and renamed into place, so a reader never sees
        half a page and an existing file keeps its mode; a path that is a directory, a FIFO or
        a device is refused (a page is a regular file)."""
        from ..serialize import write_atomic

        path = Path(path)
        _check_regular(path)
        write_atomic(path, self.html.encode("utf-8"))
        return path

    def _repr_html_(self) -> str:
        # an iframe keeps the page's script and styles apart from the notebook's, and runs it
        page = html.escape(self.html, quote=True)
        return (
            f'<iframe srcdoc="{page}" sandbox="allow-scripts" '
            f'style="width:100%;height:{int(self.frame_height)}px;border:1px solid #ddd;'
            'border-radius:6px" '
            f'title="{html.escape(self.title)}"></iframe>'
        )


_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


def _check_regular(path: Path) -> None:
    """Refuse a target that exists and is not a regular file (following a symlink): renaming
    a page over a FIFO would leave its reader waiting, and over a device is never meant."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return
    if not stat.S_ISREG(mode):
        kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
        raise ValueError(f"cannot save a page to {str(path)!r}: it is {kind}, not a regular file")
