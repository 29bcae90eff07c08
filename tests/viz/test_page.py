"""viz/page.py: the page base class every page shares (html, atomic save, _repr_html_), the one
template mechanism and the page data's JSON."""

from __future__ import annotations

import json
import os
import stat
import threading

import pytest

from backprop import Value, explain
from backprop.viz import page as page_module
from backprop.viz.page import Page, fill, json_payload, scripts


def neuron():
    x1, w1, b = Value(2.0, label="x1"), Value(-3.0, label="w1"), Value(6.88, label="b")
    return (x1 * w1 + b).tanh()


def _in_thread(fn, seconds=10):
    """fn() run where a hang fails the test instead of stopping the suite."""
    box = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed back to the test
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), "save() hung"
    return box


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_saving_to_a_fifo_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "page.html"
    os.mkfifo(fifo)
    box = _in_thread(lambda: explain(neuron()).save(fifo))
    if "error" not in box:  # pragma: no cover - the old code blocks in open() instead
        pytest.fail("saving to a FIFO was not refused")
    assert isinstance(box["error"], ValueError)
    assert "FIFO" in str(box["error"]) and str(fifo) in str(box["error"])
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)  # left as it was


def test_saving_to_a_directory_is_refused(tmp_path):
    with pytest.raises(ValueError, match="a directory"):
        explain(neuron()).save(tmp_path)


def test_save_is_atomic_and_keeps_an_existing_files_mode(tmp_path):
    ex = explain(neuron())
    target = tmp_path / "page.html"
    target.write_text("old")
    os.chmod(target, 0o640)
    assert ex.save(target) == target
    assert target.read_text(encoding="utf-8") == ex.html
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640
    assert sorted(os.listdir(tmp_path)) == ["page.html"]  # no temporary file left behind


def test_a_failed_write_leaves_the_old_page_whole(tmp_path, monkeypatch):
    target = tmp_path / "page.html"
    target.write_text("old page")

    class Broken(Page):
        title = "broken"

        def _render(self):
            raise RuntimeError("render failed")

    with pytest.raises(RuntimeError):
        Broken().save(target)
    assert target.read_text() == "old page"


def test_one_base_class_gives_html_and_repr_html():
    class Tiny(Page):
        title = 'a "quoted" <title>'
        frame_height = 123

        def __init__(self):
            self.calls = 0

        def _render(self):
            self.calls += 1
            return "<p>hi</p>"

    p = Tiny()
    assert p.html == "<p>hi</p>" and p.html == "<p>hi</p>" and p.calls == 1
    frame = p._repr_html_()
    assert 'srcdoc="&lt;p&gt;hi&lt;/p&gt;"' in frame and "height:123px" in frame
    assert 'title="a &quot;quoted&quot; &lt;title&gt;"' in frame


def test_fill_replaces_tokens_in_one_pass():
    text = fill("explain_legend.html", ROOT="{{ROOT}}")
    assert text.count("{{ROOT}}") == 2  # the part is not filled again
    with pytest.raises(KeyError, match="ROOT"):
        fill("explain_legend.html")


def test_json_payload_cannot_end_or_blank_the_script():
    data = {"name": "</script><!--<script>", "x": 1.5}
    text = json_payload(data)
    assert "</" not in text and "<!--" not in text
    assert json.loads(text) == data


def test_common_helpers_come_first_and_once():
    text = scripts("explain.js")
    assert text.startswith(page_module.read_asset("common.js"))
    assert text.count("window.bpCommon =") == 1


def test_explanation_pages_use_the_base_class():
    from backprop.viz.stepthrough import Explanation, ForwardExplanation

    assert issubclass(Explanation, Page) and issubclass(ForwardExplanation, Page)
    for name in ("html", "save", "_repr_html_"):
        assert name not in Explanation.__dict__ and name not in ForwardExplanation.__dict__
