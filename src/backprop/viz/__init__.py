"""Drawing: graphs (draw_dot and text exports), the step-through page, training plots.

This layer sits above the engine and the training toolkit and below the command line:
- ``draw``: ``draw_dot`` as in the notebook, ``to_dot``, ``to_mermaid``, ``to_json``;
- ``layout``: where the boxes go (Graphviz ``dot``, grandalf or a layered fallback);
- ``stepthrough``: ``explain()``, the step-through page of one backward pass (or, with
  ``mode="forward"``, of one forward-mode sweep), a package: wording, reverse, forward, view;
- ``page``: the base class of the pages (``html``, atomic ``save``, ``_repr_html_``) and the
  one template mechanism for the HTML template assets;
- ``explorer``: ``explore()``, the page of a recorded training run;
- ``expr``: the safe expression parser behind ``backprop graph``;
- ``plot``: loss curves and decision boundaries (matplotlib);
- ``assets``: the pages' CSS, JavaScript and HTML templates, as real files (``common.js``:
  the helpers every script shares).
"""

from .draw import (
    DOT_INSTALL_HINT,
    GraphvizMissing,
    draw_dot,
    node_names,
    to_dot,
    to_json,
    to_mermaid,
    trace,
)
from .explorer import explore
from .stepthrough import explain

__all__ = [
    "trace",
    "draw_dot",
    "to_dot",
    "to_mermaid",
    "to_json",
    "explain",
    "explore",
    "node_names",
    "GraphvizMissing",
    "DOT_INSTALL_HINT",
]
